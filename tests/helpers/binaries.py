"""External programs that tests start (coturn, nats-server)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binaries(*names: str, package: str) -> None:
    """Skip when a binary is missing, except in CI (CI=true), where a missing one is a failure."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (Debian package {package})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run this test", pytrace=False)
    pytest.skip(reason)
