"""Fixtures: settings, a migrated database (SQLite, or PostgreSQL when TALKD_TEST_DATABASE_URL is set),
services, a running app with a test client, and a TalkClient that speaks the public API."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from talkd.app import build_services, close_services, create_app
from talkd.clock import FakeClock, SystemClock
from talkd.config import Settings
from talkd.crypto import fast_password_hashing
from talkd.services import Services
from talkd.storage import migrate
from talkd.storage.database import Database
from talkd.storage.tables import metadata
from tests.helpers.client import TalkClient
from tests.helpers.server import drop_schema_sql, require_test_database

POSTGRES_URL = os.environ.get("TALKD_TEST_DATABASE_URL", "")
_state: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    if POSTGRES_URL:
        try:
            require_test_database(POSTGRES_URL)
        except RuntimeError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_report_header() -> str:
    return f"talkd database: {'postgresql ' + POSTGRES_URL if POSTGRES_URL else 'sqlite'}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = Settings()
    return base.replace(
        storage__data_dir=tmp_path / "data",
        storage__database_url=POSTGRES_URL,
        security__secret="test-secret",
        security__bruteforce_base_delay=0.001,
        security__bruteforce_max_delay=0.05,
    )


async def _sqlite_template(tmp_root: Path) -> Path:
    """Migrate once per test run, then copy the file for every test (fast and isolated)."""
    template = _state.get("sqlite_template")
    if isinstance(template, Path) and template.exists():
        return template
    path = tmp_root / "template.db"
    db = Database(f"sqlite:///{path}")
    await migrate.upgrade(db)
    await db.close()
    _state["sqlite_template"] = path
    return path


async def _postgres_reset(db: Database) -> None:
    """Migrate from scratch once per run; afterwards empty every table between tests."""
    if not _state.get("pg_migrated"):
        statements = drop_schema_sql(db.url)
        async with db.transaction("reset") as conn:
            for statement in statements:
                await conn.execute(sa.text(statement))
        await migrate.upgrade(db)
        _state["pg_migrated"] = True
        return
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with db.transaction("reset") as conn:
        await conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def db(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    if POSTGRES_URL:
        database = Database(POSTGRES_URL)
        await _postgres_reset(database)
    else:
        template = await _sqlite_template(tmp_path_factory.getbasetemp())
        settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, settings.sqlite_path)
        database = Database(settings.database_url)
    yield database
    await database.close()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def services(settings: Settings, db: Database) -> AsyncIterator[Services]:
    built = await build_services(settings, db=db, hashing=fast_password_hashing(), clock=SystemClock())
    await built.accounts.ensure_first_admin("admin", "admin-password")
    yield built
    await built.bus.close()


@pytest.fixture
async def client(services: Services, aiohttp_client: AiohttpClient) -> TestClient:
    return await aiohttp_client(create_app(services))


@pytest.fixture
def talk(client: TestClient, services: Services) -> TalkClient:
    return TalkClient(client, services)


__all__ = ["close_services"]
