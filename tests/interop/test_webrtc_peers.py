"""Two real WebRTC peers (aiortc) that only talk through a signaling relay: offer, answer and
trickled candidates as Talk-shaped dicts; both reach "connected" and decode the other's media.
The relay is in-memory here; talkd's internal signaling takes its place in the call tests."""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

if importlib.util.find_spec("aiortc") is None:  # a test dependency (pyproject test extra)
    if os.environ.get("CI") == "true":
        pytest.fail("aiortc is not installed: CI must run the WebRTC tests", pytrace=False)
    pytest.skip("aiortc not installed", allow_module_level=True)

from tests.api.conftest import AppFactory
from tests.helpers.coturn import Coturn, require_binaries, running_coturn
from tests.helpers.webrtc_peer import Kind, MemoryRelay, WebRtcPeer, ice_servers_from_settings

pytestmark = pytest.mark.interop

CALL_TIMEOUT = 30.0


@pytest.fixture
async def relay() -> AsyncIterator[MemoryRelay]:
    relay = MemoryRelay()
    yield relay
    await relay.close()


def pair(relay: MemoryRelay, kind: Kind, **options: object) -> tuple[WebRtcPeer, WebRtcPeer]:
    alice = WebRtcPeer("alice", relay.sender("alice", "bob"), kind=kind, **options)  # type: ignore[arg-type]
    bob = WebRtcPeer("bob", relay.sender("bob", "alice"), kind=kind, **options)  # type: ignore[arg-type]
    relay.attach(alice)
    relay.attach(bob)
    return alice, bob


async def call(relay: MemoryRelay, alice: WebRtcPeer, bob: WebRtcPeer) -> None:
    await alice.start_call()
    try:
        await relay.wait_for(alice.connected, bob.connected, alice.media_received, bob.media_received,
                             timeout=CALL_TIMEOUT)
    except TimeoutError:
        report = {p.name: (p.states, len(p.local_candidates), p.frames_received) for p in (alice, bob)}
        raise AssertionError(f"no call within {CALL_TIMEOUT}s: (states, candidates, frames) {report}") from None


@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_two_peers_connect_and_receive_each_others_track(relay: MemoryRelay, kind: Kind) -> None:
    alice, bob = pair(relay, kind)
    await call(relay, alice, bob)
    assert alice.pc.connectionState == bob.pc.connectionState == "connected"
    assert alice.received_kinds == bob.received_kinds == [kind]
    sent = [(sender, message["type"]) for sender, _, message in relay.log]
    assert sent[0] == ("alice", "offer") and ("bob", "answer") in sent
    # The descriptions travel without candidates; every candidate is a message of its own.
    assert all("a=candidate" not in m["payload"].get("sdp", "") for _, _, m in relay.log)
    assert {s for s, kind_ in sent if kind_ == "candidate"} == {"alice", "bob"}


async def test_two_peers_connect_through_coturn_with_credentials_from_talkd(
        relay: MemoryRelay, app_factory: AppFactory, tmp_path: Path) -> None:
    require_binaries("turnserver")
    coturn: Coturn
    async with running_coturn(tmp_path, secrets.token_hex(16)) as coturn:
        talk = await app_factory(stun__servers=(), turn__servers=(f"127.0.0.1:{coturn.port}",),
                                 turn__secret=coturn.secret, turn__protocols=("udp",))
        settings = (await talk.ocs("GET", "/apps/spreed/api/v3/signaling/settings")).expect(200).data
        alice, bob = pair(relay, "audio", ice_servers=ice_servers_from_settings(settings["turnservers"]),
                          relay_only=True)
        await call(relay, alice, bob)
        # Relay-only: every candidate either side offered is a TURN allocation on our coturn.
        for peer in (alice, bob):
            assert peer.local_candidates
            assert all(" typ relay" in c["candidate"] for c in peer.local_candidates), peer.local_candidates
        username = settings["turnservers"][0]["username"]
        assert await coturn.wait_for_log(f"user <{username}>: incoming packet ALLOCATE processed, success")
        await relay.close()
