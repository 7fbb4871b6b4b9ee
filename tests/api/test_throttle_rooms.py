"""Brute-force protection of conversations, as Talk does it: wrong room passwords count per address
under their own action (talkRoomPassword), tokens naming no conversation the caller may see count
as talkRoomToken (room get, join, signaling settings); neither locks anything for other addresses nor
counts against the address's logins."""

from __future__ import annotations

from typing import Any

import pytest

from talkd.domain.throttle import ThrottleAction
from tests.api.conftest import AppFactory, ShiftedClock
from tests.helpers.client import OcsReply, TalkClient

V1, V4 = "/apps/spreed/api/v1", "/apps/spreed/api/v4"
PROXY = {"server__trusted_proxies": ("127.0.0.1",)}


def via(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def doubling(count: int, base: float) -> list[float]:
    return [base * 2 ** n for n in range(1, count + 1)]


async def world(app_factory: AppFactory, clock: ShiftedClock, **changes: Any) -> TalkClient:
    talk = await app_factory(clock=clock, **{**PROXY, **changes})
    for name in ("alice", "carol", "dave"):
        await talk.make_user(name)
    return talk


async def room(talk: TalkClient, room_type: int = 3, password: str = "") -> str:
    reply = await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": room_type, "roomName": "Room"})
    token = str(reply.expect(201).data["token"])
    if password:
        (await talk.ocs("PUT", f"{V1}/room/{token}/password", user="alice", json={"password": password})).expect(200)
    return token


async def join(talk: TalkClient, token: str, user: str | None, address: str, password: str = "") -> OcsReply:
    return await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user=user, headers=via(address),
                          json={"password": password})


async def test_room_password_guesses_never_lock_the_room_for_others(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await world(app_factory, clock)
    base = talk.services.settings.security.bruteforce_base_delay
    token = await room(talk, password="open sesame")
    for n in range(6):
        (await join(talk, token, "carol", "10.0.0.1", password=f"guess{n}")).expect(403)
    assert clock.throttle_sleeps == pytest.approx(doubling(5, base))
    (await join(talk, token, "carol", "10.0.0.1", password="open sesame")).expect(429)
    # Someone else, elsewhere, gets in at once.
    (await join(talk, token, "dave", "10.0.0.2", password="open sesame")).expect(200)
    assert len(clock.throttle_sleeps) == 5


async def test_room_password_failures_do_not_count_against_logins(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await world(app_factory, clock)
    token = await room(talk, password="open sesame")
    for n in range(5):
        (await join(talk, token, "carol", "10.0.0.1", password=f"guess{n}")).expect(403)
    sleeps = len(clock.throttle_sleeps)
    (await talk.ocs("GET", "/cloud/user", user="dave", password="wrong", headers=via("10.0.0.1"))).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="dave", headers=via("10.0.0.1"))).expect(200)
    assert len(clock.throttle_sleeps) == sleeps + 1  # only the delay its own login failure earned
    throttle = talk.services.throttle
    assert await throttle.attempts("10.0.0.1", ThrottleAction.ROOM_PASSWORD) == 5
    assert await throttle.attempts("10.0.0.1", ThrottleAction.LOGIN) == 0


async def test_the_right_room_password_clears_that_rooms_failures_from_that_address(app_factory: AppFactory
                                                                                  ) -> None:
    clock = ShiftedClock()
    talk = await world(app_factory, clock)
    token, other = await room(talk, password="open sesame"), await room(talk, password="other")
    (await join(talk, other, "carol", "10.0.0.1", password="guess")).expect(403)
    (await join(talk, token, "carol", "10.0.0.1", password="guess")).expect(403)
    (await join(talk, token, "carol", "10.0.0.1", password="open sesame")).expect(200)
    assert await talk.services.throttle.attempts("10.0.0.1", ThrottleAction.ROOM_PASSWORD) == 1


async def test_unknown_room_tokens_are_throttled_per_address(app_factory: AppFactory) -> None:
    """Guessing conversation tokens (room get, join, signaling settings) slows down the address and
    then refuses it for every conversation, logged in or not; other addresses and logins are untouched."""
    clock = ShiftedClock()
    talk = await world(app_factory, clock)
    base = talk.services.settings.security.bruteforce_base_delay
    public, group = await room(talk), await room(talk, room_type=2)
    stranger = via("10.0.0.1")
    (await talk.ocs("GET", f"{V4}/room/unknown0", headers=stranger)).expect(404)
    (await talk.ocs("GET", f"{V4}/room/unknown1", user="carol", headers=stranger)).expect(404)
    (await talk.ocs("GET", f"{V4}/room/{group}", user="carol", headers=stranger)).expect(404)  # not hers
    (await join(talk, "unknown2", None, "10.0.0.1")).expect(404)
    (await join(talk, group, "carol", "10.0.0.1")).expect(404)
    (await talk.ocs("GET", "/apps/spreed/api/v3/signaling/settings", headers=stranger,
                    params={"token": "unknown3"})).expect(404)
    assert clock.throttle_sleeps == pytest.approx(doubling(5, base))
    assert await talk.services.throttle.attempts("10.0.0.1", ThrottleAction.ROOM_TOKEN) == 6
    for reply in (await talk.ocs("GET", f"{V4}/room/{public}", user="carol", headers=stranger),
                  await join(talk, public, "carol", "10.0.0.1")):
        assert reply.expect(429).message == "Reached maximum delay"
    (await talk.ocs("GET", f"{V4}/room/{public}", user="carol", headers=via("10.0.0.2"))).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="dave", headers=stranger)).expect(200)
    assert len(clock.throttle_sleeps) == 5


@pytest.mark.parametrize("changes", [{"security__bruteforce_allowlist": ("10.0.0.0/8",)},
                                     {"security__bruteforce_enabled": False}],
                         ids=["allow-listed", "switched-off"])
async def test_exempt_clients_are_never_throttled_in_rooms(app_factory: AppFactory, changes: dict[str, Any]
                                                           ) -> None:
    clock = ShiftedClock()
    talk = await world(app_factory, clock, **changes)
    token = await room(talk, password="open sesame")
    for n in range(10):
        (await join(talk, token, "carol", "10.0.0.1", password=f"guess{n}")).expect(403)
        (await talk.ocs("GET", f"{V4}/room/unknown{n}", headers=via("10.0.0.1"))).expect(404)
    (await join(talk, token, "carol", "10.0.0.1", password="open sesame")).expect(200)
    assert clock.throttle_sleeps == []
    for action in ThrottleAction:
        assert await talk.services.throttle.attempts("10.0.0.1", action) == 0
