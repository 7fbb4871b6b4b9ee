"""The command line, driven through `talkd.cli.main(argv)` on a temporary data dir (and the test
PostgreSQL database when TALKD_TEST_DATABASE_URL is set): users, groups, the database, help and errors.
Results are checked through the CLI's own listings and through talkd's real authenticator."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from talkd.app import build_services, close_services
from talkd.cli import main
from talkd.config import load_settings
from talkd.errors import NotAuthenticated
from talkd.storage import migrate
from tests.helpers.server import reset_postgres

POSTGRES_URL = os.environ.get("TALKD_TEST_DATABASE_URL", "")


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("TALKD_") and name != "TALKD_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    if POSTGRES_URL:
        reset_postgres(POSTGRES_URL)
    return tmp_path / "data"


@pytest.fixture
def cli(data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`cli("user", "add", "alice", stdin="pw\\n")`: runs main() with the storage flags appended."""
    storage = ["--data-dir", str(data_dir)] + (["--database-url", POSTGRES_URL] if POSTGRES_URL else [])

    def run(*argv: str, stdin: str = "", storage_flags: bool = True) -> Result:
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*argv, *(storage if storage_flags else [])])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def authenticates(data_dir: Path, login: str, secret: str) -> bool:
    """Ask talkd's own authenticator (real argon2 / app-password lookup) on the CLI's database."""
    flags = {"storage__data_dir": str(data_dir)} | ({"storage__database_url": POSTGRES_URL} if POSTGRES_URL else {})
    settings = load_settings(flags, environ={})

    async def check() -> bool:
        services = await build_services(settings)
        try:
            await services.auth.basic(login, secret, "127.0.0.1")
            return True
        except NotAuthenticated:
            return False
        finally:
            await close_services(services)

    return asyncio.run(check())


def test_user_commands(cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "upgrade").code == 0
    monkeypatch.setenv("TALKD_PASSWORD", "alice first passphrase")
    added = cli("user", "add", "alice", "--display-name", "Alice", "--email", "alice@example.org",
                "--password-from-env")
    assert (added.code, added.out.strip()) == (0, "created user alice")
    # Without --password-from-env and no terminal, the password is read from standard input.
    assert cli("user", "add", "bob", "--admin", stdin="bob first passphrase\n").code == 0

    listed = cli("user", "list")
    assert listed.code == 0
    lines = sorted(listed.out.strip().splitlines())
    assert lines == ["alice\tAlice\talice@example.org\t-", "bob\tbob\t-\tadmin"]
    as_json = orjson.loads(cli("user", "list", "--json", "--search", "ali").out)
    assert as_json == [{"id": "alice", "displayName": "Alice", "email": "alice@example.org", "enabled": True,
                        "groups": []}]
    assert authenticates(data_dir, "alice", "alice first passphrase")
    assert authenticates(data_dir, "bob", "bob first passphrase")

    changed = cli("user", "set-password", "alice", stdin="alice second passphrase\n")
    assert (changed.code, changed.out.strip()) == (0, "password of alice changed")
    assert authenticates(data_dir, "alice", "alice second passphrase")
    assert not authenticates(data_dir, "alice", "alice first passphrase")

    app = cli("user", "app-password", "alice", "--name", "my script")
    assert app.code == 0
    app_password = app.out.strip()
    assert len(app_password) >= 32 and "\n" not in app_password
    assert authenticates(data_dir, "alice", app_password)
    assert not authenticates(data_dir, "bob", app_password)  # bound to its user

    deleted = cli("user", "delete", "alice")
    assert (deleted.code, deleted.out.strip()) == (0, "deleted user alice")
    assert [line.split("\t")[0] for line in cli("user", "list").out.splitlines()] == ["bob"]
    assert not authenticates(data_dir, "alice", "alice second passphrase")
    assert not authenticates(data_dir, "alice", app_password)


