"""Spreed WebRTC's entities: a connected session and a room with its members on this node and on others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from talkd.protocol.spreed import SessionData


@dataclass(eq=False)
class Session:
    """A session connected to this node."""

    id: str
    sid: str
    connection: str
    index: int
    stamp: float
    userid: str = ""
    ua: str = ""
    status: Any = None
    rev: int = 0
    prio: int = 100
    room_id: str | None = None  # None: no room (before Hello, after Leave or a failed join)
    nonce: str = ""             # the latest nonce issued for this session; single use
    closed: bool = False
    contacts: set[str] = field(default_factory=set)  # linked via Sessions(contact): they see our Left
    attestation: str = ""
    attestation_until: float = 0.0

    def data(self) -> SessionData:
        return SessionData(id=self.id, userid=self.userid, ua=self.ua, rev=self.rev, prio=self.prio,
                           status=self.status)


@dataclass(frozen=True)
class RemoteMember:
    """A member connected to another node, as that node last announced it."""

    node: str
    data: SessionData


@dataclass(eq=False)
class Room:
    id: str
    name: str
    type: str
    pin: str | None
    members: dict[str, Session] = field(default_factory=dict)      # connected here
    remote: dict[str, RemoteMember] = field(default_factory=dict)  # connected to other nodes
    empty_since: float | None = None

    @property
    def empty(self) -> bool:
        return not self.members and not self.remote

    def member_ids(self) -> list[str]:
        return [*self.members, *(sid for sid in self.remote if sid not in self.members)]

    def member_data(self) -> list[SessionData]:
        local = [session.data() for session in self.members.values()]
        return local + [m.data for sid, m in self.remote.items() if sid not in self.members]
