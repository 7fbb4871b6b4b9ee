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
from tests.helpers.binaries import require_binaries
from tests.helpers.coturn import Coturn, running_coturn
from tests.helpers.webrtc_peer import (
    Kind,
    MemoryRelay,
    WebRtcPeer,
    assert_relay_candidates_only,
    hold_call,
    ice_servers_from_settings,
)

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


@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_two_peers_connect_and_receive_each_others_track(relay: MemoryRelay, kind: Kind) -> None:
    alice, bob = pair(relay, kind)
    await hold_call(relay, alice, bob, timeout=CALL_TIMEOUT)
    await relay.drain(CALL_TIMEOUT)
    for name in ("alice", "bob"):  # each peer's messages arrived in order, each exactly once
        assert [m for s, _, m in relay.log if s == name] == [m for s, _, m in relay.sent if s == name]
    sent = [(sender, message["type"]) for sender, _, message in relay.log]
    assert sent[0] == ("alice", "offer") and ("bob", "answer") in sent
    # The descriptions travel without candidates; every candidate is a message of its own.
    assert all("a=candidate" not in m["payload"].get("sdp", "") for _, _, m in relay.log)
    assert {s for s, kind_ in sent if kind_ == "candidate"} == {"alice", "bob"}


async def test_two_peers_connect_through_coturn_with_credentials_from_talkd(
        relay: MemoryRelay, app_factory: AppFactory, tmp_path: Path) -> None:
    require_binaries("turnserver", package="coturn")
    coturn: Coturn
    async with running_coturn(tmp_path, secrets.token_hex(16)) as coturn:
        talk = await app_factory(stun__servers=(), turn__servers=(f"127.0.0.1:{coturn.port}",),
                                 turn__secret=coturn.secret, turn__protocols=("udp",))
        settings = (await talk.ocs("GET", "/apps/spreed/api/v3/signaling/settings", user="admin")).expect(200).data
        alice, bob = pair(relay, "audio", ice_servers=ice_servers_from_settings(settings["turnservers"]),
                          relay_only=True)
        await hold_call(relay, alice, bob, timeout=CALL_TIMEOUT)
        assert_relay_candidates_only(alice, bob)  # so the media crossed our coturn
        username = settings["turnservers"][0]["username"]
        assert await coturn.wait_for_log(f"user <{username}>: incoming packet ALLOCATE processed, success")
        await relay.close()
