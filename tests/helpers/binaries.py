"""External programs that tests start (coturn, nats-server)."""

from __future__ import annotations

import os
import shutil

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
