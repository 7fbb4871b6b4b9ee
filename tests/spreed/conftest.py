"""Spreed WebRTC fixtures: a server with users (sharedsecret), registration, stats, TURN and a token
file, and a factory for servers with other settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from talkd.app import build_services, create_app
from talkd.config import Settings
from talkd.crypto import fast_password_hashing
from talkd.services import Services
from talkd.storage.database import Database
from tests.helpers.cluster import two_nodes

SHARED_SECRET = "shared-secret-for-tests"
TURN_SECRET = "turn-secret-for-tests"
ACCESS_TOKENS = "# access tokens\nWelcome-Token:for the lobby\n  second-token\n"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.txt"
    path.write_text(ACCESS_TOKENS)
    return path


@pytest.fixture
def settings(settings: Settings, token_file: Path) -> Settings:
    return settings.replace(
        webrtc__users_mode="sharedsecret", webrtc__sharedsecret=SHARED_SECRET, webrtc__allow_registration=True,
        webrtc__stats=True, webrtc__turnsecret=TURN_SECRET,
        webrtc__turn_uris=("turn:turn.example.org:443?transport=udp turn:turn.example.org:443?transport=tcp",
                           "turn:turn.example.org:443?transport=udp"),
        webrtc__stun_uris=("stun:stun.example.org:3478",), webrtc__token_file=str(token_file),
        webrtc__conference_rooms=("^conf-",),
    )


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(settings: Settings, db: Database, aiohttp_client: AiohttpClient
                      ) -> AsyncIterator[MakeClient]:
    """A server whose webrtc settings differ: `await make_client(users_mode="", stats=False)`; other sections'
    settings by their full name: `server__base_url=...`."""
    built: list[Services] = []

    async def make(**changes: Any) -> TestClient:
        changed = settings.replace(**{key if "__" in key else f"webrtc__{key}": value
                                      for key, value in changes.items()})
        services = await build_services(changed, db=db, hashing=fast_password_hashing())
        built.append(services)
        return await aiohttp_client(create_app(services))

    yield make
    for services in built:
        await services.bus.close()


__all__ = ["two_nodes"]