def test_group_commands(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "upgrade").code == 0
    monkeypatch.setenv("TALKD_PASSWORD", "carol long passphrase")
    assert cli("user", "add", "carol", "--password-from-env").code == 0
    added = cli("group", "add", "staff", "--display-name", "Staff")
    assert (added.code, added.out.strip()) == (0, "created group staff")
    assert cli("group", "add", "ops").code == 0
    assert sorted(cli("group", "list").out.strip().splitlines()) == ["ops\tops\t-", "staff\tStaff\t-"]

    member = cli("group", "add-member", "staff", "carol")
    assert (member.code, member.out.strip()) == (0, "added carol to staff")
    groups = {g["id"]: g for g in orjson.loads(cli("group", "list", "--json").out)}
    assert groups["staff"]["members"] == ["carol"] and groups["ops"]["members"] == []
    assert "carol\tcarol\t-\tstaff" in cli("user", "list").out

    removed = cli("group", "remove-member", "staff", "carol")
    assert (removed.code, removed.out.strip()) == (0, "removed carol from staff")
    assert orjson.loads(cli("group", "list", "--json").out)[1]["members"] == []

    deleted = cli("group", "delete", "ops")
    assert (deleted.code, deleted.out.strip()) == (0, "deleted group ops")
    assert [g["id"] for g in orjson.loads(cli("group", "list", "--json").out)] == ["staff"]


def test_user_add_with_groups(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "upgrade").code == 0
    assert cli("group", "add", "staff").code == 0
    monkeypatch.setenv("TALKD_PASSWORD", "dave long passphrase")
    assert cli("user", "add", "dave", "--group", "staff", "--admin", "--password-from-env").code == 0
    assert orjson.loads(cli("user", "list", "--json").out)[0]["groups"] == ["admin", "staff"]


def test_db_commands(cli: Cli) -> None:
    head = migrate.head_revision()
    empty = cli("db", "current")
    if POSTGRES_URL:  # the database exists, with an empty schema
        assert (empty.code, empty.out.strip()) == (0, f"empty (head: {head})")
    else:  # no database file: reported, not created
        assert (empty.code, empty.out) == (1, "")
        assert empty.err.startswith("talkd: no talkd database at ") and empty.err.count("\n") == 1
    upgraded = cli("db", "upgrade")
    assert (upgraded.code, upgraded.out.strip()) == (0, f"database at revision {head} (was empty)")
    again = cli("db", "upgrade")
    assert (again.code, again.out.strip()) == (0, f"database at revision {head}")
    current = cli("db", "current")
    assert (current.code, current.out.strip()) == (0, f"{head} (head: {head})")


HELP_LEVELS = [(), ("serve",), ("user",), ("user", "add"), ("user", "list"), ("user", "delete"),
               ("user", "set-password"), ("user", "app-password"), ("group",), ("group", "add"),
               ("group", "list"), ("group", "delete"), ("group", "add-member"), ("group", "remove-member"),
               ("db",), ("db", "upgrade"), ("db", "current"), ("config",), ("config", "show"),
               ("config", "reference")]


@pytest.mark.parametrize("words", HELP_LEVELS, ids=[" ".join(w) or "talkd" for w in HELP_LEVELS])
def test_help_at_every_level(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: talkd {' '.join(words)}".rstrip())
    if words and words[0] in ("user", "group", "db") and len(words) == 2:
        assert "--data-dir" in out and "--database-url" in out  # every storage command takes them


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["user"])
    assert exited.value.code == 2
    assert "usage: talkd user" in capsys.readouterr().err


