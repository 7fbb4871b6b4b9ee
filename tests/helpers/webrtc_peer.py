"""A real WebRTC peer (aiortc) for tests, whose signaling is plain dicts shaped like Talk's.

The peer sends an audio or video track and records what the other side sends. Everything it says
goes out through a `send` coroutine as the inner messages Talk's clients exchange (the `fn` of an
internal-signaling message, without addressing):

    {"type": "offer"|"answer", "roomType": "video", "payload": {"type": ..., "sdp": ...}}
    {"type": "candidate", "roomType": "video",
     "payload": {"candidate": {"candidate": "candidate:...", "sdpMid": "0", "sdpMLineIndex": 0}}}

aiortc gathers every candidate before it finishes the description; like a browser, the peer sends
the description without them and each candidate as its own message, so a relay sees the real
trickle pattern. MemoryRelay carries messages between peers in-process; relays over talkd's
internal signaling (tests/helpers/talk_signaling.py) and its Spreed WebRTC channelling socket
(tests/helpers/spreed_signaling.py) replace it without changing the peer. `hold_call` runs a call
over any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Kind = Literal["audio", "video"]

FRAMES_TO_COUNT_AS_RECEIVED = 5


def ice_servers_from_settings(entries: list[dict[str, Any]]) -> list[RTCIceServer]:
    """Signaling settings v3 `stunservers` / `turnservers` entries as aiortc ICE servers."""
    return [RTCIceServer(urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential"))
            for entry in entries]


def split_candidates(sdp: str) -> tuple[str, list[Message]]:
    """The description without its candidate lines, and those candidates as Talk's candidate payloads."""
    kept: list[str] = []
    candidates: list[Message] = []
    mline_index, mid = -1, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline_index, mid = mline_index + 1, None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:"):]
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[len("a="):], "sdpMid": mid, "sdpMLineIndex": mline_index})
            continue
        if line == "a=end-of-candidates":  # more will follow as separate messages, as far as the peer knows
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", candidates


