"""The suite drops the public schema of TALKD_TEST_DATABASE_URL: it refuses, before touching anything,
a database whose name does not say it is for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.server import drop_schema_sql, require_test_database

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["talkd", "talkd_ci", "production", "postgres"])
def test_a_database_not_named_for_tests_is_refused(name: str) -> None:
    with pytest.raises(RuntimeError, match="must contain 'test'"):
        drop_schema_sql(f"postgresql://postgres@127.0.0.1:5432/{name}")


@pytest.mark.parametrize("name", ["talkd_test", "talkd_ci_test", "test_talkd", "talkd_TEST_ops"])
def test_a_test_database_is_accepted(name: str) -> None:
    require_test_database(f"postgresql://postgres@127.0.0.1:5432/{name}")


def test_the_suite_stops_before_running_anything() -> None:
    # Port 1: should the guard fail, the run could not reach a real database anyway.
    env = {**os.environ, "TALKD_TEST_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/talkd_production"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_docs.py"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "'talkd_production'" in done.stderr and "must contain 'test'" in done.stderr, done.stderr
