"""Soak test: a real `python -m talkd serve` (SQLite in a temp dir by default) under a bounded mixed load
for --duration seconds, with the server's memory sampled from /proc. It answers one question: does the
server's RSS level off, or keep growing?

The load, all on loopback, every loop bounded by count and by the deadline:
  pollers   --pollers clients long-poll the chat of the soak conversations (timeout 10 s)
  sender    --rate chat messages per second, spread over the conversations and users
  lists     --list-rate room list reads per second (GET .../room)
  joins     --join-rate join + leave pairs per second (POST/DELETE .../participants/active)
  logins    one password login (GET /cloud/user with the account password) every --login-every seconds

Each soak user logs in once at set-up (one argon2 check, an app password) and reuses that credential;
loopback is on the server's throttle allowlist (unless --throttle), so the login throttle is not what
is measured (every poller re-checking its cached credential when the cache expires must not get 429).

Every --sample seconds the server's VmRSS is read, with the split of /proc/<pid>/smaps into the main
heap ([heap]), other anonymous memory (malloc's thread arenas, Python's arenas, stacks) and file-backed
pages. Prints a table (one row per --table-every seconds), then a summary: RSS at 5 minutes and at the
end (each the median of a minute of samples, so one sample landing in a password check's 64 MiB argon2
buffer does not decide it), growth after the first 5 minutes in %, request counts and error counts. Any
status other than the expected ones is an error and printed. Writes bench/results/soak.json.

  python -m bench.soak --help
  python -m bench.soak --duration 3600       # the 1-hour soak of docs/performance.md
  python -m bench.soak --duration 60         # a short check that it works
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from bench.auth import ADMIN_PASSWORD, basic, bounded, talkd_subprocess
from bench.chat import CHAT, HEADERS, OCS, ROOM, _raise_file_limit

ROOT = Path(__file__).resolve().parent.parent
ADMIN = basic("admin", ADMIN_PASSWORD)
WARMUP = 300.0  # growth is measured from here: the first minutes fill caches and pools
WINDOW = 60.0  # the RSS at a moment is the median of the samples of this many seconds around it
MAX_DURATION = 4 * 3600.0
MAX_ERRORS_SHOWN = 20
WORDS = ("soak", "talk", "message", "lorem", "ipsum", "dolor", "sit", "amet", "meeting", "office", "coffee",
         "release", "review", "ok", "thanks", "see", "you", "tomorrow", "🙂", "ünïcödé")


# With --malloc-stats this becomes the server's sitecustomize: a daemon thread appends, every few
# seconds, what only the process itself can see, to tell Python's heap from malloc's and SQLite's.
PROBE = '''
import ctypes, json, os, sys, threading, time

class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

def _probe(path, every):
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    sqlite = ctypes.CDLL("libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
    while True:
        info = libc.mallinfo2()
        figures = {"python_blocks": sys.getallocatedblocks(), "malloc_used": info.uordblks + info.hblkhd,
                   "malloc_free": info.fordblks, "sqlite": sqlite.sqlite3_memory_used(),
                   "sqlite_peak": sqlite.sqlite3_memory_highwater(0)}
        with open(path, "a") as out:
            out.write(json.dumps(figures) + "\\n")
        time.sleep(every)

if os.environ.get("SOAK_PROBE_FILE"):
    threading.Thread(target=_probe, args=(os.environ["SOAK_PROBE_FILE"], float(os.environ["SOAK_PROBE_SECONDS"])),
                     daemon=True, name="soak-probe").start()
'''


def last_probe(path: Path | None) -> dict[str, int] | None:
    if path is None or not path.exists():
        return None
    lines = path.read_text().splitlines()
    return dict(json.loads(lines[-1])) if lines else None


def mib(kib: int) -> float:
    return kib / 1024


@dataclass
class Sample:
    seconds: float
    rss: float
    heap: float
    anon: float
    file: float
    threads: int
    requests: int
    probe: dict[str, int] | None = None


def memory(pid: int) -> tuple[float, float, float, float, int]:
    """(VmRSS, [heap] RSS, other anonymous RSS, file-backed RSS) in MiB, and the thread count."""
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key == "VmRSS":
            rss = int(rest.split()[0])
        elif key == "Threads":
            threads = int(rest.split()[0])
    heap = anon = file = 0
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        first = line.split(maxsplit=5)
        if "-" in first[0] and not first[0].endswith(":"):
            name = first[5] if len(first) > 5 else ""
        elif first[0] == "Rss:":
            kib = int(first[1])
            if name == "[heap]":
                heap += kib
            elif name == "" or name.startswith("[stack") or name.startswith("[anon"):
                anon += kib
            else:
                file += kib
    return mib(rss), mib(heap), mib(anon), mib(file), threads


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    shown: list[str] = field(default_factory=list)
    skipped: int = 0  # paced requests not sent because too many were still in flight (not errors)

    def error(self, kind: str, text: str) -> None:
        self.errors[kind] += 1
        if len(self.shown) < MAX_ERRORS_SHOWN:
            self.shown.append(f"{kind}: {text}")
            print(f"error {kind}: {text}", file=sys.stderr, flush=True)


class Load:
    def __init__(self, session: ClientSession, base: str, tally: Tally, deadline: float) -> None:
        self.session = session
        self.base = base
        self.tally = tally
        self.deadline = deadline

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def call(self, kind: str, expected: tuple[int, ...], method: str, path: str, auth: str,
                   **kwargs: Any) -> tuple[int, Any, Any]:
        """One request; an unexpected status or a failure counts as an error of `kind`."""
        self.tally.requests[kind] += 1
        try:
            async with self.session.request(method, self.base + path, headers={**HEADERS, "Authorization": auth},
                                            **kwargs) as response:
                body = await response.read()
                if response.status not in expected:
                    self.tally.error(kind, f"{method} {path} -> HTTP {response.status} {body[:200]!r}")
                    return response.status, None, response.headers
                data = json.loads(body)["ocs"]["data"] if body else None
                return response.status, data, response.headers
        except (ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
            self.tally.error(kind, f"{method} {path} -> {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.5)  # a failing server must not turn this into a busy loop
            return 0, None, None

    async def paced(self, rate: float, step: Callable[[int], Coroutine[Any, Any, None]]) -> None:
        """`step(n)` at `rate` per second (several in flight when the server is slow), until the deadline."""
        if rate <= 0:
            return
        started = time.monotonic()
        in_flight: set[asyncio.Task[None]] = set()
        limit = int(rate * (self.deadline - started)) + 1
        for n in range(limit):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self.running():
                break
            if len(in_flight) >= max(8, int(rate * 5)):  # the server is far behind: skip rather than pile up
                self.tally.skipped += 1
                continue
            task = asyncio.create_task(step(n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)


async def make_user(load: Load, name: str) -> tuple[str, str]:
    """The user, logged in once: (app-password credential for the load, account-password credential)."""
    password = f"{name} soak passphrase"
    status, _, _ = await load.call("setup", (200,), "POST", "/ocs/v1.php/cloud/users", ADMIN,
                                   data={"userid": name, "password": password})
    if status != 200:
        raise RuntimeError(f"creating {name} failed")
    status, data, _ = await load.call("setup", (200,), "GET", f"{OCS}/core/getapppassword", basic(name, password))
    if status != 200:
        raise RuntimeError(f"app password of {name} failed")
    return basic(name, data["apppassword"]), basic(name, password)


async def make_room(load: Load, owner: str, members: list[str], name: str) -> str:
    status, data, _ = await load.call("setup", (201,), "POST", ROOM, owner, json={"roomType": 2, "roomName": name})
    if status != 201:
        raise RuntimeError("creating a room failed")
    token = str(data["token"])
    for member in members:
        status, _, _ = await load.call("setup", (200,), "POST", f"{ROOM}/{token}/participants", owner,
                                       json={"newParticipant": member, "source": "users"})
        if status != 200:
            raise RuntimeError("adding a participant failed")
    return token


def text(rng: random.Random, n: int) -> str:
    return f"#{n} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60)))


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    # Loopback is exempt from the login throttle unless --throttle: the soak measures memory, and every
    # client re-checking its cached credential at once must not turn into 429s.
    env = {} if args.throttle else {"TALKD_SECURITY_BRUTEFORCE_ALLOWLIST": "127.0.0.1/32"}
    probe_dir = Path(tempfile.mkdtemp(prefix="talkd-soak-")) if args.malloc_stats else None
    probe_file = probe_dir / "probe.jsonl" if probe_dir else None
    if probe_dir is not None:
        (probe_dir / "sitecustomize.py").write_text(PROBE)
        env.update(PYTHONPATH=f"{probe_dir}:{ROOT}", SOAK_PROBE_FILE=str(probe_file),
                   SOAK_PROBE_SECONDS=str(args.sample))
    env.update(item.split("=", 1) for item in args.server_env)
    try:
        return await _soak(args, env, probe_file)
    finally:
        if probe_dir is not None:
            shutil.rmtree(probe_dir, ignore_errors=True)


async def _soak(args: argparse.Namespace, env: dict[str, str], probe_file: Path | None) -> dict[str, Any]:
    tally = Tally()
    samples: list[Sample] = []
    rng = random.Random(11)
    async with talkd_subprocess(args.database_url, env, preexec=_raise_file_limit) as (base, pid), \
            ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=60)) as session:
        setup = Load(session, base, tally, time.monotonic() + 600)
        print(f"talkd pid {pid}; creating {args.users} users and {args.rooms} conversations...",
              file=sys.stderr, flush=True)
        users = [await make_user(setup, f"soak{i:03d}") for i in range(args.users)]
        names = [f"soak{i:03d}" for i in range(args.users)]
        rooms = [await make_room(setup, users[r % len(users)][0], [n for i, n in enumerate(names)
                                                                    if i != r % len(users)], f"soak {r}")
                 for r in range(args.rooms)]
        for auth, _password in users:  # first use of each app password one at a time, as set-up
            await setup.call("setup", (200,), "GET", f"{OCS}/cloud/user", auth)
        started = time.monotonic()
        load = Load(session, base, tally, started + args.duration)

        async def poller(index: int) -> None:
            auth = users[index % len(users)][0]
            token = rooms[(index + index // len(users)) % len(rooms)]
            last = 0
            for _ in range(int(args.duration * 50) + 10):  # bounded: far more than the sender can cause
                if not load.running():
                    return
                params = {"lookIntoFuture": 1, "lastKnownMessageId": last, "timeout": 10, "limit": 100,
                          "setReadMarker": 1}
                status, _, headers = await load.call("poll", (200, 304), "GET", f"{CHAT}/{token}", auth,
                                                     params=params)
                if status == 200:
                    last = int(headers["X-Chat-Last-Given"])
                elif status != 304:
                    await asyncio.sleep(1)  # an error must not turn the poller into a busy loop

        async def send(n: int) -> None:
            await load.call("send", (201,), "POST", f"{CHAT}/{rooms[n % len(rooms)]}", users[n % len(users)][0],
                            json={"message": text(rng, n)})

        async def room_list(n: int) -> None:
            await load.call("room list", (200,), "GET", ROOM, users[n % len(users)][0])

        async def join_leave(n: int) -> None:
            auth, token = users[(7 * n) % len(users)][0], rooms[n % len(rooms)]
            status, _, _ = await load.call("join", (200,), "POST", f"{ROOM}/{token}/participants/active", auth)
            if status == 200:
                await load.call("leave", (200,), "DELETE", f"{ROOM}/{token}/participants/active", auth)

        async def login(n: int) -> None:
            await load.call("login", (200,), "GET", f"{OCS}/cloud/user", users[n % len(users)][1])

        async def sampler() -> None:
            next_row = 0.0
            for _ in range(int(args.duration / args.sample) + 2):
                at = time.monotonic() - started
                rss, heap, anon, file, threads = memory(pid)
                sample = Sample(round(at, 1), rss, heap, anon, file, threads, sum(tally.requests.values()),
                                last_probe(probe_file))
                samples.append(sample)
                if at >= next_row or not load.running():
                    print_row(sample, sum(tally.errors.values()))
                    next_row += args.table_every
                if not load.running():
                    return
                await asyncio.sleep(min(args.sample, max(0.0, load.deadline - time.monotonic())))

        print_header(probe_file is not None)
        await asyncio.gather(sampler(), *(poller(i) for i in range(args.pollers)),
                             load.paced(args.rate, send), load.paced(args.list_rate, room_list),
                             load.paced(args.join_rate, join_leave), load.paced(1 / args.login_every, login))
        final = memory(pid)
    return summary(args, samples, tally, final)


def print_header(probe: bool) -> None:
    extra = f" {'py blocks':>9} {'malloc used':>11} {'malloc free':>11} {'sqlite':>7} {'sqlite peak':>11}"
    print(f"{'seconds':>8} {'rss MiB':>8} {'heap':>7} {'anon':>7} {'file':>7} {'threads':>7} {'requests':>9} "
          f"{'errors':>6}" + (extra if probe else ""), flush=True)


def print_row(s: Sample, errors: int) -> None:
    extra = ""
    if s.probe is not None:
        p = {k: v / 2**20 for k, v in s.probe.items()}
        extra = (f" {s.probe['python_blocks']:>9} {p['malloc_used']:>11.1f} {p['malloc_free']:>11.1f} "
                 f"{p['sqlite']:>7.1f} {p['sqlite_peak']:>11.1f}")
    print(f"{s.seconds:>8.0f} {s.rss:>8.1f} {s.heap:>7.1f} {s.anon:>7.1f} {s.file:>7.1f} {s.threads:>7} "
          f"{s.requests:>9} {errors:>6}" + extra, flush=True)


def median_rss(samples: list[Sample], start: float, end: float) -> float:
    """The median RSS of the samples taken between `start` and `end` seconds: one sample can land in a
    password check's transient 64 MiB argon2 buffer, which says nothing about growth."""
    values = sorted(s.rss for s in samples if start <= s.seconds <= end) or [samples[-1].rss]
    return values[len(values) // 2]


def summary(args: argparse.Namespace, samples: list[Sample], tally: Tally,
            final: tuple[float, float, float, float, int]) -> dict[str, Any]:
    warmup = min(WARMUP, args.duration / 2)
    window = min(WINDOW, warmup)
    warm = median_rss(samples, warmup - window / 2, warmup + window / 2)
    end = median_rss(samples, args.duration - window, args.duration + 1)
    growth = (end - warm) / warm * 100 if warm else 0.0
    return {"duration_s": args.duration, "warmup_s": warmup, "window_s": window,
            "rss_start_mib": round(samples[0].rss, 1), "rss_warm_mib": round(warm, 1), "rss_end_mib": round(end, 1),
            "rss_last_sample_mib": round(samples[-1].rss, 1), "rss_peak_mib": round(max(s.rss for s in samples), 1),
            "growth_after_warmup_pct": round(growth, 1), "requests": dict(sorted(tally.requests.items())),
            "errors": dict(sorted(tally.errors.items())), "errors_shown": tally.shown, "skipped": tally.skipped,
            "samples": [[s.seconds, round(s.rss, 1), round(s.heap, 1), round(s.anon, 1), round(s.file, 1),
                         s.threads] + ([s.probe] if s.probe else []) for s in samples],
            "final": {"rss": round(final[0], 1), "heap": round(final[1], 1), "anon": round(final[2], 1),
                      "file": round(final[3], 1), "threads": final[4]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=bounded(float, 10, MAX_DURATION), default=600.0,
                        help="seconds of load (600)")
    parser.add_argument("--users", type=bounded(int, 2, 500), default=40, help="accounts (40)")
    parser.add_argument("--rooms", type=bounded(int, 1, 100), default=10,
                        help="group conversations, every user in each (10)")
    parser.add_argument("--pollers", type=bounded(int, 0, 2000), default=200, help="long-polling clients (200)")
    parser.add_argument("--rate", type=bounded(float, 0, 500), default=50.0, help="chat messages per second (50)")
    parser.add_argument("--list-rate", type=bounded(float, 0, 100), default=5.0, help="room lists per second (5)")
    parser.add_argument("--join-rate", type=bounded(float, 0, 100), default=2.0,
                        help="join+leave pairs per second (2)")
    parser.add_argument("--login-every", type=bounded(float, 1, 3600), default=20.0,
                        help="seconds between password logins (20)")
    parser.add_argument("--sample", type=bounded(float, 0.5, 60), default=5.0, help="seconds between RSS samples")
    parser.add_argument("--table-every", type=bounded(float, 1, 3600), default=60.0,
                        help="seconds between table rows (60)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    parser.add_argument("--malloc-stats", action="store_true",
                        help="also sample, inside the server (glibc, libsqlite3): Python's allocated blocks, "
                             "malloc's used and free bytes, SQLite's memory (MiB)")
    parser.add_argument("--throttle", action="store_true", help="keep the login throttle on for loopback")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL; default: SQLite in a temp dir")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    _raise_file_limit()
    result = asyncio.run(soak(args))
    print(f"RSS (median of {result['window_s']:.0f} s of samples) at {result['warmup_s']:.0f} s: "
          f"{result['rss_warm_mib']} MiB; at the end ({args.duration:.0f} s): {result['rss_end_mib']} MiB; "
          f"growth after warm-up: {result['growth_after_warmup_pct']:+.1f} %; peak {result['rss_peak_mib']} MiB")
    print("requests: " + ", ".join(f"{k} {v}" for k, v in result["requests"].items()))
    print("errors: " + (", ".join(f"{k} {v}" for k, v in result["errors"].items()) or "none")
          + f"; paced requests skipped because the server was behind: {result['skipped']}")
    for line in result["errors_shown"]:
        print("  " + line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "soak", "argv": sys.argv[1:] if argv is None else argv,
                                    "database": "postgresql" if args.database_url else "sqlite",
                                    "python": platform.python_version(), "machine": platform.machine(),
                                    **result}, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
