"""Shared by the room tests: guests with their own cookie jar, and storage snapshots that prove a
refused request changed nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient

from talkd.domain.conversation import Attendee, Room
from talkd.services import Services
from tests.helpers.client import TalkClient


def api(version: int) -> str:
    return f"/apps/spreed/api/v{version}"


V1, V4 = api(1), api(4)

GuestFactory = Callable[[], Awaitable[TalkClient]]


@pytest.fixture
async def new_guest(talk: TalkClient) -> AsyncIterator[GuestFactory]:
    """A browser of its own: a TalkClient on the same server with a separate cookie jar (the test
    client's jar would hand one guest's session cookie to everyone)."""
    opened: list[TestClient] = []

    async def make() -> TalkClient:
        client = TestClient(talk.client.server, cookie_jar=CookieJar(unsafe=True))
        opened.append(client)
        guest = TalkClient(client, talk.services)
        return guest

    yield make
    for client in opened:
        await client.session.close()


async def join_as_guest(guest: TalkClient, token: str, *, password: str = "") -> dict[str, Any]:
    """POST /participants/active without credentials: the cookie session makes the guest."""
    reply = await guest.ocs("POST", f"{V4}/room/{token}/participants/active",
                            json={"password": password} if password else None)
    return dict(reply.expect(200).data)


@dataclass(frozen=True)
class Snapshot:
    room: Room | None
    attendees: tuple[Attendee, ...]
    message_ids: tuple[int, ...]


async def snapshot(services: Services, token: str) -> Snapshot:
    """Everything a room mutation could touch, read from storage."""
    core = services.conversations.core
    async with services.db.read() as conn:
        room = await core.rooms.by_token(conn, token)
        if room is None:
            return Snapshot(None, (), ())
        attendees = tuple(sorted(await core.attendees.of_room(conn, room.id), key=lambda a: a.id))
        messages = await core.messages.history(conn, room.id, before=None, limit=10_000)
    return Snapshot(room, attendees, tuple(sorted(m.id for m in messages)))


async def system_messages(services: Services, token: str) -> list[tuple[str, str, dict[str, object]]]:
    """The room's system messages, oldest first: (name, actor id, raw parameters)."""
    core = services.conversations.core
    async with services.db.read() as conn:
        room = await core.rooms.by_token(conn, token)
        assert room is not None
        messages = await core.messages.history(conn, room.id, before=None, limit=10_000)
    return [(m.message, m.actor_id, m.parameters) for m in reversed(messages) if m.verb == "system"]
