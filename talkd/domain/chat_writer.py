"""Group commit for chat messages: concurrent sends share one write transaction.

Senders check permissions and resolve mentions on their own (reads run in parallel); what is left is
a handful of inserts and updates that cannot fail on input, which one writer task applies for every
message waiting at that moment, then commits once. Under load a transaction carries many messages, so
the single-writer database (SQLite) commits far fewer times than messages arrive; with no load a
message is written at once. Ids stay in commit order per room: there is one writer per process, and
storage takes the per-room order lock on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from talkd.domain.conversation import Attendee, ChatMessage, Room
from talkd.domain.room_core import Changes, RoomCore, actor_ref
from talkd.errors import NotFound

log = logging.getLogger(__name__)

MAX_BATCH = 128


@dataclass
class PendingSend:
    room: Room
    author: Attendee
    text: str
    parameters: dict[str, object]
    reference_id: str
    parent_id: int
    rename_guest: bool
    mentioned: list[tuple[int, bool]]  # (attendee id, mentioned directly rather than through @all)
    parent: ChatMessage | None = None
    result: asyncio.Future[ChatMessage] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True)
class Written:
    """A stored message and the id that was the room's newest just before it (0: none), which lets
    an in-memory tail append it knowing that nothing lies between."""

    message: ChatMessage
    previous: int
    parent: ChatMessage | None
    token: str


@dataclass
class _Batch:
    written: list[tuple[PendingSend, Written]]
    gone: list[PendingSend]  # sends to rooms deleted after their sender's check
    changes: Changes


class ChatWriter:
    def __init__(self, core: RoomCore, on_written: Callable[[list[Written]], None] | None = None) -> None:
        self.core = core
        self.on_written = on_written
        self._queue: list[PendingSend] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.messages = 0
        self.writing = 0  # sends in the batch being written now

    @property
    def queued(self) -> int:
        """Sends waiting for the next batch."""
        return len(self._queue)

    async def submit(self, pending: PendingSend) -> ChatMessage:
        self._queue.append(pending)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="chat-writer")
        # Shielded: a sender that goes away does not take the write (or the batch) with it.
        return await asyncio.shield(pending.result)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self.writing = len(batch)
            try:
                done = await self._write(batch)
            except Exception as exc:
                for pending in batch:
                    if not pending.result.done():
                        pending.result.set_exception(exc)
                continue
            finally:
                self.writing = 0
            if self.on_written is not None:
                try:
                    self.on_written([item for _, item in done.written])
                except Exception:
                    log.exception("after-write hook failed")
            for pending, item in done.written:
                pending.result.set_result(item.message)
            for pending in done.gone:
                pending.result.set_exception(NotFound("Conversation not found"))
            self.batches += 1
            self.messages += len(done.written)
            with contextlib.suppress(Exception):
                await self.core.announce(done.changes)

    async def _write(self, batch: list[PendingSend]) -> _Batch:
        core, changes = self.core, Changes()
        written: list[tuple[PendingSend, Written]] = []
        newest: dict[int, tuple[Room, int]] = {}
        now = core.now()
        async with core.db.transaction("chat_send") as conn:
            # With the rooms' order locks held no other transaction, in any process, can add a message to
            # them before this one commits: the newest ids read now are exactly the predecessors.
            present = await core.messages.lock_rooms(conn, [p.room.id for p in batch])
            # A room deleted since its sender's check fails only its own sends: its messages would break
            # the foreign key and roll back everyone's.
            gone = [p for p in batch if p.room.id not in present]
            batch = [p for p in batch if p.room.id in present]
            if not batch:
                return _Batch([], gone, changes)
            previous = await core.rooms.last_message_ids(conn, sorted(present))
            rows = []
            for pending in batch:
                author = pending.author
                if pending.rename_guest:
                    await core.attendees.update(conn, author.id, display_name=author.display_name)
                ref = actor_ref(author)
                rows.append({"room_id": pending.room.id, "actor_type": ref["type"], "actor_id": ref["id"],
                             "actor_display_name": ref["name"], "message": pending.text,
                             "parameters": pending.parameters, "reference_id": pending.reference_id,
                             "parent_id": pending.parent_id})
            stored = await core.messages.append_comments(conn, rows, now)
            for pending, message in zip(batch, stored, strict=True):
                for attendee_id, direct in pending.mentioned:
                    if direct:
                        await core.attendees.update(conn, attendee_id, last_mention_message=message.id,
                                                    last_mention_direct=message.id)
                    else:
                        await core.attendees.update(conn, attendee_id, last_mention_message=message.id)
                written.append((pending, Written(message, previous.get(pending.room.id, 0), pending.parent,
                                                             pending.room.token)))
                previous[pending.room.id] = message.id
                newest[pending.room.id] = (pending.room, message.id)
                changes.message(pending.room, message)
            await core.rooms.record_newest(conn, {room.id: message_id for room, message_id in newest.values()}, now)
        return _Batch(written, gone, changes)
