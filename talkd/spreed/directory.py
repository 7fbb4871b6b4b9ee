"""Spreed rooms as every node of a cluster sees them.

Frames already travel on the bus (room and session topics). What a node also needs to know about the
sessions on *other* nodes is who is in which room (Welcome and Users list them, a server-managed
conference counts them) and which PIN protects a room (a join on any node must be refused without it).
Each node therefore announces its own members and PINs on one directory topic and keeps a replica of
everyone else's:

- `member` (a session entered a room or changed its Ua, Status or user), `gone` (it left);
- `pin` (a room was created with a PIN, or its PIN changed);
- `sync` (a node started, or missed announcements: every node answers with a `snapshot` of its own rooms);
- `alive` every ALIVE_INTERVAL; members of a node silent for NODE_TIMEOUT are dropped (it crashed),
  `bye` drops them at once (clean shutdown).

Each node only ever announces its own sessions, and a bus keeps one publisher's order on a topic, so
a replica is exact up to the bus's delivery delay. With the in-process bus there are no other nodes and
the directory holds only local members.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from talkd.bus.base import Event, EventBus, topic
from talkd.clock import Clock
from talkd.crypto import random_token
from talkd.protocol.spreed import SessionData
from talkd.spreed.model import RemoteMember, Room, Session

log = logging.getLogger(__name__)

DIRECTORY_TOPIC = topic("spreed-directory")
ROOM_EXPIRY = 60.0          # seconds a room (and its PIN) outlives its last member
ALIVE_INTERVAL = 10.0
NODE_TIMEOUT = 3 * ALIVE_INTERVAL


class RoomDirectory:
    def __init__(self, bus: EventBus, clock: Clock) -> None:
        self.bus = bus
        self.clock = clock
        self.node = random_token(16)
        self.rooms: dict[str, Room] = {}
        self._seen: dict[str, float] = {}  # other node → when it last spoke (monotonic)

    # --- this node's rooms ---------------------------------------------------------------------------------

    def live(self) -> dict[str, Room]:
        """Every room that has members anywhere or emptied less than ROOM_EXPIRY ago."""
        now = self.clock.monotonic()
        for rid in [rid for rid, room in self.rooms.items()
                    if room.empty_since is not None and now - room.empty_since >= ROOM_EXPIRY]:
            del self.rooms[rid]
        return self.rooms

    def get(self, rid: str | None) -> Room | None:
        return self.rooms.get(rid or "")

    async def create(self, rid: str, name: str, room_type: str, pin: str | None) -> Room:
        room = self.rooms[rid] = Room(id=rid, name=name, type=room_type, pin=pin)
        if pin is not None:
            await self._announce("pin", room=self._room_fields(room, pin=True))
        return room

    async def add(self, room: Room, session: Session) -> None:
        room.members[session.id] = session
        room.empty_since = None
        await self._announce_member(room, session)

    async def changed(self, session: Session) -> None:
        """A member's Ua, Status or user id changed: other nodes' lists follow."""
        room = self.get(session.room_id)
        if room is not None and room.members.get(session.id) is session:
            await self._announce_member(room, session)

    async def remove(self, room: Room, session: Session) -> None:
        if room.members.get(session.id) is not session:
            return
        del room.members[session.id]
        self._mark_if_empty(room)
        await self._announce("gone", room={"id": room.id}, id=session.id)

    async def set_pin(self, room: Room, pin: str | None) -> None:
        room.pin = pin
        await self._announce("pin", room=self._room_fields(room, pin=True))

    def has_peers(self) -> bool:
        """Whether other nodes announced themselves (with the in-process bus there are none)."""
        return bool(self._seen)

    def find(self, session_id: str) -> SessionData | None:
        """Session data of a member connected to another node (Sessions lookups)."""
        for room in self.rooms.values():
            member = room.remote.get(session_id)
            if member is not None:
                return member.data
        return None

    # --- replication ---------------------------------------------------------------------------------------

    async def follow(self) -> None:
        """Run for the life of the process: apply other nodes' announcements, say we are alive."""
        async with self.bus.subscribe(DIRECTORY_TOPIC) as subscription:
            await self._announce("sync")
            heartbeat = asyncio.create_task(self._heartbeat(), name="spreed-directory-alive")
            try:
                async for event in subscription:
                    await self.apply(event)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(Exception):  # the bus may already be gone at shutdown
                    await asyncio.shield(self._announce("bye"))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_INTERVAL)  # real time: a beat, not a rule that tests move through
            try:
                await self._announce("alive")
            except Exception:
                log.exception("spreed directory heartbeat failed")
            self.prune()

    async def apply(self, event: Event) -> None:
        if event.get("type") == "overflow":  # we missed announcements: start over from snapshots
            for silent in list(self._seen):
                self._drop_node(silent)
            await self._announce("sync")
            # Others may have overflowed too (a NATS reconnect reaches every node) and dropped our
            # members, while their own sync reached us when we could not take it: offer ours unasked.
            await self._snapshot()
            return
        node = event.get("node")
        if not isinstance(node, str) or node == self.node:
            return
        self._seen[node] = self.clock.monotonic()
        try:
            await self._apply(node, event)
        except (KeyError, TypeError, ValueError):
            log.warning("malformed spreed directory event ignored", extra={"kind": event.get("type")})

    async def _apply(self, node: str, event: Event) -> None:
        kind = event.get("type")
        if kind == "sync":
            await self._snapshot()
        elif kind == "snapshot":
            for fields in event["rooms"]:
                room = self._replica(fields)
                for doc in fields["members"]:
                    self._add_remote(room, node, SessionData.from_document(doc))
        elif kind == "member":
            self._add_remote(self._replica(event["room"]), node, SessionData.from_document(event["member"]))
        elif kind == "pin":
            self._replica(event["room"])
        elif kind == "gone":
            known = self.get(str(event["room"]["id"]))
            member = known.remote.get(str(event["id"])) if known is not None else None
            if known is not None and member is not None and member.node == node:  # not a later join elsewhere
                del known.remote[member.data.id]
                self._mark_if_empty(known)
        elif kind == "bye":
            self._drop_node(node)

    async def _snapshot(self) -> None:
        await self._announce("snapshot", rooms=[
            {**self._room_fields(room, pin=True), "members": [s.data().document("") for s in room.members.values()]}
            for room in self.live().values() if room.members])

    def prune(self) -> None:
        """Forget the members of nodes that stopped announcing themselves (crashed, cut off)."""
        cutoff = self.clock.monotonic() - NODE_TIMEOUT
        for node in [node for node, seen in self._seen.items() if seen < cutoff]:
            log.warning("spreed node went silent; its sessions are dropped", extra={"node": node})
            self._drop_node(node)

    def _drop_node(self, node: str) -> None:
        self._seen.pop(node, None)
        for room in self.rooms.values():
            gone = [sid for sid, member in room.remote.items() if member.node == node]
            for sid in gone:
                del room.remote[sid]
            if gone:
                self._mark_if_empty(room)

    def _replica(self, fields: dict[str, Any]) -> Room:
        """The room another node announced, created here when new; a `pin` key carries its PIN."""
        rid = str(fields["id"])
        room = self.live().get(rid)
        if room is None:
            room = self.rooms[rid] = Room(id=rid, name=str(fields["name"]), type=str(fields["type"]), pin=None)
            self._mark_if_empty(room)
        if "pin" in fields:
            pin = fields["pin"]
            room.pin = str(pin) if pin is not None else None
        return room

    def _add_remote(self, room: Room, node: str, data: SessionData) -> None:
        room.remote[data.id] = RemoteMember(node, data)
        room.empty_since = None

    def _mark_if_empty(self, room: Room) -> None:
        if room.empty and room.empty_since is None:
            room.empty_since = self.clock.monotonic()

    @staticmethod
    def _room_fields(room: Room, *, pin: bool = False) -> dict[str, Any]:
        """A room as announced. Only its creator's and a Room update's announcements carry the PIN: a
        member announcement made before the sender heard of a PIN change must not undo it."""
        fields: dict[str, Any] = {"id": room.id, "name": room.name, "type": room.type}
        if pin:
            fields["pin"] = room.pin
        return fields

    async def _announce_member(self, room: Room, session: Session) -> None:
        await self._announce("member", room=self._room_fields(room), member=session.data().document(""))

    async def _announce(self, kind: str, **fields: Any) -> None:
        await self.bus.publish(DIRECTORY_TOPIC, {"type": kind, "node": self.node, **fields})
