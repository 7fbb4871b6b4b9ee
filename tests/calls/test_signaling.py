"""Internal signaling (/signaling/{token}): messages reach exactly the addressed session of the same
conversation, the long poll wakes on the bus and reports usersInRoom, guests signal too, and bad
input (malformed, too large, wrong recipient or sender) is refused whole."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from talkd.storage.tables import signaling_messages
from tests.api.conftest import AppFactory
from tests.calls.conftest import (
    V4,
    GuestFactory,
    call_path,
    envelope,
    join_room,
    make_room,
    send_signaling,
    signaling_path,
)
from tests.helpers.client import TalkClient
from tests.helpers.locks import until_waiting_for_locks


def delivered(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [orjson.loads(item["data"]) for item in data if item["type"] == "message"]


def users_in_room(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert data[-1]["type"] == "usersInRoom"
    return list(data[-1]["data"])


async def pull(talk: TalkClient, token: str, user: str | None = None, *, version: int = 3,
               code: int = 200) -> list[dict[str, Any]]:
    return list((await talk.ocs("GET", signaling_path(token, version), user=user)).expect(code).data)


async def three_in_a_room(talk: TalkClient) -> tuple[str, dict[str, str]]:
    for user in ("alice", "bob", "carol"):
        await talk.make_user(user)
    token = await make_room(talk, "alice", invite=("bob", "carol"))
    return token, {user: await join_room(talk, token, user) for user in ("alice", "bob", "carol")}


@pytest.mark.parametrize("version", [1, 2, 3])
async def test_message_reaches_only_the_addressed_session(talk: TalkClient, version: int) -> None:
    token, sessions = await three_in_a_room(talk)
    offer = envelope(sessions["alice"], sessions["bob"], "offer", type="offer", sdp="v=0\r\n")
    (await send_signaling(talk, token, [offer], user="alice", version=version)).expect(200)

    got = await pull(talk, token, "bob", version=version)
    assert delivered(got) == [{"to": sessions["bob"], "from": sessions["alice"], "type": "offer",
                               "roomType": "video", "payload": {"type": "offer", "sdp": "v=0\r\n"}}]
    users = users_in_room(got)
    assert sorted(u["sessionId"] for u in users) == sorted(sessions.values())
    bob = next(u for u in users if u["sessionId"] == sessions["bob"])
    assert bob["userId"] == "bob" and bob["inCall"] == 0 and bob["lastPing"] > 0 and bob["roomId"] > 0
    assert bob["participantPermissions"] > 0
    # Delivered once: the queue is empty afterwards; carol and alice never see it.
    assert delivered(await pull(talk, token, "bob", version=version)) == []
    assert delivered(await pull(talk, token, "carol", version=version)) == []
    assert delivered(await pull(talk, token, "alice", version=version)) == []


async def test_messages_arrive_in_order_and_batches_are_accepted(talk: TalkClient) -> None:
    token, sessions = await three_in_a_room(talk)
    batch = [{"ev": "connect"}] + [envelope(sessions["alice"], sessions["bob"], "candidate", n=n) for n in range(5)]
    (await send_signaling(talk, token, batch, user="alice")).expect(200)
    assert [m["payload"]["n"] for m in delivered(await pull(talk, token, "bob"))] == [0, 1, 2, 3, 4]


async def test_overlapping_pulls_of_one_session_share_out_its_messages(talk: TalkClient) -> None:
    """Two pulls of one session at once (a retried request, two tabs of one browser): each message goes to
    exactly one of them, in order."""
    if talk.services.db.dialect != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: the two takes cannot overlap")
    token, sessions = await three_in_a_room(talk)
    batch = [envelope(sessions["alice"], sessions["bob"], "candidate", n=n) for n in range(5)]
    (await send_signaling(talk, token, batch, user="alice")).expect(200)
    db = talk.services.db
    async with db.transaction("test_hold_queue") as conn:
        # Both pulls find the queued messages, then wait behind this lock to remove them.
        await conn.execute(sa.select(signaling_messages.c.id).with_for_update())
        pulls = [asyncio.create_task(pull(talk, token, "bob")) for _ in range(2)]
        await until_waiting_for_locks(db, 2)
    got = [[m["payload"]["n"] for m in delivered(data)] for data in await asyncio.gather(*pulls)]
    assert sorted(got, key=len) == [[], [0, 1, 2, 3, 4]]


async def test_messages_may_come_as_a_json_list_too(talk: TalkClient) -> None:
    token, sessions = await three_in_a_room(talk)
    batch = [envelope(sessions["alice"], sessions["bob"], "offer")]
    (await talk.ocs("POST", signaling_path(token), user="alice", json={"messages": batch})).expect(200)
    assert [m["type"] for m in delivered(await pull(talk, token, "bob"))] == ["offer"]


async def test_long_poll_wakes_when_a_message_is_sent(app_factory: AppFactory) -> None:
    # Talk's 30-second poll: the answer carries the message only if the bus woke the waiting pull.
    talk = await app_factory(signaling__pull_timeout=30.0)
    token, sessions = await three_in_a_room(talk)
    waiting = asyncio.create_task(pull(talk, token, "bob"))
    await asyncio.sleep(0.2)  # let the pull start waiting (if it has not, it finds the message at once)
    (await send_signaling(talk, token, [envelope(sessions["alice"], sessions["bob"], "answer")],
                          user="alice")).expect(200)
    got = await asyncio.wait_for(waiting, 20)
    assert [m["type"] for m in delivered(got)] == ["answer"]


async def test_long_poll_returns_when_someone_joins_or_leaves(app_factory: AppFactory) -> None:
    talk = await app_factory(signaling__pull_timeout=30.0)
    token, sessions = await three_in_a_room(talk)
    waiting = asyncio.create_task(pull(talk, token, "alice"))
    await asyncio.sleep(0.2)
    (await talk.ocs("DELETE", f"{V4}/room/{token}/participants/active", user="carol")).expect(200)
    users = users_in_room(await asyncio.wait_for(waiting, 20))
    assert sorted(u["sessionId"] for u in users) == sorted([sessions["alice"], sessions["bob"]])

    waiting = asyncio.create_task(pull(talk, token, "alice"))
    await asyncio.sleep(0.2)
    (await talk.ocs("POST", call_path(token), user="bob", json={"flags": 3})).expect(200)
    users = users_in_room(await asyncio.wait_for(waiting, 20))
    assert {u["sessionId"]: u["inCall"] for u in users} == {sessions["alice"]: 0, sessions["bob"]: 3}


async def test_recipients_outside_the_conversation_are_refused_and_nothing_is_delivered(talk: TalkClient) -> None:
    token, sessions = await three_in_a_room(talk)
    await talk.make_user("dave")
    other = await make_room(talk, "dave", invite=("alice",))
    dave_session = await join_room(talk, other, "dave")
    good = envelope(sessions["alice"], sessions["bob"], "offer")
    for recipient in (dave_session, "not-a-session", ""):
        bad = envelope(sessions["alice"], recipient, "offer")
        reply = await send_signaling(talk, token, [good, bad], user="alice")
        reply.expect(400)
    assert delivered(await pull(talk, token, "bob")) == []  # the good half of a refused batch neither
    assert delivered(await pull(talk, other, "dave")) == []
    # Speaking for someone else's session is refused too.
    spoofed = envelope(sessions["carol"], sessions["bob"], "offer")
    (await send_signaling(talk, token, [spoofed], user="alice")).expect(400)
    assert delivered(await pull(talk, token, "bob")) == []


@pytest.mark.parametrize("messages", [
    "not json", "{}", '{"ev": "message"}', "[1, 2]", '["x"]',
    '[{"ev": "message", "sessionId": "%s", "fn": "not json"}]',
    '[{"ev": "message", "sessionId": "%s", "fn": "[]"}]',
    '[{"ev": "message", "sessionId": "%s", "fn": "{\\"to\\": \\"x\\"}"}]',
    '[{"ev": "message", "sessionId": "%s", "fn": 5}]',
    "",
])
async def test_400_malformed_messages(talk: TalkClient, messages: str) -> None:
    token, sessions = await three_in_a_room(talk)
    body = messages.replace("%s", sessions["alice"]) if "%s" in messages else messages
    (await talk.ocs("POST", signaling_path(token), user="alice", json={"messages": body})).expect(400)
    (await talk.ocs("POST", signaling_path(token), user="alice", json={})).expect(400)


async def test_413_payload_over_the_limit(talk: TalkClient) -> None:
    token, sessions = await three_in_a_room(talk)
    limit = talk.services.settings.signaling.max_payload_bytes
    huge = envelope(sessions["alice"], sessions["bob"], "offer", type="offer", sdp="a" * limit)
    (await send_signaling(talk, token, [huge], user="alice")).expect(413)
    assert delivered(await pull(talk, token, "bob")) == []


async def test_control_messages_need_a_moderator(talk: TalkClient) -> None:
    token, sessions = await three_in_a_room(talk)
    control = envelope(sessions["bob"], sessions["carol"], "control", action="forceMute")
    (await send_signaling(talk, token, [control], user="bob")).expect(403)
    assert delivered(await pull(talk, token, "carol")) == []
    control = envelope(sessions["alice"], sessions["carol"], "control", action="forceMute")
    (await send_signaling(talk, token, [control], user="alice")).expect(200)
    assert [m["type"] for m in delivered(await pull(talk, token, "carol"))] == ["control"]


async def test_404_without_a_session_in_the_conversation(talk: TalkClient) -> None:
    token, sessions = await three_in_a_room(talk)
    await talk.make_user("eve")
    message = [envelope(sessions["alice"], sessions["bob"])]
    for user in ("eve", None):
        (await send_signaling(talk, token, message, user=user)).expect(404)
        assert await pull(talk, token, user, code=404) == [{"type": "usersInRoom", "data": []}]
    (await send_signaling(talk, "doesnotexist", message, user="alice")).expect(404)
    await pull(talk, "doesnotexist", "alice", code=404)
    # An attendee who has not joined (or left) has no session to signal from.
    (await talk.ocs("DELETE", f"{V4}/room/{token}/participants/active", user="bob")).expect(200)
    (await send_signaling(talk, token, [envelope(sessions["bob"], sessions["alice"])], user="bob")).expect(404)
    await pull(talk, token, "bob", code=404)
    # ...and what was queued for the ended session went with it.
    assert delivered(await pull(talk, token, "alice")) == []


async def test_guests_signal_in_public_conversations(talk: TalkClient, guest_client: GuestFactory) -> None:
    await talk.make_user("alice")
    features = (await talk.ocs("GET", "/cloud/capabilities")).expect(200).data["capabilities"]["spreed"]["features"]
    assert {"audio", "video", "guest-signaling", "no-ping", "in-call-flags"} <= set(features)
    token = await make_room(talk, "alice", room_type=3)
    guest = await guest_client(talk)
    guest_session = await join_room(guest, token)
    alice_session = await join_room(talk, token, "alice")
    (await send_signaling(guest, token, [envelope(guest_session, alice_session, "offer")])).expect(200)
    assert [m["from"] for m in delivered(await pull(talk, token, "alice"))] == [guest_session]
    (await send_signaling(talk, token, [envelope(alice_session, guest_session, "answer")], user="alice")).expect(200)
    got = await pull(guest, token)
    assert [m["from"] for m in delivered(got)] == [alice_session]
    assert {u["sessionId"]: u["userId"] for u in users_in_room(got)} == {guest_session: "", alice_session: "alice"}


async def test_409_when_the_session_ends_during_the_poll(app_factory: AppFactory, guest_client: GuestFactory
                                                         ) -> None:
    talk = await app_factory(signaling__pull_timeout=30.0)
    await talk.make_user("alice")
    token = await make_room(talk, "alice", room_type=3)
    guest = await guest_client(talk)
    await join_room(guest, token)
    waiting = asyncio.create_task(pull(guest, token, code=409))
    await asyncio.sleep(0.2)
    (await guest.ocs("DELETE", f"{V4}/room/{token}/participants/active")).expect(200)
    assert users_in_room(await asyncio.wait_for(waiting, 20)) == []


async def test_400_when_signaling_is_external(app_factory: AppFactory) -> None:
    talk = await app_factory(signaling__mode="external", signaling__servers=("wss://hpb.example",),
                             signaling__secret="s3cret")
    token, sessions = await three_in_a_room(talk)
    (await send_signaling(talk, token, [envelope(sessions["alice"], sessions["bob"])], user="alice")).expect(400)
    await pull(talk, token, "bob", code=400)
