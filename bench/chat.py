"""Chat benchmark: a real `python -m talkd serve` (SQLite by default), users and conversations made
through the API, then three loads. Prints a table and writes bench/results/chat.json.

  send     S concurrent senders post into one group conversation as fast as they can
           (messages/s and send latency p50/p95/p99)
  fanout   R receivers long-poll one conversation while one sender posts at a steady rate; delivery
           latency (post started → message received) p50/p95/p99, lost and duplicated counts
  pairs    K two-person conversations at once, each with a sender posting back to back and a receiver
           long-polling; messages/s in total, delivery latency, lost and duplicated counts

For each phase it reports the server's CPU seconds and RSS (from /proc) and the load generator's own
CPU seconds, so it is clear which side limits. Every loop is bounded by count and time.

  python -m bench.chat --help
  python -m bench.chat                      # the issue's targets: S=32, R=10/100/1000, K=500
  python -m bench.chat --quick              # a small run to check it works
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector

from bench.auth import ADMIN_PASSWORD, basic, talkd_subprocess

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ("admin", ADMIN_PASSWORD)
OCS = "/ocs/v2.php"
ROOM = f"{OCS}/apps/spreed/api/v4/room"
CHAT = f"{OCS}/apps/spreed/api/v1/chat"
HEADERS = {"OCS-APIRequest": "true", "Accept": "application/json"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Server:
    base: str
    pid: int

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MiB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def _raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextlib.asynccontextmanager
async def talkd_server(database_url: str) -> AsyncIterator[Server]:
    async with talkd_subprocess(database_url, preexec=_raise_file_limit) as (base, pid):
        yield Server(base, pid)


class Api:
    def __init__(self, session: ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def ocs(self, method: str, path: str, auth: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.session.request(method, self.base + path, headers={**HEADERS, "Authorization": auth},
                                        **kwargs) as response:
            body = await response.read()
            data = json.loads(body)["ocs"]["data"] if body else None
            return response.status, data, response.headers

    async def user(self, name: str) -> str:
        """A user with an app password (app passwords skip argon2 on every later request)."""
        password = f"{name}-bench-password"
        admin = basic(*ADMIN)
        status, _, _ = await self.ocs("POST", "/ocs/v1.php/cloud/users", admin,
                                      data={"userid": name, "password": password})
        assert status == 200, status
        status, data, _ = await self.ocs("GET", f"{OCS}/core/getapppassword", basic(name, password))
        assert status == 200, status
        return basic(name, data["apppassword"])

    async def room(self, owner: str, members: list[str], name: str) -> str:
        status, data, _ = await self.ocs("POST", ROOM, owner, json={"roomType": 2, "roomName": name})
        assert status == 201, status
        token = str(data["token"])
        for member in members:
            status, _, _ = await self.ocs("POST", f"{ROOM}/{token}/participants", owner,
                                          json={"newParticipant": member, "source": "users"})
            assert status == 200, status
        return token


@dataclass
class Tally:
    """What receivers saw: per receiver the sequence numbers, and every delivery latency."""

    sent_at: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seen: list[list[str]] = field(default_factory=list)

    def lost_and_duplicated(self, expected: dict[int, set[str]]) -> tuple[int, int]:
        lost = duplicated = 0
        for index, got in enumerate(self.seen):
            wanted = expected.get(index, set(self.sent_at))
            duplicated += len(got) - len(set(got))
            lost += len(wanted - set(got))
        return lost, duplicated


async def receiver(api: Api, auth: str, token: str, start_id: int, tally: Tally, index: int, stop: asyncio.Event,
                   deadline: float) -> None:
    last = start_id
    got = tally.seen[index]
    while not stop.is_set() and time.monotonic() < deadline:
        params = {"lookIntoFuture": 1, "lastKnownMessageId": last, "timeout": 10, "limit": 200}
        status, data, headers = await api.ocs("GET", f"{CHAT}/{token}", auth, params=params)
        now = time.perf_counter()
        if status == 304:
            continue
        if status != 200:
            raise RuntimeError(f"receiver got HTTP {status}")
        for message in data:
            text = message["message"]
            if text in tally.sent_at:
                got.append(text)
                tally.latencies.append((now - tally.sent_at[text]) * 1000)
        last = int(headers["X-Chat-Last-Given"])


async def newest_id(api: Api, auth: str, token: str) -> int:
    status, _, headers = await api.ocs("GET", f"{CHAT}/{token}", auth, params={"lookIntoFuture": 0, "limit": 1})
    return int(headers["X-Chat-Last-Given"]) if status == 200 else 0


@dataclass
class Phase:
    name: str
    server: Server
    started: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def __enter__(self) -> Phase:
        self.started = time.perf_counter()
        self.server_cpu = self.server.cpu_seconds()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.client_cpu = usage.ru_utime + usage.ru_stime
        return self

    def __exit__(self, *exc: object) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.elapsed = time.perf_counter() - self.started
        self.server_cpu = self.server.cpu_seconds() - self.server_cpu
        self.client_cpu = usage.ru_utime + usage.ru_stime - self.client_cpu
        self.rss, self.peak_rss = self.server.memory_mb()

    def report(self, **figures: Any) -> dict[str, Any]:
        return {"phase": self.name, "seconds": round(self.elapsed, 2), "server_cpu_s": round(self.server_cpu, 2),
                "client_cpu_s": round(self.client_cpu, 2), "server_rss_mb": round(self.rss, 1),
                "server_peak_rss_mb": round(self.peak_rss, 1), **figures}


def latency_figures(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 1), "p95_ms": round(percentile(values, 95), 1),
            "p99_ms": round(percentile(values, 99), 1)}


async def phase_send(api: Api, server: Server, users: list[str], senders: int, messages: int,
                     duration: float) -> dict[str, Any]:
    token = await api.room(users[0], [name_of(u) for u in users[1:senders]], "send bench")
    latencies: list[float] = []
    budget = [messages]
    deadline = time.monotonic() + duration

    async def sender(auth: str, index: int) -> None:
        seq = 0
        while budget[0] > 0 and time.monotonic() < deadline:
            budget[0] -= 1
            seq += 1
            started = time.perf_counter()
            status, _, _ = await api.ocs("POST", f"{CHAT}/{token}", auth, json={"message": f"s{index}-{seq}"})
            if status != 201:
                raise RuntimeError(f"send got HTTP {status}")
            latencies.append((time.perf_counter() - started) * 1000)

    with Phase(f"send S={senders}", server) as phase:
        await asyncio.gather(*(sender(users[i % len(users)], i) for i in range(senders)))
    return phase.report(messages=len(latencies), per_second=round(len(latencies) / phase.elapsed, 1),
                        **latency_figures(latencies))


NAMES: dict[str, str] = {}


def name_of(auth: str) -> str:
    return NAMES[auth]


async def phase_fanout(api: Api, server: Server, users: list[str], receivers: int, rate: float,
                       duration: float) -> dict[str, Any]:
    owner = users[0]
    members = sorted({name_of(u) for u in users[1:]})
    token = await api.room(owner, members, f"fanout {receivers}")
    start_id = await newest_id(api, owner, token)
    tally = Tally(seen=[[] for _ in range(receivers)])
    stop = asyncio.Event()
    deadline = time.monotonic() + duration + 30
    tasks = [asyncio.create_task(receiver(api, users[1 + i % (len(users) - 1)], token, start_id, tally, i, stop,
                                          deadline)) for i in range(receivers)]
    await asyncio.sleep(min(5.0, 0.5 + receivers / 200))  # let every receiver reach its long poll
    count = max(1, int(rate * duration))
    with Phase(f"fanout R={receivers} @{rate}/s", server) as phase:
        for seq in range(count):
            text = f"f{receivers}-{seq}"
            tally.sent_at[text] = time.perf_counter()
            status, _, _ = await api.ocs("POST", f"{CHAT}/{token}", owner, json={"message": text})
            if status != 201:
                raise RuntimeError(f"send got HTTP {status}")
            await asyncio.sleep(1 / rate)
        settle = time.monotonic() + 10
        while time.monotonic() < settle and sum(len(s) for s in tally.seen) < receivers * count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lost, duplicated = tally.lost_and_duplicated({})
    return phase.report(messages=count, receivers=receivers, deliveries=len(tally.latencies), lost=lost,
                        duplicated=duplicated, **latency_figures(tally.latencies))


async def phase_pairs(api: Api, server: Server, users: list[str], pairs: int, duration: float) -> dict[str, Any]:
    rooms = []
    for index in range(pairs):
        a, b = users[(2 * index) % len(users)], users[(2 * index + 1) % len(users)]
        rooms.append((a, b, await api.room(a, [name_of(b)], f"pair {index}")))
    starts = await asyncio.gather(*(newest_id(api, a, token) for a, _, token in rooms))
    tally = Tally(seen=[[] for _ in range(pairs)])
    expected: dict[int, set[str]] = {i: set() for i in range(pairs)}
    stop = asyncio.Event()
    deadline = time.monotonic() + duration + 30
    receivers = [asyncio.create_task(receiver(api, b, token, starts[i], tally, i, stop, deadline))
                 for i, (_, b, token) in enumerate(rooms)]
    await asyncio.sleep(min(5.0, 0.5 + pairs / 200))
    send_latencies: list[float] = []
    send_deadline = time.monotonic() + duration

    async def sender(index: int, auth: str, token: str) -> None:
        seq = 0
        while time.monotonic() < send_deadline:
            seq += 1
            text = f"p{index}-{seq}"
            tally.sent_at[text] = started = time.perf_counter()
            expected[index].add(text)
            status, _, _ = await api.ocs("POST", f"{CHAT}/{token}", auth, json={"message": text})
            if status != 201:
                raise RuntimeError(f"send got HTTP {status}")
            send_latencies.append((time.perf_counter() - started) * 1000)

    with Phase(f"pairs K={pairs}", server) as phase:
        await asyncio.gather(*(sender(i, a, token) for i, (a, _, token) in enumerate(rooms)))
        total = sum(len(e) for e in expected.values())
        settle = time.monotonic() + 10
        while time.monotonic() < settle and sum(len(s) for s in tally.seen) < total:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    stop.set()
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    lost, duplicated = tally.lost_and_duplicated(expected)
    sent = len(send_latencies)
    return phase.report(messages=sent, per_second=round(sent / duration, 1), lost=lost, duplicated=duplicated,
                        send_p99_ms=round(percentile(send_latencies, 99), 1), **latency_figures(tally.latencies))


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    async with talkd_server(args.database_url) as server:
        connector = TCPConnector(limit=0, limit_per_host=0)
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=120)) as session:
            api = Api(session, server.base)
            needed = max(args.senders, 2 * args.pairs if args.pairs else 0, args.users)
            count = min(needed, args.users)
            print(f"creating {count} users (argon2 once each)...", file=sys.stderr, flush=True)
            users = []
            for index in range(count):
                name = f"u{index:04d}"
                auth = await api.user(name)
                NAMES[auth] = name
                users.append(auth)
            if args.senders:
                print("send...", file=sys.stderr, flush=True)
                results.append(await phase_send(api, server, users, args.senders, args.messages, args.duration))
            for receivers in args.receivers:
                rate = args.rate if receivers >= 1000 else args.rate_small
                print(f"fanout R={receivers}...", file=sys.stderr, flush=True)
                results.append(await phase_fanout(api, server, users, receivers, rate, args.fanout_seconds))
            if args.pairs:
                print(f"pairs K={args.pairs}...", file=sys.stderr, flush=True)
                results.append(await phase_pairs(api, server, users, args.pairs, args.duration))
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    columns = ["phase", "messages", "per_second", "p50_ms", "p95_ms", "p99_ms", "lost", "duplicated",
               "server_cpu_s", "client_cpu_s", "server_rss_mb", "server_peak_rss_mb", "seconds"]
    print(" | ".join(columns))
    for row in results:
        print(" | ".join(str(row.get(c, "")) for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; default: SQLite in a temp dir")
    parser.add_argument("--users", type=int, default=64, help="accounts to create (shared by the phases)")
    parser.add_argument("--senders", type=int, default=32, help="S: concurrent senders (0 skips the phase)")
    parser.add_argument("--messages", type=int, default=20000, help="message budget of the send phase")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the send and pairs phases")
    parser.add_argument("--receivers", type=int, nargs="*", default=[10, 100, 1000], help="R values for fanout")
    parser.add_argument("--rate", type=float, default=2.0, help="fanout messages/s with 1000+ receivers")
    parser.add_argument("--rate-small", type=float, default=10.0, help="fanout messages/s with fewer receivers")
    parser.add_argument("--fanout-seconds", type=float, default=10.0, help="seconds the fanout sender posts")
    parser.add_argument("--pairs", type=int, default=500, help="K: two-person conversations (0 skips)")
    parser.add_argument("--quick", action="store_true", help="small run: S=4, R=10, K=10, 3 s")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chat.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.senders, args.messages, args.duration = 12, 4, 200, 3.0
        args.receivers, args.pairs, args.fanout_seconds = [10], 5, 2.0
    for name in ("users", "senders", "pairs"):
        if not 0 <= getattr(args, name) <= 5000:
            parser.error(f"--{name} must be between 0 and 5000")
    if not 0 < args.duration <= 300 or not 0 < args.fanout_seconds <= 300:
        parser.error("durations must be between 0 and 300 seconds")
    args.users = max(args.users, 2)
    _raise_file_limit()
    results = asyncio.run(run(args))
    print_table(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "database": args.database_url or "sqlite", "results": results}, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
