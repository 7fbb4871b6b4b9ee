"""API-test fixtures: apps built with changed settings, a clock tests can move forward, and password
hashing that counts how often it really verifies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from pytest_aiohttp import AiohttpClient

from talkd.api.ocs.routing import OcsRouter
from talkd.app import build_services, create_app
from talkd.clock import SystemClock
from talkd.config import Settings
from talkd.crypto import PasswordHashing
from talkd.services import Services
from talkd.storage.database import Database
from tests.helpers.client import TalkClient


class ShiftedClock(SystemClock):
    """Real time plus an offset a test moves forward; sleeps are real, and short ones (the throttle's,
    at most bruteforce_max_delay = 0.05 s in tests; not the waits of background jobs, which are a
    second or more) are recorded."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.throttle_sleeps: list[float] = []

    def shift(self, seconds: float) -> None:
        self.offset += seconds

    def now(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        if seconds < 1:
            self.throttle_sleeps.append(seconds)
        await asyncio.sleep(seconds)


class CountingHashing(PasswordHashing):
    """Real argon2 (cheap parameters), counting the slow verifications."""

    def __init__(self) -> None:
        super().__init__(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        self.verifications = 0

    async def verify(self, stored_hash: str, password: str) -> bool:
        self.verifications += 1
        return await super().verify(stored_hash, password)


AppFactory = Callable[..., Awaitable[TalkClient]]


@pytest.fixture
async def app_factory(settings: Settings, db: Database, aiohttp_client: AiohttpClient
                      ) -> AsyncIterator[AppFactory]:
    """`await app_factory(security__bruteforce_enabled=False, clock=..., hashing=..., routers=[...])`:
    a running talkd on the test database with those settings, its admin being admin/admin-password."""
    built: list[Services] = []

    async def make(*, clock: SystemClock | None = None, hashing: PasswordHashing | None = None,
                   routers: tuple[OcsRouter, ...] = (), **changes: Any) -> TalkClient:
        services = await build_services(settings.replace(**changes), db=db, clock=clock or ShiftedClock(),
                                        hashing=hashing or CountingHashing())
        await services.accounts.ensure_first_admin("admin", "admin-password")
        built.append(services)
        app = create_app(services)
        for router in routers:
            router.install(app)
        return TalkClient(await aiohttp_client(app), services)

    yield make
    for services in built:
        await services.bus.close()
