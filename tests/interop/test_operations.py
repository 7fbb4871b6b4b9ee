"""Operating a real `python -m talkd serve` process: one server per data dir, start-up failures told in
one line, the first admin's generated password never lost, private files, and a SIGTERM that answers
open long polls and stops within server.shutdown_timeout."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from tests.helpers.client import basic
from tests.helpers.server import POSTGRES_URL, RunningTalkd, free_tcp_port, reset_postgres, running_talkd, talkd_process

pytestmark = pytest.mark.interop

OCS = {"OCS-APIRequest": "true", "Accept": "application/json"}
FAIL_TIMEOUT = 60.0  # a failing start must exit by itself; this only bounds a hang


def server_on(data_dir: Path, **options: object) -> RunningTalkd:
    return RunningTalkd(data_dir=data_dir, port=free_tcp_port(),
                        log_file=data_dir.parent / f"{data_dir.name}-{uuid.uuid4().hex[:6]}.log",
                        **options)  # type: ignore[arg-type]


def failed_start(server: RunningTalkd, wrapper: list[str] | None = None) -> tuple[int, list[str]]:
    """Run `serve` expecting it to give up: its exit code and the lines it printed (stdout and stderr)."""
    done = subprocess.run([*(wrapper or []), *server.command()], env=server.environment(), cwd=Path.cwd(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=FAIL_TIMEOUT, check=False)
    return done.returncode, done.stdout.decode(errors="replace").splitlines()


def one_clear_line(code: int, lines: list[str], *words: str) -> list[str]:
    """The start failed and said why in one line, with no traceback. Log records at info or warning level
    (such as a slow migration on a loaded machine) may come before it."""
    assert code != 0, lines
    said = [line for line in lines if " msg=" not in line]
    assert len(said) == 1, "\n".join(lines)
    assert said[0].startswith("talkd: "), lines
    assert not any("Traceback" in line or " error " in line for line in lines), lines
    for word in words:
        assert word in said[0], lines
    return said


def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with talkd_process(data_dir) as first:
        second = server_on(data_dir)
        code, lines = failed_start(second)
        one_clear_line(code, lines, "already running", str(data_dir), f"pid {first.process.pid}")  # type: ignore[union-attr]
        with socket.socket() as probe:  # the second one never listened
            assert probe.connect_ex(("127.0.0.1", second.port)) != 0
        assert first.process is not None and first.process.poll() is None
    # The lock goes with its process, even when killed: the next start takes it.
    with talkd_process(data_dir, reset_database=False) as again:
        again.kill(signal.SIGKILL)
        again.start()


def test_port_in_use_is_one_line_and_the_generated_admin_password_is_not_lost(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    if POSTGRES_URL:
        reset_postgres()
    server = server_on(data_dir, admin_password="")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", server.port))
        taken.listen(1)
        code, lines = failed_start(server)
    one_clear_line(code, lines, f"127.0.0.1:{server.port}", "in use")
    # Nothing was created that the operator was not told about: the next start creates the admin and
    # prints its password, which works.
    server.start()
    try:
        said = "created admin user 'admin' with password: "
        printed = [line for line in server.output().splitlines() if said in line]
        assert len(printed) == 1, server.output()
        password = printed[0].rsplit(" ", 1)[1]
        assert status_of(server, "admin", password) == 200
    finally:
        server.stop()


def status_of(server: RunningTalkd, user: str, password: str) -> int:
    """HTTP status of GET /cloud/user with these credentials."""
    request = urllib.request.Request(f"{server.base_url}/ocs/v2.php/cloud/user",
                                     headers={**OCS, "Authorization": basic(user, password)})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_postgresql_unreachable_is_one_line(tmp_path: Path) -> None:
    port = free_tcp_port()  # nothing listens there
    server = server_on(tmp_path / "data", database_url=f"postgresql://postgres:pw@127.0.0.1:{port}/talkd_test_x")
    code, lines = failed_start(server)
    said = one_clear_line(code, lines, f"127.0.0.1:{port}", "talkd_test_x")
    assert ":pw@" not in said[0]  # the password is masked


def test_event_bus_unreachable_is_one_line(tmp_path: Path) -> None:
    port = free_tcp_port()  # no NATS there: the client would retry for ever
    code, lines = failed_start(server_on(tmp_path / "data", extra_args=("--bus-url", f"nats://127.0.0.1:{port}")))
    one_clear_line(code, lines, "event bus", f"nats://127.0.0.1:{port}")


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (TALKD_TEST_DATABASE_URL)")
def test_postgresql_database_missing_is_one_line(tmp_path: Path) -> None:
    missing = sa.engine.make_url(POSTGRES_URL).set(database=f"talkd_test_missing_{uuid.uuid4().hex[:8]}")
    server = server_on(tmp_path / "data", database_url=missing.render_as_string(hide_password=False))
    code, lines = failed_start(server)
    one_clear_line(code, lines, "does not exist", str(missing.database))


def test_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    code, lines = failed_start(server_on(blocker / "data"))
    one_clear_line(code, lines, "data dir", str(blocker / "data"))


def _read_only_wrapper(path: Path) -> list[str] | None:
    """A command prefix that runs the server with `path` mounted read-only in a private mount namespace
    (root ignores mode bits, so only a read-only mount makes a directory unwritable for it)."""
    if os.geteuid() != 0:
        return None
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    mount = f"mount --bind {path} {path} && mount -o remount,ro,bind {path} {path}"
    probe = subprocess.run([unshare, "-m", "sh", "-c", f"{mount} && ! touch {path}/probe 2>/dev/null"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        return None
    return [unshare, "-m", "sh", "-c", f'{mount} && exec "$@"', "sh"]


def test_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    if os.geteuid() != 0:
        data_dir.chmod(0o500)
        wrapper: list[str] | None = []
    else:
        wrapper = _read_only_wrapper(data_dir)
        if wrapper is None:
            pytest.skip("cannot make a read-only mount here")
    try:
        code, lines = failed_start(server_on(data_dir), wrapper)
    finally:
        data_dir.chmod(0o700)
    one_clear_line(code, lines, "not writable", str(data_dir))
    assert not (data_dir / "secret").exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_files_are_private_and_an_old_install_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with talkd_process(data_dir) as server:
        expected = {"secret", "webrtc-session-secret", "webrtc-encryption-secret", "talkd.lock"}
        if not POSTGRES_URL:
            expected |= {"talkd.db", "talkd.db-wal", "talkd.db-shm"}  # open while the server runs
        present = {p.name for p in data_dir.iterdir()}
        assert {p.name: _mode(p) for p in data_dir.iterdir()} == {name: 0o600 for name in present}
        assert _mode(data_dir) == 0o700
        assert expected <= present, present
        server.kill(signal.SIGKILL)
        # An install from before this rule: readable by everyone. The next start tightens it.
        data_dir.chmod(0o755)
        for path in data_dir.iterdir():
            path.chmod(0o644)
        server.start()
        assert _mode(data_dir) == 0o700
        assert {p.name: _mode(p) for p in data_dir.iterdir()} == {p.name: 0o600 for p in data_dir.iterdir()}


async def _room_with_message(http: aiohttp.ClientSession, server: RunningTalkd) -> tuple[str, int]:
    auth = {**OCS, "Authorization": basic("admin", server.admin_password)}
    base = f"{server.base_url}/ocs/v2.php/apps/spreed/api"
    async with http.post(f"{base}/v4/room", headers=auth, json={"roomType": 2, "roomName": "Shutdown"}) as created:
        assert created.status in (200, 201), await created.text()
        token = (await created.json())["ocs"]["data"]["token"]
    async with http.post(f"{base}/v1/chat/{token}", headers=auth, data={"message": "before"}) as sent:
        assert sent.status == 201, await sent.text()
        last = (await sent.json())["ocs"]["data"]["id"]
    return token, last


async def _until_logged(server: RunningTalkd, text: str, after: int) -> None:
    """Until the server's output (past offset `after`) contains `text`: the test's only way to know the
    long poll is being handled (the server logs it at debug level)."""
    for _ in range(1200):
        if text in server.output()[after:]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never logged:\n{server.output()[-3000:]}")


async def test_sigterm_answers_an_open_long_poll_and_stops_within_the_timeout(tmp_path: Path) -> None:
    shutdown_timeout = 10.0
    async with running_talkd(tmp_path / "data", extra_args=(
            "--log-level", "debug", "--server-shutdown-timeout", str(shutdown_timeout))) as server:
        async with aiohttp.ClientSession() as http:
            token, last = await _room_with_message(http, server)
            mark = len(server.output())
            auth = {**OCS, "Authorization": basic("admin", server.admin_password)}
            poll = asyncio.ensure_future(http.get(
                f"{server.base_url}/ocs/v2.php/apps/spreed/api/v1/chat/{token}",
                params={"lookIntoFuture": "1", "lastKnownMessageId": str(last), "timeout": "60"}, headers=auth))
            await _until_logged(server, f"waiting for the room' room={token!r}", mark)
            assert server.process is not None
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            response = await asyncio.wait_for(poll, 60)
            # What Talk answers when a long poll times out with nothing new.
            assert response.status == 304, await response.text()
            response.release()
            code = await asyncio.to_thread(server.process.wait, 60)
            elapsed = time.monotonic() - started
        assert code == 0, server.output()[-3000:]
        assert elapsed < shutdown_timeout, elapsed
        assert "Traceback" not in server.output()[mark:], server.output()[mark:]
