"""Sessions that stop pinging leave the call and the conversation after signaling.session_ping_timeout;
a signaling pull is a ping. The background job does the expiring; the test moves the clock."""

from __future__ import annotations

import asyncio

from talkd.bus.waiter import wait_for
from talkd.clock import SystemClock
from talkd.domain.events import room_topic
from tests.api.conftest import AppFactory, ShiftedClock
from tests.calls.conftest import V4, GuestFactory, call_path, join_room, make_room, room, signaling_path

TIMEOUT = 6  # seconds; the expiry job looks every 2 (a third of it)


async def test_vanished_clients_leave_the_call_and_the_last_one_ends_it(
        app_factory: AppFactory, guest_client: GuestFactory) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock, signaling__session_ping_timeout=TIMEOUT)
    await talk.make_user("alice")
    await talk.make_user("bob")
    token = await make_room(talk, "alice", room_type=3, invite=("bob",))
    alice = await join_room(talk, token, "alice")
    bob = await join_room(talk, token, "bob")
    guest = await guest_client(talk)
    guest_session = await join_room(guest, token)
    (await talk.ocs("POST", call_path(token), user="bob")).expect(200)
    (await guest.ocs("POST", call_path(token))).expect(200)
    (await talk.ocs("POST", call_path(token), user="alice")).expect(200)

    # Alice keeps pulling signaling messages (her pings); bob and the guest go silent.
    clock.shift(TIMEOUT - 1)
    (await talk.ocs("GET", signaling_path(token), user="alice")).expect(200)
    clock.shift(2)
    async with asyncio.timeout(30):
        while True:
            users = (await talk.ocs("GET", signaling_path(token), user="alice")).expect(200).data[-1]["data"]
            if {u["sessionId"] for u in users} == {alice}:
                break
    rows = (await talk.ocs("GET", call_path(token), user="alice")).expect(200).data
    assert [r["sessionId"] for r in rows] == [alice]
    state = await room(talk, token, "alice")
    assert state["hasCall"] and state["lastMessage"]["systemMessage"] == "call_left"

    # Bob is still invited but has no session any more; the guest is gone altogether.
    (await talk.ocs("POST", call_path(token), user="bob")).expect(404)
    (await guest.ocs("GET", call_path(token))).expect(404)
    listed = (await talk.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
    assert sorted(p["actorId"] for p in listed) == ["alice", "bob"]
    assert bob not in {s for p in listed for s in p["sessionIds"]} and guest_session not in str(listed)

    # Now alice vanishes too: the last one out ends the call.
    clock.shift(TIMEOUT + 1)

    async def call_over() -> bool | None:
        return True if not (await room(talk, token, "alice"))["hasCall"] else None

    # Woken by the room's events on the bus, as a client's long poll would be.
    assert await wait_for(talk.services.bus, [room_topic(token)], call_over, timeout=30, clock=SystemClock())
    ended = (await room(talk, token, "alice"))["lastMessage"]
    assert ended["systemMessage"] == "call_ended" and ended["actorId"] == "alice"
    # Who took part: bob and alice (users) and one guest.
    assert ended["message"].startswith("Call with {user1}, {user2} and 1 others (Duration ")
    assert [ended["messageParameters"][k]["id"] for k in ("user1", "user2")] == ["bob", "alice"]
    (await talk.ocs("GET", signaling_path(token), user="alice")).expect(404)  # her session ended as well


async def test_a_pinging_session_stays(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock, signaling__session_ping_timeout=TIMEOUT)
    await talk.make_user("alice")
    token = await make_room(talk, "alice")
    alice = await join_room(talk, token, "alice")
    (await talk.ocs("POST", call_path(token), user="alice")).expect(200)
    for _ in range(3):
        clock.shift(TIMEOUT - 2)
        (await talk.ocs("GET", signaling_path(token), user="alice")).expect(200)
        await talk.services.calls.expire_sessions()
    rows = (await talk.ocs("GET", call_path(token), user="alice")).expect(200).data
    assert [r["sessionId"] for r in rows] == [alice]
    assert rows[0]["lastPing"] >= int(clock.now()) - 2
