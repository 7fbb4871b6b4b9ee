"""Call-test helpers: conversations to call in, joining them, and guests with their own cookie jar."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient

from talkd.config import Settings
from tests.api.conftest import app_factory
from tests.helpers.client import OcsReply, TalkClient

V4 = "/apps/spreed/api/v4"


def call_path(token: str, version: int = 4) -> str:
    return f"/apps/spreed/api/v{version}/call/{token}"


def signaling_path(token: str, version: int = 3) -> str:
    return f"/apps/spreed/api/v{version}/signaling/{token}"


async def make_room(talk: TalkClient, owner: str, room_type: int = 2, *, invite: tuple[str, ...] = ()) -> str:
    created = await talk.ocs("POST", f"{V4}/room", user=owner, json={"roomType": room_type, "roomName": "Call"})
    token = str(created.expect(201).data["token"])
    for user_id in invite:
        (await talk.ocs("POST", f"{V4}/room/{token}/participants", user=owner,
                        json={"newParticipant": user_id, "source": "users"})).expect(200)
    return token


async def join_room(talk: TalkClient, token: str, user: str | None = None) -> str:
    """Join the conversation (a session); returns its session id."""
    reply = (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user=user)).expect(200)
    return str(reply.data["sessionId"])


async def room(talk: TalkClient, token: str, user: str | None = None) -> dict[str, Any]:
    return dict((await talk.ocs("GET", f"{V4}/room/{token}", user=user)).expect(200).data)


async def send_signaling(talk: TalkClient, token: str, messages: list[dict[str, Any]], *, user: str | None = None,
                         version: int = 3) -> OcsReply:
    import orjson

    return await talk.ocs("POST", signaling_path(token, version), user=user,
                          json={"messages": orjson.dumps(messages).decode()})


def envelope(sender: str, recipient: str, kind: str = "offer", **payload: Any) -> dict[str, Any]:
    """One internal-signaling message as Talk's web client queues it."""
    import orjson

    inner = {"to": recipient, "type": kind, "roomType": "video", "payload": payload or {"type": kind, "sdp": "v=0"}}
    return {"ev": "message", "sessionId": sender, "fn": orjson.dumps(inner).decode()}


GuestFactory = Callable[[TalkClient], Awaitable[TalkClient]]


@pytest.fixture
async def guest_client() -> AsyncIterator[GuestFactory]:
    """`await guest_client(talk)`: another browser on the same server (its own cookie jar)."""
    opened: list[TestClient] = []

    async def make(talk: TalkClient) -> TalkClient:
        other = TestClient(talk.client.server, cookie_jar=CookieJar(unsafe=True))
        await other.start_server()  # the server runs already: this only opens the client session
        opened.append(other)
        return TalkClient(other, talk.services)

    yield make
    for other in opened:
        await other.session.close()  # not other.close(): that would stop the shared server


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Short long polls: a pull with nothing to deliver answers after a second, not Talk's 30."""
    return settings.replace(signaling__pull_timeout=1.0)


__all__ = ["app_factory"]
