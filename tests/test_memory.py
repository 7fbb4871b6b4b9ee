"""Bounds that keep a long-running server's RSS flat (see docs/performance.md, "Soak")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from talkd import memory
from talkd.storage.database import Database

ROOT = Path(__file__).resolve().parent.parent

# Eight threads allocate at the same time, then the process counts glibc's arenas (malloc_info's heaps).
ARENA_PROBE = textwrap.dedent("""
    import ctypes, sys, tempfile, threading
    from talkd import memory
    if sys.argv[1] == "limit":
        assert memory.limit_malloc_arenas(2)
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    barrier = threading.Barrier(8)
    def allocate():
        barrier.wait()
        libc.malloc(1000)
        barrier.wait()  # all alive together: no thread hands its arena on to another
    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    with tempfile.NamedTemporaryFile() as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        print(open(out.name).read().count("<heap nr="))
""")


def arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", ARENA_PROBE, mode], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux") or memory._glibc() is None, reason="glibc only")
def test_malloc_arenas_are_limited_for_all_threads() -> None:
    assert arenas("default") > 2  # the probe does see glibc's arena per thread
    assert arenas("limit") <= 2


@pytest.mark.skipif(bool(os.environ.get("TALKD_TEST_DATABASE_URL")), reason="SQLite's page cache")
async def test_sqlite_page_cache_is_bounded_per_connection(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'talkd.db'}")
    try:
        async with db.read() as conn:
            reader = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
        async with db.transaction("probe") as conn:
            writer = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    finally:
        await db.close()
    # Negative values are KiB: at most 512 KiB for each of the pool's many readers, 2 MiB for the writer.
    assert -512 <= reader < 0
    assert -2048 <= writer < 0
