"""The newest messages of busy rooms, held in memory so that many waiters woken by one post share one
database read instead of each making their own.

Per room the tail knows every message with an id above `floor`, up to `top`. A waiter that has seen
everything up to `after >= floor` is answered from memory when the tail already reaches the id it was
woken for; otherwise one reader (the first) loads "everything after top" and the others wait for that
same read. This is safe because ids follow commit order within a room: once the tail has read past
id N, no message at or below N can still appear.

Messages change after the fact only by deletion and reactions, and both arrive as new system messages
naming the changed message as `parent`. When the tail loads such a notice about a message it holds, or
shows as the parent of one it holds, it drops what it held before, so a changed message is never served
from memory in its old form.

A tail is kept under the room's token and id together and dropped when the room is deleted (`forget`,
on every node through the bus), so a new room is never served an old one's messages, even if a
database handed out a deleted room's id again."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from talkd.domain.conversation import ChatMessage
from talkd.storage.reactions import Reaction


@dataclass(frozen=True)
class TailEntry:
    """A message with what its serialization needs, as read when the tail loaded it."""

    message: ChatMessage
    reactions: list[Reaction]
    parent: ChatMessage | None

    @property
    def id(self) -> int:
        return self.message.id


Loader = Callable[[int, int], Awaitable[list[TailEntry]]]  # (after, limit) -> oldest first
RoomKey = tuple[str, int]  # (token, id): tokens are never shared by two rooms alive at the same time


@dataclass
class _RoomTail:
    floor: int
    top: int
    messages: list[TailEntry] = field(default_factory=list)
    loading: asyncio.Future[None] | None = None


class ChatTail:
    def __init__(self, *, per_room: int = 400, rooms: int = 2000) -> None:
        self.per_room = per_room
        self.max_rooms = rooms
        self._rooms: OrderedDict[RoomKey, _RoomTail] = OrderedDict()

    def _tail(self, room: RoomKey, after: int) -> _RoomTail:
        tail = self._rooms.get(room)
        if tail is None:
            tail = _RoomTail(floor=after, top=after)
            self._rooms[room] = tail
            while len(self._rooms) > self.max_rooms:
                self._rooms.popitem(last=False)
        self._rooms.move_to_end(room)
        return tail

    async def after(self, room: RoomKey, after: int, limit: int, *, until: int, load: Loader) -> list[TailEntry]:
        """Messages with ids above `after` (oldest first, at most `limit`), knowing that messages up
        to `until` exist. Falls back to `load` directly for positions the tail cannot answer."""
        tail = self._rooms.get(room)
        if tail is None or after < tail.floor:
            if tail is not None and after < tail.floor:
                return await load(after, limit)
            tail = self._tail(room, after)
        while tail.top < until:
            if tail.loading is None:
                tail.loading = asyncio.get_running_loop().create_future()
                try:
                    fresh = await load(tail.top, self.per_room)
                    # A deletion or reaction changed a message the tail holds, or shows as the parent of a
                    # held reply (that parent may be older than the floor): keep only what was just read,
                    # so a changed message is never served in its old form.
                    parents = {e.parent.id for e in tail.messages if e.parent is not None}
                    if any(e.parent is not None and (e.parent.id > tail.floor or e.parent.id in parents)
                           for e in fresh):
                        tail.messages, tail.floor = [], tail.top
                    if fresh:
                        tail.messages.extend(fresh)
                        tail.top = fresh[-1].id
                        if len(tail.messages) > self.per_room:
                            drop = len(tail.messages) - self.per_room
                            tail.floor = tail.messages[drop - 1].id
                            del tail.messages[:drop]
                    else:
                        tail.top = max(tail.top, until)  # nothing committed up to `until`: it is ours to skip
                finally:
                    done, tail.loading = tail.loading, None
                    done.set_result(None)
                if not fresh:
                    break
            else:
                await asyncio.shield(tail.loading)
            if after < tail.floor:
                return await load(after, limit)
        return [m for m in tail.messages if m.id > after][:limit]

    def push(self, room: RoomKey, previous: int, entry: TailEntry) -> None:
        """Append a message this process just stored, if the tail ends at its predecessor (otherwise
        the next reader loads it as usual)."""
        tail = self._rooms.get(room)
        if tail is None or tail.loading is not None or tail.top != previous or entry.id <= tail.top:
            return
        tail.messages.append(entry)
        tail.top = entry.id
        if len(tail.messages) > self.per_room:
            drop = len(tail.messages) - self.per_room
            tail.floor = tail.messages[drop - 1].id
            del tail.messages[:drop]

    def forget(self, token: str) -> None:
        """The room is gone: drop its tail (a load under way finishes into the dropped object)."""
        for key in [key for key in self._rooms if key[0] == token]:
            del self._rooms[key]

    def clear(self) -> None:
        """Deletions may have been missed (the bus overflowed): start again from storage."""
        self._rooms.clear()
