"""External programs that tests start (coturn, nats-server)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable

import pytest

# Debian installs daemons such as nats-server in /usr/sbin, which an ordinary user's PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def require_binaries(*names: str, package: str) -> list[str]:
    """The binaries' paths. Skip when one is missing, except in CI (CI=true), where that is a failure."""
    found = {name: shutil.which(name, path=SEARCH_PATH) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        return [path for path in found.values() if path is not None]
    reason = f"{', '.join(missing)} not installed (Debian package {package})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run this test", pytrace=False)
    pytest.skip(reason)


async def wait_listening(process: asyncio.subprocess.Process, port: int, *, name: str, timeout: float,
                         log: Callable[[], str] = str) -> None:
    """Until the started `process` accepts TCP connections on 127.0.0.1:`port`. Raises (with the tail of
    `log()`) when it exits first or does not listen within `timeout` seconds."""
    for _ in range(int(timeout / 0.05)):
        if process.returncode is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log()[-2000:]}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"{name} did not listen within {timeout}s:\n{log()[-2000:]}")
