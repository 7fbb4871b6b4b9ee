"""A real coturn (use-auth-secret, static-auth-secret) accepts the TURN credentials talkd hands out
through GET /signaling/settings, and refuses them tampered with or expired. turnutils_uclient does
the allocating; the server's own log says why it refused."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.conftest import AppFactory, ShiftedClock
from tests.helpers.binaries import require_binaries
from tests.helpers.client import TalkClient
from tests.helpers.coturn import Coturn, UclientResult, allocate_and_relay, running_coturn

pytestmark = pytest.mark.interop


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[Coturn]:
    require_binaries("turnserver", "turnutils_uclient", package="coturn")
    async with running_coturn(tmp_path, secrets.token_hex(16)) as server:
        yield server


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def talk(app_factory: AppFactory, coturn: Coturn, clock: ShiftedClock) -> TalkClient:
    talk = await app_factory(clock=clock, stun__servers=(), turn__servers=(f"127.0.0.1:{coturn.port}",),
                             turn__secret=coturn.secret, turn__protocols=("udp", "tcp"))
    await talk.make_user("alice")
    return talk


async def turn_entry(talk: TalkClient) -> dict[str, Any]:
    reply = await talk.ocs("GET", "/apps/spreed/api/v3/signaling/settings", user="alice")
    (entry,) = reply.expect(200).data["turnservers"]
    return dict(entry)


def target(url: str) -> tuple[str, int, bool]:
    """`turn:127.0.0.1:3478?transport=tcp` → (host, port, over TCP)."""
    scheme, _, rest = url.partition(":")
    assert scheme == "turn"
    parts = urlsplit(f"//{rest}")
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port, parse_qs(parts.query)["transport"] == ["tcp"]


async def refused(coturn: Coturn, username: str, password: str) -> UclientResult:
    result = await allocate_and_relay("127.0.0.1", coturn.port, username, password, tcp=False)
    assert result.returncode != 0, result.output
    assert "Cannot complete Allocation" in result.output
    assert await coturn.wait_for_log(f"user <{username}>: incoming packet message processed, error 401"), \
        coturn.log()[-3000:]
    assert f"user <{username}>: incoming packet ALLOCATE processed, success" not in coturn.log()
    return result


async def test_coturn_relays_with_the_credentials_talkd_hands_out(talk: TalkClient, coturn: Coturn) -> None:
    entry = await turn_entry(talk)
    targets = [target(url) for url in entry["urls"]]
    assert targets == [("127.0.0.1", coturn.port, False), ("127.0.0.1", coturn.port, True)]
    results = await asyncio.gather(*(
        allocate_and_relay(host, port, entry["username"], entry["credential"], tcp=tcp)
        for host, port, tcp in targets))
    for result in results:
        assert result.returncode == 0, result.output
        # Two relays, two packets each way: all four arrive through coturn.
        assert "tot_send_msgs=4, tot_recv_msgs=4" in result.output, result.output
        assert "Total lost packets 0 " in result.output, result.output
    assert await coturn.wait_for_log(f"user <{entry['username']}>: incoming packet ALLOCATE processed, success")


async def test_coturn_refuses_a_tampered_password(talk: TalkClient, coturn: Coturn) -> None:
    entry = await turn_entry(talk)
    password = entry["credential"]
    await refused(coturn, entry["username"], ("B" if password[0] == "A" else "A") + password[1:])


async def test_coturn_refuses_a_user_name_with_a_later_expiry(talk: TalkClient, coturn: Coturn) -> None:
    entry = await turn_entry(talk)
    expiry, _, random_part = entry["username"].partition(":")
    await refused(coturn, f"{int(expiry) + 86400}:{random_part}", entry["credential"])


async def test_coturn_refuses_expired_credentials(talk: TalkClient, coturn: Coturn, clock: ShiftedClock) -> None:
    clock.shift(-(86400 + 60))  # talkd a day and a minute behind: its credentials expired a minute ago
    entry = await turn_entry(talk)
    assert int(entry["username"].split(":")[0]) < time.time()
    await refused(coturn, entry["username"], entry["credential"])
