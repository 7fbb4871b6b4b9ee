"""Deleting a user removes them from their conversations (Talk's UserDeletedListener): attendee rows,
sessions and call state go, the others see `user_removed`, and a room the user alone was a member of
is deleted. Runs on SQLite and, with TALKD_TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from talkd.storage import tables
from tests.helpers.client import TalkClient
from tests.rooms.room_world import V4, system_messages


async def test_deleting_a_user_removes_them_from_every_conversation(talk: TalkClient) -> None:
    for user in ("alice", "bob"):
        await talk.make_user(user)
    shared: str = (await talk.ocs("POST", f"{V4}/room", user="alice",
                                  json={"roomType": 2, "roomName": "Team"})).expect(201).data["token"]
    (await talk.ocs("POST", f"{V4}/room/{shared}/participants", user="alice",
                    json={"newParticipant": "bob", "source": "users"})).expect(200)
    alone: str = (await talk.ocs("POST", f"{V4}/room", user="bob",
                                 json={"roomType": 2, "roomName": "Mine"})).expect(201).data["token"]
    (await talk.ocs("POST", f"{V4}/room/{shared}/participants/active", user="bob")).expect(200)
    (await talk.ocs("POST", f"{V4}/call/{shared}", user="bob", json={"flags": 3})).expect(200)
    assert (await talk.ocs("GET", f"{V4}/room/{shared}", user="alice")).expect(200).data["hasCall"] is True

    (await talk.ocs("DELETE", "/cloud/users/bob", user="admin")).expect(200)

    members = (await talk.ocs("GET", f"{V4}/room/{shared}/participants", user="alice")).expect(200).data
    assert [m["actorId"] for m in members] == ["alice"]
    room = (await talk.ocs("GET", f"{V4}/room/{shared}", user="alice")).expect(200).data
    assert room["hasCall"] is False and room["callFlag"] == 0
    names = [name for name, _, _ in await system_messages(talk.services, shared)]
    assert names[-2:] == ["call_ended", "user_removed"] or "user_removed" in names[-3:]
    async with talk.services.db.read() as conn:
        left = (await conn.execute(sa.select(tables.attendees.c.actor_id)
                                   .where(tables.attendees.c.actor_id == "bob"))).all()
        sessions = (await conn.execute(sa.select(sa.func.count()).select_from(tables.room_sessions))).scalar()
        tokens = {r.token for r in await conn.execute(sa.select(tables.rooms.c.token))}
    assert left == [] and sessions == 0
    assert alone not in tokens and shared in tokens
