"""In-process bus. It encodes every event to JSON and back, exactly as a network bus would, so code
that works here cannot depend on sharing Python objects with the publisher."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson

from talkd.bus.base import Event

log = logging.getLogger(__name__)

OVERFLOW: Event = {"type": "overflow"}
_OVERFLOW_PAYLOAD = orjson.dumps(OVERFLOW)


_RELEASE = b""  # wakes a bounded wait at shutdown; never a real (JSON) payload


class Waits:
    """Whether a bus's bounded waits are released (the server is stopping), shared by its inboxes."""

    released = False


class BoundedInbox:
    """A subscriber's bounded queue of encoded events, shared by every bus implementation."""

    def __init__(self, max_pending: int, waits: Waits | None = None) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._max_pending = max_pending
        self._overflowed = False
        self._closed = False
        self._waits = waits or Waits()

    def release(self) -> None:
        """Wake a bounded wait in progress (see release_waits)."""
        self._queue.put_nowait(_RELEASE)

    def _deliver(self, payload: bytes) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= self._max_pending:
            # A consumer that cannot keep up gets one "overflow" marker and must re-read state;
            # the bus never grows without bound for a slow reader.
            self._overflowed = True
            return
        self._queue.put_nowait(payload)

    def mark_gap(self) -> None:
        """Events may have been lost before reaching this inbox (a bus connection dropped): queue an
        overflow marker behind what arrived so far. Unlike a full queue, later events still flow."""
        if self._overflowed:
            return  # a marker is due already
        if self._queue.qsize() >= self._max_pending:
            self._overflowed = True
            return
        self._queue.put_nowait(_OVERFLOW_PAYLOAD)

    async def _next(self, timeout: float | None) -> Event | None:
        while True:
            if self._closed:
                return None
            if timeout is not None and self._waits.released:
                return None  # stopping: a bounded wait answers as on its timeout, at once
            if self._queue.empty() and self._overflowed:
                self._overflowed = False
                return dict(OVERFLOW)
            try:
                if timeout is None:
                    payload = await self._queue.get()
                elif timeout <= 0:
                    payload = self._queue.get_nowait()
                else:
                    payload = await asyncio.wait_for(self._queue.get(), timeout)
            except (TimeoutError, asyncio.QueueEmpty):
                return None
            if payload == _RELEASE:
                continue  # unbounded followers (async for) keep following until closed
            event: Event = orjson.loads(payload)
            return event

    async def get(self, timeout: float | None = None) -> Event | None:
        return await self._next(timeout)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while not self._closed:
            event = await self.get()
            if event is None:
                return
            yield event


class MemorySubscription(BoundedInbox):
    def __init__(self, bus: MemoryBus, topics: tuple[str, ...], max_pending: int) -> None:
        super().__init__(max_pending, bus.waits)
        self._bus = bus
        self.topics = topics

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._unsubscribe(self)

    async def __aenter__(self) -> MemorySubscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class MemoryBus:
    def __init__(self, *, max_pending: int = 1000) -> None:
        self._subscribers: dict[str, set[MemorySubscription]] = defaultdict(set)
        self._max_pending = max_pending
        self.published = 0
        self.waits = Waits()

    def release_waits(self) -> None:
        self.waits.released = True
        for sub in {s for subs in self._subscribers.values() for s in subs}:
            sub.release()

    async def publish(self, topic: str, event: Event) -> None:
        payload = orjson.dumps({**event, "topic": topic})
        self.published += 1
        for sub in tuple(self._subscribers.get(topic, ())):
            sub._deliver(payload)

    def subscribe(self, *topics: str) -> MemorySubscription:
        if not topics:
            raise ValueError("subscribe needs at least one topic")
        sub = MemorySubscription(self, tuple(topics), self._max_pending)
        for t in topics:
            self._subscribers[t].add(sub)
        return sub

    def _unsubscribe(self, sub: MemorySubscription) -> None:
        for t in sub.topics:
            subs = self._subscribers.get(t)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[t]

    def subscriber_count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._subscribers.get(topic, ()))
        return len({id(s) for subs in self._subscribers.values() for s in subs})

    async def close(self) -> None:
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                await sub.close()

    def stats(self) -> dict[str, Any]:
        return {"topics": len(self._subscribers), "published": self.published}
