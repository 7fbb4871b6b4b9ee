"""GET /apps/spreed/api/v{1,2,3}/signaling/settings: the per-version shapes of the STUN and TURN lists,
sipDialinInfo from v2 on, TURN REST credentials (checked here with hmac/hashlib/base64 alone, the
way coturn checks them), the external-server ticket, and 404 for an unknown conversation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from talkd.domain.auth import Identity
from talkd.ids import RoomToken, UserId
from tests.api.conftest import AppFactory, ShiftedClock
from tests.helpers.client import TalkClient

SETTINGS = "/apps/spreed/api/{}/signaling/settings"
TURN_SECRET = "coturn-static-auth-secret"
CONFIGURED: dict[str, Any] = {
    "stun__servers": ("stun1.example.org:3478", "[2001:db8::1]:443"),
    "turn__servers": ("turn1.example.org:3478", "turn2.example.org:443"),
    "turn__secret": TURN_SECRET,
    "turn__schemes": ("turn", "turns"),
    "turn__protocols": ("udp", "tcp"),
    "turn__credential_ttl": 3600,
    "signaling__sip_dialin_info": "Dial +49 30 1234567 and enter the PIN",
}
TURN1_URLS = ["turn:turn1.example.org:3478?transport=udp", "turn:turn1.example.org:3478?transport=tcp",
              "turns:turn1.example.org:3478?transport=udp", "turns:turn1.example.org:3478?transport=tcp"]
TURN2_URLS = [url.replace("turn1.example.org:3478", "turn2.example.org:443") for url in TURN1_URLS]


def coturn_accepts(username: str, credential: str, secret: str, now: float) -> bool:
    """What coturn does under use-auth-secret: the timestamp before the first colon must lie in the
    future, and the password must be base64(HMAC-SHA1(static-auth-secret, username))."""
    expected = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return int(username.split(":", 1)[0]) > now and hmac.compare_digest(expected, credential)


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def configured(app_factory: AppFactory, clock: ShiftedClock) -> TalkClient:
    talk = await app_factory(clock=clock, **CONFIGURED)
    await talk.make_user("alice")
    return talk


async def get_settings(talk: TalkClient, api: str, *, user: str | None = "alice", version: int = 2,
                       **params: str) -> Any:
    reply = await talk.ocs("GET", SETTINGS.format(api), user=user, version=version, params=params)
    return reply.expect(200).data


# Shapes per API version ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_v1_and_v2_list_each_stun_server_as_a_url_string(configured: TalkClient, api: str) -> None:
    data = await get_settings(configured, api)
    assert data["stunservers"] == [{"url": "stun:stun1.example.org:3478"}, {"url": "stun:[2001:db8::1]:443"}]


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_v1_and_v2_list_one_turn_entry_per_url_as_one_element_arrays(configured: TalkClient, api: str) -> None:
    data = await get_settings(configured, api)
    turn = data["turnservers"]
    assert [entry["url"] for entry in turn] == [[url] for url in TURN1_URLS + TURN2_URLS]
    assert all(entry["urls"] == entry["url"] for entry in turn)
    assert all(set(entry) == {"url", "urls", "username", "credential"} for entry in turn)
    # One credential pair per answer: every server shares the secret.
    assert len({(entry["username"], entry["credential"]) for entry in turn}) == 1


async def test_v3_lists_all_stun_urls_in_one_entry(configured: TalkClient) -> None:
    data = await get_settings(configured, "v3")
    assert data["stunservers"] == [{"urls": ["stun:stun1.example.org:3478", "stun:[2001:db8::1]:443"]}]


async def test_v3_lists_one_turn_entry_per_server_with_every_scheme_and_transport(configured: TalkClient) -> None:
    data = await get_settings(configured, "v3")
    turn = data["turnservers"]
    assert [entry["urls"] for entry in turn] == [TURN1_URLS, TURN2_URLS]
    assert all(set(entry) == {"urls", "username", "credential"} for entry in turn)


async def test_sip_dialin_info_is_there_from_v2_on(configured: TalkClient) -> None:
    assert "sipDialinInfo" not in await get_settings(configured, "v1")
    for api in ("v2", "v3"):
        assert (await get_settings(configured, api))["sipDialinInfo"] == CONFIGURED["signaling__sip_dialin_info"]


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
async def test_internal_mode_fields_for_a_user(configured: TalkClient, api: str) -> None:
    data = await get_settings(configured, api)
    assert data["signalingMode"] == "internal"
    assert data["userId"] == "alice"
    assert data["hideWarning"] is False
    assert data["server"] == ""
    expected = {"signalingMode", "userId", "hideWarning", "server", "ticket", "stunservers", "turnservers"}
    assert set(data) == expected | ({"sipDialinInfo"} if api != "v1" else set())


async def public_room(talk: TalkClient, room_type: int = 3) -> str:
    reply = await talk.ocs("POST", "/apps/spreed/api/v4/room", user="alice",
                           json={"roomType": room_type, "roomName": "Somewhere"})
    return str(reply.expect(201).data["token"])


@pytest.mark.parametrize("version", [1, 2])
async def test_anonymous_callers_get_settings_with_a_null_user(configured: TalkClient, version: int) -> None:
    token = await public_room(configured)
    data = await get_settings(configured, "v3", user=None, version=version, token=token)
    assert data["userId"] is None
    assert data["ticket"].split(":")[2] == ""
    assert configured.services.signaling_settings.check_ticket(None, data["ticket"])


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
@pytest.mark.parametrize("version", [1, 2])
async def test_guests_get_no_turn_credentials_without_a_conversation(configured: TalkClient, api: str,
                                                                      version: int) -> None:
    """No open TURN relay: without a conversation they may use, guests get 404 and no credentials."""
    group_room = await public_room(configured, room_type=2)
    for params in ({}, {"token": ""}, {"token": group_room}, {"token": "unknown1"}):
        reply = await configured.ocs("GET", SETTINGS.format(api), version=version, params=params)
        assert reply.expect(404).data == [], params
        assert b"credential" not in reply.body and b"turn" not in reply.body


async def test_users_without_a_token_get_settings_as_in_talk(configured: TalkClient) -> None:
    # Talk's soft-fail for older mobile apps, kept for logged-in users.
    data = await get_settings(configured, "v3")
    assert data["userId"] == "alice" and data["turnservers"]


async def test_refusals_are_throttled_as_talk_room_token(app_factory: AppFactory, clock: ShiftedClock) -> None:
    talk = await app_factory(clock=clock, server__trusted_proxies=("127.0.0.1",), **CONFIGURED)
    await talk.make_user("alice")
    base = talk.services.settings.security.bruteforce_base_delay
    token = await public_room(talk)
    stranger = {"X-Forwarded-For": "10.0.0.1"}
    for n in range(6):
        params = {"token": f"unknown{n}"} if n % 2 else {}
        (await talk.ocs("GET", SETTINGS.format("v3"), headers=stranger, params=params)).expect(404)
    assert clock.throttle_sleeps == pytest.approx([base * 2 ** n for n in range(1, 6)])
    # Past the maximum delay the address is refused even for a conversation it may use...
    reply = await talk.ocs("GET", SETTINGS.format("v3"), headers=stranger, params={"token": token})
    assert reply.expect(429).message == "Reached maximum delay"
    # ...and only that address.
    data = (await talk.ocs("GET", SETTINGS.format("v3"), headers={"X-Forwarded-For": "10.0.0.2"},
                           params={"token": token})).expect(200).data
    assert data["turnservers"]


async def test_nothing_configured_gives_empty_lists_and_no_dialin_info(app_factory: AppFactory) -> None:
    talk = await app_factory(stun__servers=())
    for api in ("v1", "v2", "v3"):
        data = await get_settings(talk, api, user="admin")
        assert data["stunservers"] == [] and data["turnservers"] == []
    assert (await get_settings(talk, "v2", user="admin"))["sipDialinInfo"] == ""


async def test_default_stun_server_is_talks(app_factory: AppFactory) -> None:
    talk = await app_factory()
    data = await get_settings(talk, "v3", user="admin")
    assert data["stunservers"] == [{"urls": ["stun:stun.nextcloud.com:443"]}]


async def test_hide_warning_follows_the_setting(app_factory: AppFactory) -> None:
    talk = await app_factory(signaling__hide_warning=True)
    assert (await get_settings(talk, "v3", user="admin"))["hideWarning"] is True


async def test_external_mode_names_the_server_and_hides_the_warning(app_factory: AppFactory) -> None:
    talk = await app_factory(signaling__mode="external", signaling__secret="hpb-secret",
                             signaling__servers=("https://hpb1.example.org", "https://hpb2.example.org"))
    data = await get_settings(talk, "v3", user="admin")
    assert data["signalingMode"] == "external"
    assert data["server"] == "https://hpb1.example.org"
    assert data["hideWarning"] is True


async def test_xml_answer_carries_the_same_lists(configured: TalkClient) -> None:
    reply = await configured.ocs("GET", SETTINGS.format("v1"), user="alice", fmt="xml")
    assert reply.http_status == 200
    data = ET.fromstring(reply.body).find("data")
    assert data is not None
    assert [e.findtext("url") for e in data.iterfind("stunservers/element")] == [
        "stun:stun1.example.org:3478", "stun:[2001:db8::1]:443"]
    assert [e.findtext("url/element") for e in data.iterfind("turnservers/element")] == TURN1_URLS + TURN2_URLS


# TURN REST credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
async def test_turn_credentials_are_what_coturn_checks(configured: TalkClient, clock: ShiftedClock,
                                                       api: str) -> None:
    before = int(clock.now())
    data = await get_settings(configured, api)
    entry = data["turnservers"][0]
    expiry, _, random_part = entry["username"].partition(":")
    assert before + 3600 <= int(expiry) <= int(clock.now()) + 3600
    assert len(random_part) == 16 and random_part.isalnum()
    assert coturn_accepts(entry["username"], entry["credential"], TURN_SECRET, clock.now())
    assert not coturn_accepts(entry["username"], entry["credential"], "another-secret", clock.now())


async def test_turn_credentials_expire_after_the_ttl(configured: TalkClient, clock: ShiftedClock) -> None:
    entry = (await get_settings(configured, "v3"))["turnservers"][0]
    clock.shift(3599)
    assert coturn_accepts(entry["username"], entry["credential"], TURN_SECRET, clock.now())
    clock.shift(2)
    assert not coturn_accepts(entry["username"], entry["credential"], TURN_SECRET, clock.now())
    fresh = (await get_settings(configured, "v3"))["turnservers"][0]
    assert coturn_accepts(fresh["username"], fresh["credential"], TURN_SECRET, clock.now())


async def test_every_answer_has_its_own_turn_user_name(configured: TalkClient) -> None:
    names = {(await get_settings(configured, "v3"))["turnservers"][0]["username"] for _ in range(3)}
    assert len(names) == 3


# The external-server ticket -----------------------------------------------------------------------


async def test_ticket_names_the_user_and_only_verifies_for_them(configured: TalkClient, clock: ShiftedClock) -> None:
    ticket = (await get_settings(configured, "v3"))["ticket"]
    random_part, timestamp, user, checksum = ticket.split(":")
    assert user == "alice" and abs(int(timestamp) - clock.now()) < 5 and len(checksum) == 64
    service = configured.services.signaling_settings
    assert service.check_ticket(UserId("alice"), ticket)
    assert not service.check_ticket(UserId("bob"), ticket)
    assert not service.check_ticket(UserId("alice"), f"{random_part}:{int(timestamp) + 1}:alice:{checksum}")
    assert not service.check_ticket(UserId("alice"), ticket[:-1] + ("0" if ticket[-1] != "0" else "1"))


# The conversation token ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2", "v3"])
@pytest.mark.parametrize("version", [1, 2])
async def test_unknown_conversation_is_404(configured: TalkClient, api: str, version: int) -> None:
    reply = await configured.ocs("GET", SETTINGS.format(api), user="alice", version=version,
                                 params={"token": "abcdefgh"})
    assert reply.expect(404).data == []


async def test_token_goes_through_the_room_lookup(configured: TalkClient) -> None:
    """The seam the rooms service plugs into: a token it knows is served, any other is 404."""
    asked: list[tuple[str, str | None]] = []

    async def lookup(token: RoomToken, identity: Identity) -> object | None:
        asked.append((token, identity.user_id))
        return {"token": token} if token == "known123" else None

    configured.services.room_lookup = lookup
    data = await get_settings(configured, "v3", token="known123")
    assert data["userId"] == "alice"
    (await configured.ocs("GET", SETTINGS.format("v3"), user="alice", params={"token": "other123"})).expect(404)
    assert asked == [("known123", "alice"), ("other123", "alice")]


async def test_overlong_token_is_400(configured: TalkClient) -> None:
    reply = await configured.ocs("GET", SETTINGS.format("v3"), user="alice", params={"token": "x" * 33})
    reply.expect(400)


@pytest.mark.parametrize("api", ["v4", "v0", "v12"])
async def test_other_api_versions_do_not_exist(configured: TalkClient, api: str) -> None:
    reply = await configured.ocs("GET", SETTINGS.format(api), user="alice")
    reply.expect(998)
