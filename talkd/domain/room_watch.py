"""One bus subscription per busy room and process, shared by every request waiting there.

A room with waiters in this process is watched: the watch follows the room's topic and keeps the
newest message id announced (`high_water`) and, for users, the room and attendee rows their access
check read. While the watch runs without a gap, both stay exact: every commit is announced after it
happens, and every change to the room or its attendees announces `room-changed`, which empties the
cache. A read that was under way when the cache was emptied may have seen the room before the change,
so what it found is not cached (the watch's `generation` tells). So a long poll that arrives at a
watched room costs no query at all to check access and to see whether anything is new; only new
messages are read, once, by the chat tail.

A watch lingers a little after its last waiter leaves, because long-poll clients come straight back.
If its subscription overflows (events lost), the watch forgets what it knew and the next request
reads storage again. When the room is deleted the watch ends: nothing it knew outlives the room."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from talkd.bus.base import EventBus, Subscription
from talkd.domain import events
from talkd.domain.conversation import Attendee, Room

log = logging.getLogger(__name__)

# Long enough for a long-poll client to come back with its next request, short enough that a room
# nobody waits in any more is let go almost at once.
LINGER_SECONDS = 1.0


@dataclass
class Watch:
    token: str
    subscription: Subscription
    high_water: int = 0
    known: bool = False  # high_water was read from storage after the subscription started
    access: dict[str, tuple[Room, Attendee]] = field(default_factory=dict)
    generation: int = 0  # counts the times the watch forgot what storage told it
    waiters: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    idle_since: float = 0.0
    released: bool = False  # the server is stopping: waiters answer now (RoomWatches.release)

    def learn(self, read_at: int, room: Room, user: str | None = None, attendee: Attendee | None = None) -> None:
        """What a storage read, begun at `generation` `read_at` (after the subscription started), found:
        the newest message and the user's access. Only the newest id is kept if the watch forgot since,
        as the read may predate the change (or the lost events) that made it forget."""
        self.high_water = max(self.high_water, room.last_message_id)
        if read_at != self.generation:
            return
        self.known = True
        if user is not None and attendee is not None:
            self.access[user] = (room, attendee)

    def forget(self, *, high_water: bool) -> None:
        """Drop the cached access (and, when events were lost, trust in `high_water`)."""
        self.access.clear()
        self.generation += 1
        if high_water:
            self.known = False

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Until the next event, or `timeout`; at once when released."""
        if self.released:
            return
        log.debug("waiting for the room", extra={"room": self.token})
        # asyncio.timeout, not wait_for: no extra task per waiter (a thousand waiters wake per post).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.changed.wait()

    async def follow(self) -> None:
        async for event in self.subscription:
            kind = event.get("type")
            if kind == "message":
                value = event.get("id")
                if isinstance(value, int):
                    self.high_water = max(self.high_water, value)
            elif kind == "room-changed":
                self.forget(high_water=False)
            elif kind == "overflow":
                self.forget(high_water=True)
            elif kind == "room-deleted":
                # Nothing it knew holds any more: end the watch (waiters wake, find no room, and
                # a room that might take the token later starts a watch of its own).
                return
            self._wake()


class RoomWatches:
    def __init__(self, bus: EventBus, *, linger: float = LINGER_SECONDS) -> None:
        self.bus = bus
        self.linger = linger
        self._watches: dict[str, Watch] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.released = False

    def release(self) -> None:
        """Shutdown: every waiter, now and later, stops waiting and answers as on its timeout."""
        self.released = True
        for watch in self._watches.values():
            watch.released = True
            watch._wake()

    @contextlib.asynccontextmanager
    async def watching(self, token: str) -> AsyncIterator[Watch]:
        watch = self.peek(token) or await self._start(token)
        watch.waiters += 1
        try:
            yield watch
        finally:
            watch.waiters -= 1
            if watch.waiters == 0:
                watch.idle_since = asyncio.get_running_loop().time()

    def peek(self, token: str) -> Watch | None:
        """The room's watch if one runs (for callers that only use what it caches)."""
        watch = self._watches.get(token)
        return watch if watch is not None and watch.task is not None and not watch.task.done() else None

    async def _start(self, token: str) -> Watch:
        subscription = self.bus.subscribe(events.room_topic(token))
        try:
            await subscription.__aenter__()  # a network bus waits for its server here
        except BaseException:
            with contextlib.suppress(Exception):
                await subscription.close()
            raise
        rival = self.peek(token)
        if rival is not None:
            # Another request started a watch while this one subscribed: share that one (held meanwhile,
            # so the reaper leaves it be) and close this subscription.
            rival.waiters += 1
            try:
                with contextlib.suppress(Exception):
                    await subscription.close()
            finally:
                rival.waiters -= 1
            return rival
        watch = Watch(token, subscription, released=self.released)
        watch.task = asyncio.create_task(self._follow(watch), name=f"watch-{token}")
        self._watches[token] = watch
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="room-watch-reaper")
        return watch

    async def _follow(self, watch: Watch) -> None:
        try:
            await watch.follow()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("room watch failed", extra={"token": watch.token})
        finally:
            watch.forget(high_water=True)
            watch._wake()
            with contextlib.suppress(Exception):
                await watch.subscription.close()  # an ended watch is never reused (see peek)

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        while self._watches:
            await asyncio.sleep(max(self.linger / 4, 0.05))
            now = loop.time()
            for token, watch in list(self._watches.items()):
                if watch.waiters == 0 and now - watch.idle_since >= self.linger:
                    del self._watches[token]
                    await self._stop(watch)

    async def _stop(self, watch: Watch) -> None:
        if watch.task is not None:
            watch.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch.task
        with contextlib.suppress(Exception):
            await watch.subscription.close()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for watch in list(self._watches.values()):
            await self._stop(watch)
        self._watches.clear()
