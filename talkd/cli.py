"""The talkd command line: parses, calls services, prints. No rules live here."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.engine import make_url

from talkd import __version__
from talkd import log as logsetup
from talkd.app import SECRET_FILE, build_services, close_services, create_app, load_secret
from talkd.bus.base import EventBus
from talkd.bus.memory import MemoryBus
from talkd.bus.nats import NatsBus
from talkd.config import ConfigError, Settings, add_arguments, describe, load_settings, reference_markdown
from talkd.errors import TalkdError
from talkd.services import Services
from talkd.storage import datadir, migrate
from talkd.storage.database import Database, normalize_url

log = logging.getLogger("talkd")

PASSWORD_ENV = "TALKD_PASSWORD"
BUS_CONNECT_TIMEOUT = 10.0


def _storage_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    add_arguments(parent, sections=("storage",))
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="talkd", description="A chat and video-call server speaking "
                                     "Nextcloud Talk's API.")
    parser.add_argument("--version", action="version", version=f"talkd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    storage = _storage_parent()

    serve = commands.add_parser("serve", help="run the server",
                                description="Run the server. Settings: flags > TALKD_* environment > "
                                            "TOML file (--config) > defaults.")
    add_arguments(serve)
    serve.set_defaults(run=cmd_serve)

    # Users ----------------------------------------------------------------------------------------
    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", metavar="ACTION",
                                                                          required=True)
    p = user.add_parser("add", parents=[storage], help="create a user",
                        description=f"Create a user. The password is read from ${PASSWORD_ENV} with "
                                    "--password-from-env, else asked for (or read from standard input).")
    p.add_argument("user_id")
    p.add_argument("--display-name", default="")
    p.add_argument("--email", default="")
    p.add_argument("--group", action="append", default=[], help="add to this group (repeatable)")
    p.add_argument("--admin", action="store_true", help="add to the admin group")
    p.add_argument("--password-from-env", action="store_true", help=f"read the password from ${PASSWORD_ENV}")
    p.set_defaults(run=cmd_user_add)
    p = user.add_parser("delete", parents=[storage], help="delete a user")
    p.add_argument("user_id")
    p.set_defaults(run=cmd_user_delete)
    p = user.add_parser("list", parents=[storage], help="list users")
    p.add_argument("--search", default="")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_user_list)
    p = user.add_parser("set-password", parents=[storage], help="set a user's password")
    p.add_argument("user_id")
    p.add_argument("--password-from-env", action="store_true", help=f"read the password from ${PASSWORD_ENV}")
    p.set_defaults(run=cmd_user_set_password)
    p = user.add_parser("app-password", parents=[storage], help="create an app password for a user",
                        description="Create an app password and print it once.")
    p.add_argument("user_id")
    p.add_argument("--name", default="talkd cli")
    p.set_defaults(run=cmd_user_app_password)

    # Groups ---------------------------------------------------------------------------------------
    group = commands.add_parser("group", help="manage groups").add_subparsers(dest="action", metavar="ACTION",
                                                                             required=True)
    p = group.add_parser("add", parents=[storage], help="create a group")
    p.add_argument("group_id")
    p.add_argument("--display-name", default="")
    p.set_defaults(run=cmd_group_add)
    p = group.add_parser("delete", parents=[storage], help="delete a group")
    p.add_argument("group_id")
    p.set_defaults(run=cmd_group_delete)
    p = group.add_parser("list", parents=[storage], help="list groups and their members")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_group_list)
    p = group.add_parser("add-member", parents=[storage], help="add a user to a group")
    p.add_argument("group_id")
    p.add_argument("user_id")
    p.set_defaults(run=cmd_group_add_member)
    p = group.add_parser("remove-member", parents=[storage], help="remove a user from a group")
    p.add_argument("group_id")
    p.add_argument("user_id")
    p.set_defaults(run=cmd_group_remove_member)

    # Database and configuration --------------------------------------------------------------------
    db = commands.add_parser("db", help="database maintenance").add_subparsers(dest="action", metavar="ACTION",
                                                                              required=True)
    p = db.add_parser("upgrade", parents=[storage], help="apply pending migrations (Alembic)")
    p.add_argument("--revision", default="head", help="target revision (default: head)")
    p.set_defaults(run=cmd_db_upgrade)
    p = db.add_parser("current", parents=[storage], help="print the database's revision")
    p.set_defaults(run=cmd_db_current)
    config = commands.add_parser("config", help="inspect settings").add_subparsers(dest="action",
                                                                                   metavar="ACTION", required=True)
    p = config.add_parser("show", help="print the effective settings (secrets masked)")
    add_arguments(p)
    p.set_defaults(run=cmd_config_show)
    p = config.add_parser("reference", help="print the configuration reference as a Markdown table")
    p.set_defaults(run=cmd_config_reference)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if "__" in k or k == "config_file"}
    try:
        settings = load_settings(flags)
    except ConfigError as exc:
        print(f"talkd: configuration error: {exc}", file=sys.stderr)
        return 2
    logsetup.setup(settings.log.level, settings.log.format, settings.log.access_log)
    run: Callable[[Settings, argparse.Namespace], Awaitable[int]] = args.run
    try:
        return _run(run(settings, args))
    except TalkdError as exc:
        print(f"talkd: {exc.message or exc.reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(coro: Awaitable[int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def _where(settings: Settings) -> str:
    """The database, for messages: the SQLite file, or the URL without its password."""
    if not settings.storage.database_url:
        return str(settings.sqlite_path)
    return make_url(normalize_url(settings.database_url)).render_as_string(hide_password=True)


def _sqlite_file(settings: Settings) -> Path | None:
    url = normalize_url(settings.database_url)
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


async def open_database(settings: Settings) -> Database:
    """The configured database, connected once so that an unreachable or missing one is reported in
    one line here instead of as a traceback from wherever it is first used."""
    db = Database(settings.database_url)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (OSError, sa.exc.DBAPIError) as exc:
        await db.close()
        reason = str(exc.orig) if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else str(exc)
        raise TalkdError(f"cannot open the database {_where(settings)}: {reason.splitlines()[0]}") from None
    return db


NOT_INSTALLED = ("run 'talkd serve' or 'talkd db upgrade' to create one, or pass the --data-dir "
                 "(and --database-url) of the installation")


async def open_installation(settings: Settings, *, schema: bool = True) -> Database:
    """The database of an existing installation. Commands other than `serve` and `db upgrade` never
    create one: run from the wrong directory, they would silently start a new, empty one."""
    sqlite = _sqlite_file(settings)
    if sqlite is not None and not sqlite.exists():
        raise TalkdError(f"no talkd database at {str(sqlite)!r}: {NOT_INSTALLED}")
    db = await open_database(settings)
    try:
        if schema and await migrate.current_revision(db) is None:
            raise TalkdError(f"the database {_where(settings)} holds no talkd installation: {NOT_INSTALLED}")
        secret = Path(settings.storage.data_dir) / SECRET_FILE
        if schema and not settings.security.secret and not secret.exists():
            # A new secret would make every app password of the installation invalid.
            raise TalkdError(f"no server secret at {str(secret)!r}: {NOT_INSTALLED}")
    except BaseException:
        await db.close()
        raise
    return db


async def _with_services(settings: Settings, job: Callable[[Services], Awaitable[int]]) -> int:
    db = await open_installation(settings)
    try:
        await migrate.upgrade(db)
        services = await build_services(settings, db=db)
    except BaseException:
        await db.close()
        raise
    try:
        return await job(services)
    finally:
        await close_services(services)


def _read_password(from_env: bool) -> str:
    if from_env:
        value = os.environ.get(PASSWORD_ENV, "")
        if not value:
            raise TalkdError(f"${PASSWORD_ENV} is empty")
        return value
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise TalkdError("The passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\n")


# Commands -----------------------------------------------------------------------------------------


def tune_gc_after_start() -> None:
    """Everything built at start-up lives for the whole run: keep it out of the garbage collector's
    full passes, and collect young objects less often (a busy server allocates in bursts)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The server's runner. Handlers are cancelled when their client goes away, so a long poll whose
    client disconnected releases its bus subscription at once instead of sleeping out its timeout."""
    # aiohttp waits up to its timeout for handlers to finish and then as long again for the cancelled
    # ones: half each keeps the whole stop within server.shutdown_timeout.
    return web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if settings.log.access_log else None,
                         shutdown_timeout=settings.server.shutdown_timeout / 2, handler_cancellation=True)


async def connect_bus(settings: Settings) -> EventBus:
    if not settings.bus.url:
        return MemoryBus()
    try:
        # The client retries a refused first connection for ever: give up after a while instead.
        return await asyncio.wait_for(NatsBus.connect(settings.bus.url, prefix=settings.bus.prefix),
                                      BUS_CONNECT_TIMEOUT)
    except TimeoutError:
        raise TalkdError(f"cannot reach the event bus at {settings.bus.url} "
                         f"(no connection within {BUS_CONNECT_TIMEOUT:g}s)") from None
    except Exception as exc:  # nats raises its own errors and OSError alike
        raise TalkdError(f"cannot reach the event bus at {settings.bus.url}: {exc or type(exc).__name__}") from None


async def listen(host: str, port: int) -> list[socket.socket]:
    """Bound, listening sockets for every address `host` names (as asyncio's create_server would), made
    before anything else is created, so a port in use is reported before the first admin exists.
    Connections that arrive before serving starts wait in the kernel's backlog."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise TalkdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise TalkdError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


def announce_admin(user_id: str, password: str, configured: bool) -> None:
    if configured:
        print(f"talkd: created admin user '{user_id}'", flush=True)
    else:
        # Shown once, on the terminal, never in the log.
        print(f"talkd: created admin user '{user_id}' with password: {password}", flush=True)


async def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    # Each step that can fail for a reason outside talkd reports it in one line (TalkdError) and
    # undoes what the steps before it did.
    data_dir = Path(settings.storage.data_dir)
    datadir.prepare(data_dir)
    lock = datadir.DataDirLock(data_dir)
    lock.acquire()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(lock.release)
        sockets = await listen(settings.server.host, settings.server.port)
        for sock in sockets:
            stack.callback(sock.close)
        db = await open_database(settings)
        stack.push_async_callback(db.close)
        await migrate.upgrade(db)
        bus = await connect_bus(settings)
        stack.push_async_callback(bus.close)
        services = await build_services(settings, db=db, bus=bus)
        # The first admin only once the port is ours: a start that fails earlier creates no admin, so
        # its generated password cannot be lost; the next start generates and prints one.
        created = await services.accounts.ensure_first_admin(settings.admin.user, settings.admin.password)
        if created is not None:
            announce_admin(created[0].id, created[1], bool(settings.admin.password))
        runner = make_runner(create_app(services), settings)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        tune_gc_after_start()
        log.info("listening", extra={"url": f"http://{settings.server.host}:{settings.server.port}",
                                     "database": services.db.dialect, "data_dir": str(data_dir)})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
    return 0


async def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password(args.password_from_env)

    async def job(s: Services) -> int:
        groups = tuple(args.group) + (("admin",) if args.admin else ())
        if args.admin and await s.accounts.groups.get("admin") is None:
            await s.accounts.create_group("admin")
        user = await s.accounts.create_user(args.user_id, password, display_name=args.display_name,
                                            email=args.email, groups=groups)
        print(f"created user {user.id}")
        return 0
    return await _with_services(settings, job)


async def cmd_user_delete(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        await s.accounts.delete_user(args.user_id)
        print(f"deleted user {args.user_id}")
        return 0
    return await _with_services(settings, job)


async def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        users = await s.accounts.list_users(args.search)
        rows: list[dict[str, Any]] = []
        for u in users:
            rows.append({"id": u.id, "displayName": u.display_name, "email": u.email, "enabled": u.enabled,
                         "groups": list(await s.accounts.groups_of(u.id))})
        if args.json:
            print(orjson.dumps(rows).decode())
        else:
            for r in rows:
                groups = ",".join(r["groups"]) or "-"
                print(f"{r['id']}\t{r['displayName']}\t{r['email'] or '-'}\t{groups}")
        return 0
    return await _with_services(settings, job)


async def cmd_user_set_password(settings: Settings, args: argparse.Namespace) -> int:
    password = _read_password(args.password_from_env)

    async def job(s: Services) -> int:
        await s.accounts.set_password(args.user_id, password)
        print(f"password of {args.user_id} changed")
        return 0
    return await _with_services(settings, job)


async def cmd_user_app_password(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        created = await s.accounts.create_app_password(args.user_id, args.name)
        print(created.password)
        return 0
    return await _with_services(settings, job)


async def cmd_group_add(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        group = await s.accounts.create_group(args.group_id, args.display_name)
        print(f"created group {group.id}")
        return 0
    return await _with_services(settings, job)


async def cmd_group_delete(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        await s.accounts.delete_group(args.group_id)
        print(f"deleted group {args.group_id}")
        return 0
    return await _with_services(settings, job)


async def cmd_group_list(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        rows = [{"id": g.id, "displayName": g.display_name, "members": list(await s.accounts.members_of(g.id))}
                for g in await s.accounts.list_groups()]
        if args.json:
            print(orjson.dumps(rows).decode())
        else:
            for r in rows:
                print(f"{r['id']}\t{r['displayName']}\t{','.join(r['members']) or '-'}")
        return 0
    return await _with_services(settings, job)


async def cmd_group_add_member(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        await s.accounts.add_to_group(args.user_id, args.group_id)
        print(f"added {args.user_id} to {args.group_id}")
        return 0
    return await _with_services(settings, job)


async def cmd_group_remove_member(settings: Settings, args: argparse.Namespace) -> int:
    async def job(s: Services) -> int:
        await s.accounts.remove_from_group(args.user_id, args.group_id)
        print(f"removed {args.user_id} from {args.group_id}")
        return 0
    return await _with_services(settings, job)


async def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    # Creates an installation, as serve does: the data dir, its secret and the schema.
    datadir.prepare(Path(settings.storage.data_dir))
    load_secret(settings)
    db = await open_database(settings)
    try:
        before = await migrate.current_revision(db)
        await migrate.upgrade(db, args.revision)
        after = await migrate.current_revision(db)
    finally:
        await db.close()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


async def cmd_db_current(settings: Settings, _args: argparse.Namespace) -> int:
    db = await open_installation(settings, schema=False)
    try:
        current = await migrate.current_revision(db)
    finally:
        await db.close()
    head = migrate.head_revision()
    print(f"{current or 'empty'} (head: {head})")
    return 0


async def cmd_config_show(settings: Settings, _args: argparse.Namespace) -> int:
    print(orjson.dumps(describe(settings), option=orjson.OPT_INDENT_2).decode())
    return 0


async def cmd_config_reference(_settings: Settings, _args: argparse.Namespace) -> int:
    print(reference_markdown())
    return 0
