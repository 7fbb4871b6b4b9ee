"""Basic-auth benchmark: GET /ocs/v2.php/cloud/user with HTTP Basic (account passwords), N concurrent
aiohttp clients against a real talkd; prints a table and writes bench/results/auth.json.

Phases, each on a fresh server and data dir:
  cold      the first request of each of --users accounts, one at a time: a real argon2id verification
  warm      --clients concurrent clients, --requests requests in all (or until --duration): the
            credential cache answers, no argon2
  no-cache  the same load with security.credential_cache_seconds=0 (every request verifies with argon2),
            limited to --nocache-requests; skipped with --nocache-requests 0

The server runs as `python -m talkd serve` (default, the real thing) or in this process (--in-process: the
server shares the client's event loop, so figures are lower). Usage:
  python -m bench.auth [--clients 16] [--requests 5000] [--duration 30] [--users 8] [--nocache-requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, TCPConnector

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "bench admin passphrase"
PATH = "/ocs/v2.php/cloud/user"
MAX_REQUESTS = 1_000_000
MAX_DURATION = 600.0


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_listening(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                async with session.get(f"{base}/status.php") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"talkd did not start listening at {base}")


@contextlib.asynccontextmanager
async def talkd_subprocess(database_url: str, env: dict[str, str] | None = None,
                           preexec: Callable[[], None] | None = None) -> AsyncIterator[tuple[str, int]]:
    """`python -m talkd serve` on a free port and a temporary data dir, with only the TALKD_* settings
    given in `env`; yields its base URL and pid, and stops it (SIGTERM, then SIGKILL) at the end."""
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TALKD_")}
        environment.update(TALKD_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONPATH=str(ROOT))
        environment.update(env or {})
        argv = [sys.executable, "-m", "talkd", "serve", "--host", "127.0.0.1", "--port", str(port),
                "--data-dir", data_dir] + (["--database-url", database_url] if database_url else [])
        process = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                                                       stderr=subprocess.DEVNULL, preexec_fn=preexec)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_listening(base)
            yield base, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def subprocess_server(cache_seconds: float, database_url: str) -> AsyncIterator[str]:
    env = {"TALKD_SECURITY_CREDENTIAL_CACHE_SECONDS": str(cache_seconds)}
    async with talkd_subprocess(database_url, env) as (base, _pid):
        yield base


@contextlib.asynccontextmanager
async def in_process_server(cache_seconds: float, database_url: str) -> AsyncIterator[str]:
    from aiohttp import web

    from talkd.app import build_services, close_services, create_app
    from talkd.config import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings().replace(storage__data_dir=Path(data_dir), storage__database_url=database_url,
                                      security__credential_cache_seconds=cache_seconds)
        services = await build_services(settings)
        await services.accounts.ensure_first_admin("admin", ADMIN_PASSWORD)
        runner = web.AppRunner(create_app(services))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()
            await close_services(services)


async def get_user(session: ClientSession, base: str, auth: str) -> float:
    started = time.perf_counter()
    async with session.get(base + PATH, headers={"Authorization": auth, "OCS-APIRequest": "true",
                                                 "Accept": "application/json"}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {PATH} answered {response.status}")
    return time.perf_counter() - started


async def make_users(session: ClientSession, base: str, count: int) -> list[str]:
    auths = []
    for i in range(count):
        user, password = f"bench{i}", f"bench{i} long passphrase"
        async with session.post(f"{base}/ocs/v2.php/cloud/users", data={"userid": user, "password": password},
                                headers={"Authorization": basic("admin", ADMIN_PASSWORD), "OCS-APIRequest": "true",
                                         "Accept": "application/json"}) as response:
            if response.status != 200:
                raise RuntimeError(f"creating {user}: {response.status} {await response.text()}")
        auths.append(basic(user, password))
    return auths


async def load(session: ClientSession, base: str, auths: list[str], clients: int, requests: int,
               duration: float) -> tuple[list[float], float]:
    """`clients` workers share a budget of `requests` requests, stopping early after `duration` seconds."""
    latencies: list[float] = []
    remaining = requests
    deadline = time.perf_counter() + duration

    async def worker(n: int) -> None:
        nonlocal remaining
        auth = auths[n % len(auths)]
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            latencies.append(await get_user(session, base, auth))

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    return latencies, time.perf_counter() - started


def summary(name: str, latencies: list[float], elapsed: float, clients: int) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {"phase": name, "clients": clients, "requests": len(ordered), "seconds": round(elapsed, 3),
            "requests_per_second": round(len(ordered) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(pct(50), 2), "p99_ms": round(pct(99), 2), "max_ms": round(ordered[-1] * 1000, 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


async def phase_run(args: argparse.Namespace, cache_seconds: float) -> list[dict[str, Any]]:
    server = in_process_server if args.in_process else subprocess_server
    rows = []
    async with server(cache_seconds, args.database_url) as base, \
            ClientSession(connector=TCPConnector(limit=args.clients)) as session:
        auths = await make_users(session, base, args.users)
        if cache_seconds > 0:
            started = time.perf_counter()
            cold = [await get_user(session, base, auth) for auth in auths]
            rows.append(summary("cold (argon2)", cold, time.perf_counter() - started, 1))
            latencies, elapsed = await load(session, base, auths, args.clients, args.requests, args.duration)
            rows.append(summary("warm (cache)", latencies, elapsed, args.clients))
        else:
            latencies, elapsed = await load(session, base, auths, args.clients, args.nocache_requests,
                                            args.duration)
            rows.append(summary("no cache (argon2 each)", latencies, elapsed, args.clients))
    return rows


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = await phase_run(args, 300.0)
    if args.nocache_requests > 0:
        rows += await phase_run(args, 0.0)
    return rows


def bounded(kind: type, low: float, high: float) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=bounded(int, 1, 1000), default=16, help="concurrent clients (16)")
    parser.add_argument("--requests", type=bounded(int, 1, MAX_REQUESTS), default=5000,
                        help="requests in the warm phase (5000)")
    parser.add_argument("--duration", type=bounded(float, 0.1, MAX_DURATION), default=30.0,
                        help="stop a load phase after this many seconds (30)")
    parser.add_argument("--users", type=bounded(int, 1, 100), default=8, help="accounts to log in as (8)")
    parser.add_argument("--nocache-requests", type=bounded(int, 0, MAX_REQUESTS), default=200,
                        help="requests with the credential cache off (200; 0 skips the phase)")
    parser.add_argument("--in-process", action="store_true", help="run talkd in this process, not as a subprocess")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "auth.json")
    args = parser.parse_args(argv)

    rows = asyncio.run(run(args))
    header = f"{'phase':<24}{'clients':>8}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['phase']:<24}{r['clients']:>8}{r['requests']:>10}{r['requests_per_second']:>10}"
              f"{r['p50_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "auth", "argv": sys.argv[1:] if argv is None else argv,
        "server": "in-process" if args.in_process else "subprocess",
        "database": "postgresql" if args.database_url else "sqlite",
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
