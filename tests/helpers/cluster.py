"""Two talkd nodes in one test: one database, a real NATS between them, as a cluster runs.

NATS: TALKD_TEST_NATS_URL (default nats://127.0.0.1:4222); skipped locally without one, required in CI."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from talkd.app import build_services, create_app
from talkd.bus.nats import NatsBus
from talkd.config import Settings
from talkd.crypto import fast_password_hashing
from talkd.services import Services
from talkd.storage.database import Database

NATS_URL = os.environ.get("TALKD_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def require_nats() -> None:
    try:
        bus = await asyncio.wait_for(NatsBus.connect(NATS_URL, prefix="probe"), 3)
    except Exception as exc:  # any connection failure means "no NATS here"
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS at {NATS_URL} is required in CI: {exc}")
        pytest.skip(f"no NATS at {NATS_URL}: {exc}")
    await bus.close()


@dataclass
class Node:
    services: Services
    client: TestClient


@pytest.fixture
async def two_nodes(settings: Settings, db: Database, aiohttp_client: AiohttpClient) -> AsyncIterator[list[Node]]:
    await require_nats()
    # Same data dir, so both nodes share the kept secrets, as a cluster shares its configuration.
    shared = settings.replace(bus__url=NATS_URL, bus__prefix=f"t{uuid.uuid4().hex[:12]}")
    nodes = []
    for _ in range(2):
        services = await build_services(shared, db=db, hashing=fast_password_hashing())
        nodes.append(Node(services, await aiohttp_client(create_app(services))))
    yield nodes
    for node in nodes:
        await node.services.bus.close()