def test_errors_exit_non_zero_with_a_message(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "upgrade").code == 0
    monkeypatch.setenv("TALKD_PASSWORD", "erin long passphrase")
    assert cli("user", "add", "erin", "--password-from-env").code == 0

    duplicate = cli("user", "add", "erin", "--password-from-env")
    assert (duplicate.code, duplicate.out, duplicate.err) == (1, "", "talkd: User already exists\n")
    assert cli("group", "add", "staff").code == 0
    assert (cli("group", "add", "staff").code, cli("group", "add", "staff").err) == (1, "talkd: group exists\n")

    for argv in (("group", "add-member", "nogroup", "erin"), ("group", "remove-member", "nogroup", "erin"),
                 ("group", "delete", "nogroup")):
        failed = cli(*argv)
        assert (failed.code, failed.out, failed.err) == (1, "", "talkd: group nogroup does not exist\n"), argv
    for argv in (("user", "delete", "nobody"), ("group", "add-member", "staff", "nobody"),
                 ("user", "app-password", "nobody")):
        failed = cli(*argv)
        assert (failed.code, failed.out, failed.err) == (1, "", "talkd: User does not exist\n"), argv

    monkeypatch.setenv("TALKD_PASSWORD", "")
    empty = cli("user", "add", "frank", "--password-from-env")
    assert empty.code != 0 and "TALKD_PASSWORD" in empty.err
    assert [u["id"] for u in orjson.loads(cli("user", "list", "--json").out)] == ["erin"]


STORAGE_COMMANDS = [("user", "list"), ("user", "add", "alice", "--password-from-env"), ("user", "delete", "alice"),
                    ("user", "set-password", "alice", "--password-from-env"), ("user", "app-password", "alice"),
                    ("group", "list"), ("group", "add", "staff"), ("group", "delete", "staff"),
                    ("group", "add-member", "staff", "alice"), ("group", "remove-member", "staff", "alice")]


@pytest.mark.parametrize("argv", STORAGE_COMMANDS, ids=[" ".join(a[:2]) for a in STORAGE_COMMANDS])
def test_commands_refuse_a_data_dir_without_an_installation(cli: Cli, data_dir: Path, argv: tuple[str, ...],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the wrong directory, a command says so instead of creating a new, empty installation."""
    monkeypatch.setenv("TALKD_PASSWORD", "alice long passphrase")
    refused = cli(*argv)
    assert (refused.code, refused.out) == (1, "")
    assert refused.err.startswith("talkd: ") and refused.err.count("\n") == 1, refused.err
    assert "talkd serve" in refused.err and "talkd db upgrade" in refused.err
    assert not data_dir.exists()  # nothing created: no data dir, no database, no secret
    if POSTGRES_URL:
        assert cli("db", "current").out.startswith("empty ")  # no schema was created either


def test_an_installation_without_its_secret_is_refused(cli: Cli, data_dir: Path) -> None:
    """The database found but not the data dir it belongs to (PostgreSQL, or a moved SQLite file): a new
    secret would invalidate every app password, so the command refuses."""
    assert cli("db", "upgrade").code == 0
    (data_dir / "secret").unlink()
    refused = cli("user", "list")
    assert (refused.code, refused.out) == (1, "")
    assert refused.err.startswith("talkd: no server secret at ") and refused.err.count("\n") == 1
    assert not (data_dir / "secret").exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_db_upgrade_creates_a_private_data_dir_and_tightens_an_old_one(cli: Cli, data_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("db", "upgrade").code == 0
    monkeypatch.setenv("TALKD_PASSWORD", "alice long passphrase")
    assert cli("user", "add", "alice", "--password-from-env").code == 0
    names = {p.name for p in data_dir.iterdir()}
    assert "secret" in names and (POSTGRES_URL or "talkd.db" in names), names
    assert _mode(data_dir) == 0o700
    assert {p.name: _mode(p) for p in data_dir.iterdir()} == {n: 0o600 for n in names}
    data_dir.chmod(0o755)  # as an install from before this rule left it
    for path in data_dir.iterdir():
        path.chmod(0o644)
    assert cli("db", "upgrade").code == 0
    assert _mode(data_dir) == 0o700
    assert {p.name: _mode(p) for p in data_dir.iterdir()} == {n: 0o600 for n in names}
