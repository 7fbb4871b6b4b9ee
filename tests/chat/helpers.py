"""Small helpers for chat tests: rooms made through the API, guests with their own cookie jar."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.helpers.client import OcsReply, TalkClient

V1 = "/apps/spreed/api/v1"
V4 = "/apps/spreed/api/v4"


async def group_room(talk: TalkClient, owner: str, *members: str, name: str = "Team", public: bool = False) -> str:
    """A group (or public) conversation owned by `owner` with `members` added through the API."""
    created = await talk.ocs("POST", f"{V4}/room", user=owner, json={"roomType": 3 if public else 2, "roomName": name})
    token: str = created.expect(201).data["token"]
    for member in members:
        (await talk.ocs("POST", f"{V4}/room/{token}/participants", user=owner,
                        json={"newParticipant": member, "source": "users"})).expect(200)
    return token


async def send(talk: TalkClient, token: str, user: str, message: str, **extra: Any) -> dict[str, Any]:
    reply = await talk.ocs("POST", f"{V1}/chat/{token}", user=user, json={"message": message, **extra})
    data: dict[str, Any] = reply.expect(201).data
    return data


async def history(talk: TalkClient, token: str, user: str, **params: Any) -> OcsReply:
    return await talk.ocs("GET", f"{V1}/chat/{token}", user=user, params={"lookIntoFuture": 0, **params})


async def all_messages(talk: TalkClient, token: str, user: str) -> list[dict[str, Any]]:
    """The whole history, oldest first (one page of at most 200)."""
    reply = (await history(talk, token, user, limit=200)).expect(200)
    return list(reversed(reply.data))


async def room_of(talk: TalkClient, token: str, user: str) -> dict[str, Any]:
    data: dict[str, Any] = (await talk.ocs("GET", f"{V4}/room/{token}", user=user)).expect(200).data
    return data


class _Transport:
    """What TalkClient needs of a TestClient (`request(method, path, ...)`), over a session with its
    own cookie jar: a guest's browser."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base.rstrip("/")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.session.request(method, self.base + path, **kwargs)


@asynccontextmanager
async def guest_client(talk: TalkClient) -> AsyncIterator[TalkClient]:
    """A TalkClient that is nobody but its cookies (call `ocs` without `user`)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield TalkClient(_Transport(session, str(talk.client.make_url("/"))), talk.services)  # type: ignore[arg-type]


async def join_as_guest(guest: TalkClient, token: str) -> None:
    (await guest.ocs("POST", f"{V4}/room/{token}/participants/active", json={})).expect(200)
