"""The talkd command line: parses, calls services, prints. No rules live here."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from talkd import __version__
from talkd import log as logsetup
from talkd.app import build_services, close_services, create_app
from talkd.config import ConfigError, Settings, add_arguments, describe, load_settings, reference_markdown
from talkd.errors import TalkdError
from talkd.services import Services
from talkd.storage import migrate
from talkd.storage.database import Database

log = logging.getLogger("talkd")

PASSWORD_ENV = "TALKD_PASSWORD"


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


async def _with_services(settings: Settings, job: Callable[[Services], Awaitable[int]]) -> int:
    services = await build_services(settings)
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
    return web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if settings.log.access_log else None,
                         shutdown_timeout=settings.server.shutdown_timeout, handler_cancellation=True)


async def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    services = await build_services(settings)
    created = await services.accounts.ensure_first_admin(settings.admin.user, settings.admin.password)
    if created is not None:
        user, password = created
        if settings.admin.password:
            print(f"talkd: created admin user '{user.id}'", flush=True)
        else:
            # Shown once, on the terminal, never in the log.
            print(f"talkd: created admin user '{user.id}' with password: {password}", flush=True)
    runner = make_runner(create_app(services), settings)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    tune_gc_after_start()
    log.info("listening", extra={"url": f"http://{settings.server.host}:{settings.server.port}",
                                 "database": services.db.dialect, "data_dir": str(settings.storage.data_dir)})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()
        await close_services(services)
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
    db = Database(settings.database_url)
    try:
        before = await migrate.current_revision(db)
        await migrate.upgrade(db, args.revision)
        after = await migrate.current_revision(db)
    finally:
        await db.close()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


async def cmd_db_current(settings: Settings, _args: argparse.Namespace) -> int:
    db = Database(settings.database_url)
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
