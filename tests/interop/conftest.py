"""Interop tests start talkd the way API tests do (with changed settings) next to a real component, or
as a real `python -m talkd serve` process (`talkd_server`) that real clients talk to over TCP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import app_factory
from tests.helpers.server import RunningTalkd, talkd_process


@pytest.fixture
def talkd_server(tmp_path: Path) -> Iterator[RunningTalkd]:
    """A running talkd subprocess on a fresh data dir (and a fresh PostgreSQL schema when testing on PG)."""
    with talkd_process(tmp_path / "data") as server:
        yield server


@pytest.fixture(scope="module")
def shared_talkd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTalkd]:
    """One talkd subprocess for a whole test module (client tests that each make their own users and
    rooms); quiet, and without login throttling, since a module makes many logins in a row."""
    with talkd_process(tmp_path_factory.mktemp("talkd") / "data",
                       extra_args=("--log-level", "warning", "--security-bruteforce-enabled", "false")) as server:
        yield server


__all__ = ["app_factory"]
