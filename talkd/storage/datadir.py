"""The data dir: its permissions, the lock one server holds on it, and whether an installation is there.

Everything in it is private to the server's user: the directory is 0700 and talkd's files 0600 (the
SQLite database and its -wal/-shm files hold password hashes and session tokens, like the secrets).
Installs made before this rule are tightened at start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

from talkd.errors import TalkdError

LOCK_FILE = "talkd.lock"
DIR_MODE = 0o700
FILE_MODE = 0o600


class DataDirError(TalkdError):
    """The data dir cannot be used; the message is one line for the operator."""

    reason = "data-dir"


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def prepare(data_dir: Path) -> None:
    """Create the data dir (0700) if missing and tighten what an older install left readable.
    Raises DataDirError when it cannot be created or written."""
    try:
        data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create data dir {str(data_dir)!r}: {_describe(exc)}") from None
    if not data_dir.is_dir():
        raise DataDirError(f"data dir {str(data_dir)!r} is not a directory")
    try:
        tighten(data_dir)
        # Writable? Ask the file system, not the mode bits (root, read-only mounts).
        probe = data_dir / ".talkd-write-test"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise DataDirError(f"data dir {str(data_dir)!r} is not writable: {_describe(exc)}") from None


def _ours(name: str) -> bool:
    """The files talkd keeps in a data dir (the database, its journals, the secrets, the lock); others
    are left as they are, in case the data dir was pointed at a directory that holds more."""
    return name.startswith("talkd.") or name.endswith("secret")


def tighten(data_dir: Path) -> None:
    """Directory 0700, talkd's files in it 0600."""
    if stat.S_IMODE(data_dir.stat().st_mode) != DIR_MODE:
        data_dir.chmod(DIR_MODE)
    for entry in os.scandir(data_dir):
        if _ours(entry.name) and entry.is_file(follow_symlinks=False) and stat.S_IMODE(entry.stat().st_mode) & 0o077:
            os.chmod(entry.path, FILE_MODE)


def create_private(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist, so that what opens it later (SQLite, which
    gives its -wal and -shm files the database's mode) never makes it readable by others."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


class DataDirLock:
    """An exclusive lock on the data dir, held for the life of the server process. The kernel drops it
    when the process ends however it ends, so a killed server never leaves a stale lock."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise DataDirError(f"cannot create {str(self.path)!r}: {_describe(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirError(f"another talkd (pid {holder or 'unknown'}) is already running on data dir "
                                   f"{str(self.path.parent)!r}") from None
            raise DataDirError(f"cannot lock {str(self.path)!r}: {_describe(exc)}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None
