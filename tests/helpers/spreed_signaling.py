"""Carries WebRtcPeer messages over talkd's Spreed WebRTC channelling socket, as the Spreed web client
does: a description or candidate goes out as an Offer, Answer or Candidate frame whose document names
the other session `To` and wraps the payload under the type again (channelling API section 5):

    {"Type": "Offer", "Offer": {"To": <id>, "Type": "Offer", "Offer": {"sdp": ..., "type": "offer"}}}
    {"Type": "Candidate", "Candidate": {"To": <id>, "Type": "Candidate",
     "Candidate": {"type": "candidate", "sdpMLineIndex": 0, "sdpMid": "0", "candidate": "candidate:..."}}}

A pump per peer reads its socket and hands each relayed document (the frame's `Data`) to its peer; the
other frames a socket receives meanwhile (Joined, Status, Chat...) are kept per peer. Same interface as
TalkSignalingRelay; its logs hold the channelling documents, with session ids."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCIceServer

from tests.helpers.spreed import SpreedSocket
from tests.helpers.webrtc_peer import Message, PumpedRelay, Send, WebRtcPeer

CALL_TYPES = {"offer": "Offer", "answer": "Answer", "candidate": "Candidate"}


def ice_servers_from_self(me: dict[str, Any]) -> list[RTCIceServer]:
    """The Self document's TURN REST credentials (`Turn`: username, password, urls) as aiortc ICE servers."""
    turn = me["Turn"]
    return [RTCIceServer(urls=turn["urls"], username=turn["username"], credential=turn["password"])]


def channelling_document(message: Message, to: str) -> dict[str, Any]:
    """A peer message as the document the web client sends for it (the middle level of the frame)."""
    kind = CALL_TYPES[message["type"]]
    payload = message["payload"]
    if kind == "Candidate":
        body = {"type": "candidate", **payload["candidate"]}
    else:
        body = {"sdp": payload["sdp"], "type": payload["type"]}
    return {"To": to, "Type": kind, kind: body}


def peer_message(document: dict[str, Any]) -> Message:
    """A relayed channelling document as the peer's message (the inverse of channelling_document)."""
    kind = document["Type"]
    body = document[kind]
    if kind == "Candidate":
        payload: dict[str, Any] = {"candidate": {key: body[key] for key in ("candidate", "sdpMid", "sdpMLineIndex")}}
    else:
        payload = {"type": body["type"], "sdp": body["sdp"]}
    return {"type": kind.lower(), "roomType": "video", "payload": payload}


class SpreedSignalingRelay(PumpedRelay):
    """Carries peers' messages through talkd's /ws channelling socket, one socket per peer."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[dict[str, Any]] = []  # every relayed call frame as received: From, To, A, Data
        self.other_frames: dict[str, list[dict[str, Any]]] = {}

    def sender(self, me: SpreedSocket, other: SpreedSocket) -> Send:
        async def send(message: Message) -> None:
            document = channelling_document(message, other.id)
            await me.send(document["Type"], document)
            await self._record(self.sent, (me.id, other.id, document))
        return send

    def attach(self, peer: WebRtcPeer, socket: SpreedSocket) -> None:
        self.peers[peer.name] = peer
        self.other_frames[peer.name] = []
        self._pumps.append(asyncio.create_task(self._pump(peer, socket), name=f"channelling-to-{peer.name}"))

    async def _pump(self, peer: WebRtcPeer, socket: SpreedSocket) -> None:
        while True:
            frame = await socket.recv(timeout=None)  # the caller's wait bounds the time
            data = frame.get("Data")
            if not (isinstance(data, dict) and data.get("Type") in CALL_TYPES.values()):
                self.other_frames[peer.name].append(frame)
                continue
            self.frames.append(frame)
            await self._record(self.log, (frame["From"], frame["To"], data))
            await peer.handle(peer_message(data))
