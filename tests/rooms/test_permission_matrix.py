"""Who may change what: every mutation of a conversation, by every kind of caller, in every kind of
room, through the HTTP API (v4). The expected answers are written out below from Talk's docs
(docs/conversation.md, docs/participant.md) and the seed, not computed from talkd's rule table; each
cell is one test that checks the answer, the change on success and that a refusal changed nothing.

    401  the route needs an account (Nextcloud's "not logged in") and the caller is a guest or anonymous
    403  a participant whose role does not allow it (or the room is not public, for passwords; or the
         target is an owner)
    404  the room is invisible to the caller: they do not take part
    400  the action does not apply to this room type (one-to-one, already public, already private)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from talkd.domain.conversation import Attendee
from talkd.services import Services
from tests.helpers.client import OcsReply, TalkClient
from tests.rooms.room_world import V4, GuestFactory, Snapshot, join_as_guest, new_guest, snapshot

__all__ = ["new_guest"]

OWNER, TARGET, TARGET_MOD, NEWBIE = "olivia", "tom", "tim", "nina"
ACCOUNTS = {"owner": OWNER, "moderator": "mona", "user": "ursula", "self_joined": "sam", "outsider": "oscar"}

ACTIONS = ("rename", "description", "password", "read_only", "lobby", "make_public", "make_private",
           "add", "remove", "promote", "demote", "delete", "favorite", "notify")

ALL_404 = (404,) * len(ACTIONS)
#                     rename descr passwd  ro  lobby  pub  priv  add  remove promote demote delete  fav  notify
ACCOUNT_MOD_PUBLIC = (200,  200,  200,  200,  200,  400,  200,  200,  200,   200,   200,   200,   200,  200)
EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    "one_to_one": {
        # Both people are owners; nothing about the room can change, the other owner cannot be touched.
        "owner":           (400,  400,  403,  400,  400,  400,  400,  400,  403,   403,   403,   400,   200,  200),
        "outsider":        ALL_404,
        "anonymous":       (404,  404,  404,  401,  401,  401,  401,  401,  404,   404,   404,   404,   401,  401),
    },
    "group": {
        "owner":           (200,  200,  403,  200,  200,  200,  400,  200,  200,   200,   200,   200,   200,  200),
        "moderator":       (200,  200,  403,  200,  200,  200,  400,  200,  200,   200,   200,   200,   200,  200),
        "user":            (403,  403,  403,  403,  403,  403,  403,  403,  403,   403,   403,   403,   200,  200),
        "outsider":        ALL_404,
        "anonymous":       (404,  404,  404,  401,  401,  401,  401,  401,  404,   404,   404,   404,   401,  401),
    },
    "public": {
        "owner":           ACCOUNT_MOD_PUBLIC,
        "moderator":       ACCOUNT_MOD_PUBLIC,
        # Guest moderators moderate (and may delete the room), but the routes that need a login
        # (read-only, lobby, opening or closing the room, adding people, account settings) answer 401.
        "guest_moderator": (200,  200,  200,  401,  401,  401,  401,  401,  200,   200,   200,   200,   401,  401),
        "user":            (403,  403,  403,  403,  403,  403,  403,  403,  403,   403,   403,   403,   200,  200),
        "self_joined":     (403,  403,  403,  403,  403,  403,  403,  403,  403,   403,   403,   403,   200,  200),
        "guest":           (403,  403,  403,  401,  401,  401,  401,  401,  403,   403,   403,   403,   401,  401),
        "outsider":        ALL_404,
        "anonymous":       (404,  404,  404,  401,  401,  401,  401,  401,  404,   404,   404,   404,   401,  401),
    },
}
ROOM_TYPES = {"one_to_one": 1, "group": 2, "public": 3}


@dataclass
class World:
    talk: TalkClient
    services: Services
    room: str
    token: str
    ids: dict[str, int] = field(default_factory=dict)   # attendee ids by user id / role
    clients: dict[str, TalkClient] = field(default_factory=dict)  # guests' own browsers


async def build(talk: TalkClient, new_guest: GuestFactory, room: str, role: str) -> World:
    """The room with its owner, the targets of remove/promote/demote, and the caller as `role`."""
    for user in {OWNER, TARGET, TARGET_MOD, NEWBIE, ACCOUNTS.get(role, OWNER)}:
        await talk.make_user(user)
    body: dict[str, Any] = {"roomType": ROOM_TYPES[room]}
    body.update({"invite": TARGET} if room == "one_to_one" else {"roomName": "Room"})
    created = (await talk.ocs("POST", f"{V4}/room", user=OWNER, json=body)).expect(201).data
    world = World(talk, talk.services, room, created["token"])
    path = f"{V4}/room/{world.token}"
    members = [TARGET, TARGET_MOD] + (["mona"] if role == "moderator" else []) + (
        ["ursula"] if role == "user" else [])
    if room != "one_to_one":
        for user in members:
            (await talk.ocs("POST", f"{path}/participants", user=OWNER,
                            json={"newParticipant": user, "source": "users"})).expect(200)
    listed = (await talk.ocs("GET", f"{path}/participants", user=OWNER)).expect(200).data
    world.ids = {m["actorId"]: m["attendeeId"] for m in listed}
    for user in (TARGET_MOD, "mona"):
        if user in world.ids and room != "one_to_one":
            (await talk.ocs("POST", f"{path}/moderators", user=OWNER,
                            params={"attendeeId": world.ids[user]})).expect(200)
    if role == "self_joined":
        joined = (await talk.ocs("POST", f"{path}/participants/active", user="sam")).expect(200).data
        assert joined["participantType"] == 5
        world.ids["sam"] = joined["attendeeId"]
    if role in ("guest", "guest_moderator", "anonymous"):
        world.clients[role] = await new_guest()
    if role in ("guest", "guest_moderator"):
        joined = await join_as_guest(world.clients[role], world.token)
        world.ids[role] = joined["attendeeId"]
        if role == "guest_moderator":
            (await talk.ocs("POST", f"{path}/moderators", user=OWNER,
                            params={"attendeeId": joined["attendeeId"]})).expect(200)
    return world


async def call(world: World, role: str, action: str) -> OcsReply:
    """The request `action` stands for, made as `role`."""
    demote_target = TARGET if world.room == "one_to_one" else TARGET_MOD
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "rename": ("PUT", "", {"params": {"roomName": "Renamed"}}),
        "description": ("PUT", "/description", {"params": {"description": "About"}}),
        "password": ("PUT", "/password", {"params": {"password": "sesame"}}),
        "read_only": ("PUT", "/read-only", {"params": {"state": 1}}),
        "lobby": ("PUT", "/webinar/lobby", {"params": {"state": 1}}),
        "make_public": ("POST", "/public", {}),
        "make_private": ("DELETE", "/public", {}),
        "add": ("POST", "/participants", {"json": {"newParticipant": NEWBIE, "source": "users"}}),
        "remove": ("DELETE", "/attendees", {"params": {"attendeeId": world.ids[TARGET]}}),
        "promote": ("POST", "/moderators", {"params": {"attendeeId": world.ids[TARGET]}}),
        "demote": ("DELETE", "/moderators", {"params": {"attendeeId": world.ids[demote_target]}}),
        "delete": ("DELETE", "", {}),
        "favorite": ("POST", "/favorite", {}),
        "notify": ("POST", "/notify", {"params": {"level": 3}}),
    }
    method, suffix, kwargs = requests[action]
    client = world.clients.get(role, world.talk)
    return await client.ocs(method, f"{V4}/room/{world.token}{suffix}", user=ACCOUNTS.get(role), **kwargs)


def _attendee(shot: Snapshot, *, actor_id: str | None = None, attendee_id: int | None = None) -> Attendee | None:
    return next((a for a in shot.attendees if a.actor_id == actor_id or a.id == attendee_id), None)


def changed_as_asked(action: str, before: Snapshot, after: Snapshot, world: World, role: str) -> None:
    """On success: exactly the change the action names happened."""
    room = after.room
    if action == "delete":
        assert room is None
        return
    assert room is not None and before.room is not None
    me = world.ids.get(role, world.ids.get(ACCOUNTS.get(role, ""), -1))
    checks: dict[str, Callable[[], bool]] = {
        "rename": lambda: room.name == "Renamed",
        "description": lambda: room.description == "About",
        "password": lambda: room.has_password,
        "read_only": lambda: room.read_only == 1,
        "lobby": lambda: room.lobby_state == 1,
        "make_public": lambda: room.type == 3,
        "make_private": lambda: room.type == 2,
        "add": lambda: _attendee(after, actor_id=NEWBIE) is not None,
        "remove": lambda: _attendee(after, actor_id=TARGET) is None,
        "promote": lambda: getattr(_attendee(after, actor_id=TARGET), "participant_type", 0) == 2,
        "demote": lambda: getattr(_attendee(after, actor_id=TARGET_MOD), "participant_type", 0) == 3,
        "favorite": lambda: getattr(_attendee(after, attendee_id=me), "favorite", False) is True,
        "notify": lambda: getattr(_attendee(after, attendee_id=me), "notification_level", 0) == 3,
    }
    assert checks[action](), action
    # Room changes leave a system message; one's own settings do not.
    wrote_message = len(after.message_ids) > len(before.message_ids)
    assert wrote_message == (action not in ("favorite", "notify")), action


CELLS = [pytest.param(room, role, action, EXPECTED[room][role][i], id=f"{room}-{role}-{action}")
         for room in EXPECTED for role in EXPECTED[room] for i, action in enumerate(ACTIONS)]


@pytest.mark.parametrize(("room", "role", "action", "expected"), CELLS)
async def test_cell(talk: TalkClient, new_guest: GuestFactory, room: str, role: str, action: str,
                    expected: int) -> None:
    world = await build(talk, new_guest, room, role)
    before = await snapshot(world.services, world.token)
    (await call(world, role, action)).expect(997 if expected == 401 else expected)
    after = await snapshot(world.services, world.token)
    if expected == 200:
        changed_as_asked(action, before, after, world, role)
    else:
        assert after == before


def test_the_table_covers_every_role_in_every_room() -> None:
    """The table itself: one row per role that can exist in the room type, one column per action."""
    assert set(EXPECTED["one_to_one"]) == {"owner", "outsider", "anonymous"}
    assert set(EXPECTED["group"]) == {"owner", "moderator", "user", "outsider", "anonymous"}
    assert set(EXPECTED["public"]) == {"owner", "moderator", "guest_moderator", "user", "self_joined", "guest",
                                      "outsider", "anonymous"}
    assert all(len(row) == len(ACTIONS) for rows in EXPECTED.values() for row in rows.values())
