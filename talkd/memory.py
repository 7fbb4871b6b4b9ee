"""Keep a long-running server's RSS flat: settings for glibc's malloc (elsewhere these are no-ops).

Each SQLite connection runs in a thread of its own (aiosqlite), and glibc gives every thread that
allocates its own malloc arena, up to eight per core. Memory freed in one arena is kept there for
that arena's later use, so a pool of threads each with a page cache that fills and empties leaves
tens of MiB free but held across many arenas: a soak of mixed chat load grew RSS with no growth of
Python's heap (see docs/performance.md, "Soak")."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # from glibc's malloc.h
MALLOC_ARENAS = 2


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 -- raises AttributeError on other C libraries
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let all threads share at most `arenas` malloc arenas (call at start, before threads allocate).
    An explicit MALLOC_ARENA_MAX in the environment wins. True if the limit was set."""
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))

