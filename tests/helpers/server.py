"""A real talkd process for interop tests: `python -m talkd serve` on a free loopback port.

`running_talkd(data_dir)` (async context manager) and `talkd_process(data_dir)` (plain context manager)
start the server, wait until /status.php answers, yield a `RunningTalkd` (base URL, data dir, output)
and stop it at the end (SIGTERM, then SIGKILL). On PostgreSQL (TALKD_TEST_DATABASE_URL) the schema is
dropped and recreated before the first start unless `reset_database=False`; the server migrates it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from talkd.storage.database import Database

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("TALKD_TEST_DATABASE_URL", "")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
ADMIN_PASSWORD = "interop admin passphrase"


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_test_database(url: str) -> None:
    """The tests DROP the public schema of TALKD_TEST_DATABASE_URL: refuse any database whose name does
    not say it is for tests, so a production URL pasted there loses nothing."""
    name = sa.engine.make_url(url).database or ""
    if "test" not in name.lower():
        raise RuntimeError(f"TALKD_TEST_DATABASE_URL names the database {name!r}: the tests drop its whole "
                           "schema, so its name must contain 'test' (e.g. talkd_test)")


def drop_schema_sql(url: str) -> list[str]:
    """The statements that empty the test database, after checking that it is one."""
    require_test_database(url)
    return ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"]


def reset_postgres(url: str = POSTGRES_URL) -> None:
    """An empty public schema (what tests/conftest.py does), run on a private event loop in a thread so
    it works from sync and async tests alike. Tests sharing the database migrate it again after this."""
    statements = drop_schema_sql(url)

    async def reset() -> None:
        db = Database(url)
        try:
            async with db.transaction("reset") as conn:
                for statement in statements:
                    await conn.execute(sa.text(statement))
        finally:
            await db.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, reset()).result()
    _forget_conftest_migration()


def _forget_conftest_migration() -> None:
    """tests/conftest.py migrates PostgreSQL once per run and truncates afterwards; after a schema
    reset its next `db` fixture must migrate again."""
    conftest = sys.modules.get("tests.conftest")
    state = getattr(conftest, "_state", None)
    if isinstance(state, dict):
        state.pop("pg_migrated", None)


@dataclass
class RunningTalkd:
    data_dir: Path
    port: int
    log_file: Path
    admin_user: str = "admin"
    admin_password: str = ADMIN_PASSWORD
    database_url: str = POSTGRES_URL
    extra_args: Sequence[str] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the process printed (stdout and stderr) across all its starts."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "talkd", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir)]
        if self.database_url:
            argv += ["--database-url", self.database_url]
        return argv + list(self.extra_args)

    def environment(self) -> dict[str, str]:
        # Only the settings this helper chooses: no TALKD_* from the developer's shell leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TALKD_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["TALKD_ADMIN_USER"] = self.admin_user
        if self.admin_password:
            env["TALKD_ADMIN_PASSWORD"] = self.admin_password
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Start the process and wait until /status.php answers 200."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"--- start: {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command(), cwd=REPO_ROOT, env=self.environment(),
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"talkd exited with {self.process.returncode}:\n{self.output()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/status.php", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"talkd did not answer within {START_TIMEOUT}s:\n{self.output()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Send `sig` (default SIGKILL: no shutdown code runs) and wait for the exit; returns its code."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def stop(self) -> int:
        """Graceful stop (SIGTERM), falling back to SIGKILL."""
        return self.kill(signal.SIGTERM)


def _prepare(data_dir: Path, reset_database: bool, **options: object) -> RunningTalkd:
    if POSTGRES_URL and reset_database:
        reset_postgres()
    server = RunningTalkd(data_dir=data_dir, port=free_tcp_port(),
                          log_file=data_dir.parent / f"{data_dir.name}-talkd.log", **options)  # type: ignore[arg-type]
    return server


@contextlib.contextmanager
def talkd_process(data_dir: Path, *, reset_database: bool = True, **options: object) -> Iterator[RunningTalkd]:
    """Start talkd on `data_dir`; `options` are RunningTalkd fields (admin_password, extra_args, ...)."""
    server = _prepare(data_dir, reset_database, **options)
    server.start()
    try:
        yield server
    finally:
        server.kill(signal.SIGTERM)


@contextlib.asynccontextmanager
async def running_talkd(data_dir: Path, *, reset_database: bool = True,
                        **options: object) -> AsyncIterator[RunningTalkd]:
    """The async form of `talkd_process` (start and stop run in a thread; the event loop stays free)."""
    server = await asyncio.to_thread(_prepare, data_dir, reset_database, **options)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.kill, signal.SIGTERM)
