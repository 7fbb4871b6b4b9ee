"""Carries WebRtcPeer messages through talkd's internal signaling, as Talk's web client does: each
message is POSTed to /signaling/{token} addressed `to` the other session, and a pump per peer
long-polls GET /signaling/{token} and hands what arrives to its peer. Same interface as MemoryRelay."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from tests.helpers.client import TalkClient
from tests.helpers.webrtc_peer import Message, PumpedRelay, Send, WebRtcPeer


@dataclass(frozen=True)
class Endpoint:
    """One side of the call: the HTTP client it speaks through (a user or a guest's cookie jar)."""

    talk: TalkClient
    token: str
    session_id: str
    user: str | None = None

    def path(self) -> str:
        return f"/apps/spreed/api/v3/signaling/{self.token}"


class TalkSignalingRelay(PumpedRelay):
    """Carries peers' messages through talkd's internal signaling (POST and long-polled GET per session).
    Its logs name sessions: `sent` once talkd accepted the POST (200), `log` as the addressee received it."""

    def __init__(self) -> None:
        super().__init__()
        self.users_in_room: dict[str, list[dict[str, Any]]] = {}
        self._endpoints: dict[str, Endpoint] = {}

    def sender(self, me: Endpoint, other: Endpoint) -> Send:
        async def send(message: Message) -> None:
            inner = {**message, "to": other.session_id}
            batch = [{"ev": "message", "sessionId": me.session_id, "fn": orjson.dumps(inner).decode()}]
            reply = await me.talk.ocs("POST", me.path(), user=me.user, json={"messages": orjson.dumps(batch).decode()})
            reply.expect(200)
            await self._record(self.sent, (me.session_id, other.session_id, message))
        return send

    def attach(self, peer: WebRtcPeer, endpoint: Endpoint) -> None:
        self.peers[peer.name] = peer
        self._endpoints[peer.name] = endpoint
        self._pumps.append(asyncio.create_task(self._pump(peer, endpoint), name=f"signaling-to-{peer.name}"))

    async def _pump(self, peer: WebRtcPeer, me: Endpoint) -> None:
        while True:
            reply = await me.talk.ocs("GET", me.path(), user=me.user)
            reply.expect(200)
            for item in reply.data:
                if item["type"] == "usersInRoom":
                    self.users_in_room[peer.name] = item["data"]
                    continue
                inner = orjson.loads(item["data"])
                await self._record(self.log, (inner.pop("from"), inner.pop("to"), inner))
                await peer.handle(inner)