class WebRtcPeer:
    def __init__(self, name: str, send: Send, *, kind: Kind = "audio",
                 ice_servers: list[RTCIceServer] | None = None, relay_only: bool = False) -> None:
        self.name = name
        self.kind = kind
        self._send = send
        policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers or [], iceTransportPolicy=policy))
        self.pc.addTrack(AudioStreamTrack() if kind == "audio" else VideoStreamTrack())
        self.connected = asyncio.Event()
        self.media_received = asyncio.Event()
        self.states: list[str] = []
        self.received_kinds: list[str] = []
        self.frames_received = 0
        self.local_candidates: list[Message] = []
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("connectionstatechange", self._state_changed)
        self.pc.on("track", self._track_arrived)

    async def start_call(self) -> None:
        """Make the offer (the caller's first move)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send_description()

    async def handle(self, message: Message) -> None:
        """Act on one message from the other peer."""
        kind, payload = message["type"], message["payload"]
        if kind == "offer":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=payload["sdp"], type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self._send_description()
        elif kind == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=payload["sdp"], type="answer"))
        elif kind == "candidate":
            found = payload["candidate"]
            candidate = candidate_from_sdp(found["candidate"].removeprefix("candidate:"))
            candidate.sdpMid, candidate.sdpMLineIndex = found["sdpMid"], found["sdpMLineIndex"]
            await self.pc.addIceCandidate(candidate)
        else:
            raise ValueError(f"{self.name}: unexpected signaling message {kind!r}")

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        await self.pc.close()

    async def _send_description(self) -> None:
        description = self.pc.localDescription
        sdp, candidates = split_candidates(description.sdp)
        self.local_candidates = candidates
        await self._send({"type": description.type, "roomType": "video",
                          "payload": {"type": description.type, "sdp": sdp}})
        for candidate in candidates:
            await self._send({"type": "candidate", "roomType": "video", "payload": {"candidate": candidate}})

    async def _state_changed(self) -> None:
        self.states.append(self.pc.connectionState)
        if self.pc.connectionState == "connected":
            self.connected.set()

    def _track_arrived(self, track: MediaStreamTrack) -> None:
        self.received_kinds.append(track.kind)
        self._readers.append(asyncio.create_task(self._read(track), name=f"{self.name}-read-{track.kind}"))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            await track.recv()  # decoded frames: media really crossed the connection
            self.frames_received += 1
            if self.frames_received >= FRAMES_TO_COUNT_AS_RECEIVED:
                self.media_received.set()


async def wait_while_pumping(events: Sequence[asyncio.Event], pumps: Iterable[asyncio.Task[Any]],
                             timeout: float) -> None:
    """Until every event is set, within `timeout`. The pumps deliver signaling messages to peers and
    only end by raising (a refused request, a peer error): that error ends the wait at once."""
    pending: set[asyncio.Task[Any]] = {asyncio.create_task(event.wait()) for event in events}
    running = set(pumps)
    try:
        async with asyncio.timeout(timeout):
            while pending:
                done, rest = await asyncio.wait(pending | running, return_when=asyncio.FIRST_COMPLETED)
                for task in done & running:
                    task.result()
                pending = rest - running
    finally:
        for task in pending:
            task.cancel()


class PumpedRelay:
    """What relays share: peers, pump tasks feeding them, and two logs of (from, to, message): `sent` as
    the relay accepted it from a peer, `log` as a pump delivered it to the addressee."""

    def __init__(self) -> None:
        self.peers: dict[str, WebRtcPeer] = {}
        self.sent: list[tuple[str, str, Message]] = []
        self.log: list[tuple[str, str, Message]] = []
        self._pumps: list[asyncio.Task[None]] = []
        self._progress = asyncio.Condition()

    async def wait_for(self, *events: asyncio.Event, timeout: float) -> None:
        """Until every event is set; a pump failing (a refused request, a peer error) ends the wait."""
        await wait_while_pumping(events, self._pumps, timeout)

    async def drain(self, timeout: float) -> None:
        """Until everything sent has been delivered (a call may connect before the last candidates arrive)."""
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: len(self.log) >= len(self.sent))

    async def _record(self, entries: list[tuple[str, str, Message]], entry: tuple[str, str, Message]) -> None:
        async with self._progress:
            entries.append(entry)
            self._progress.notify_all()

    async def close(self) -> None:
        for pump in self._pumps:
            pump.cancel()
        for pump in self._pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        for peer in self.peers.values():
            await peer.close()


async def hold_call(relay: PumpedRelay, caller: WebRtcPeer, callee: WebRtcPeer, *, timeout: float) -> None:
    """The caller offers through `relay`; returns once both peers are connected and each has decoded
    the other's track."""
    await caller.start_call()
    try:
        await relay.wait_for(caller.connected, callee.connected, caller.media_received, callee.media_received,
                             timeout=timeout)
    except TimeoutError:
        report = {p.name: (p.states, len(p.local_candidates), p.frames_received) for p in (caller, callee)}
        raise AssertionError(f"no call within {timeout}s: (states, candidates, frames) {report}") from None
    assert caller.pc.connectionState == callee.pc.connectionState == "connected"
    assert (caller.received_kinds, callee.received_kinds) == ([callee.kind], [caller.kind])


def assert_relay_candidates_only(*peers: WebRtcPeer) -> None:
    """Every candidate each peer offered is a TURN allocation: media can only flow through the TURN server."""
    for peer in peers:
        assert peer.local_candidates, peer.name
        assert all(" typ relay" in c["candidate"] for c in peer.local_candidates), peer.local_candidates


class MemoryRelay(PumpedRelay):
    """Carries each peer's messages to the other, in order, in-process."""

    def __init__(self) -> None:
        super().__init__()
        self._queues: dict[str, asyncio.Queue[tuple[str, Message]]] = {}

    def sender(self, sender: str, recipient: str) -> Send:
        async def send(message: Message) -> None:
            await self._record(self.sent, (sender, recipient, message))
            await self._queues.setdefault(recipient, asyncio.Queue()).put((sender, message))
        return send

    def attach(self, peer: WebRtcPeer) -> None:
        self.peers[peer.name] = peer
        queue = self._queues.setdefault(peer.name, asyncio.Queue())
        self._pumps.append(asyncio.create_task(self._pump(peer, queue), name=f"relay-to-{peer.name}"))

    async def _pump(self, peer: WebRtcPeer, queue: asyncio.Queue[tuple[str, Message]]) -> None:
        while True:
            sender, message = await queue.get()
            await self._record(self.log, (sender, peer.name, message))
            await peer.handle(message)
