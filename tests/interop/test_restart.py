"""A real talkd process killed with SIGKILL and started again on the same data dir keeps everything:
accounts, app passwords, the first admin (not created twice), the server secret, and the secrets that let
Spreed WebRTC clients resume their sessions."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.client import basic
from tests.helpers.server import RunningTalkd, running_talkd
from tests.helpers.spreed import SpreedSocket, authentication, rest

pytestmark = pytest.mark.interop

OCS = {"OCS-APIRequest": "true", "Accept": "application/json"}
GENERATED = re.compile(r"created admin user 'admin' with password: (\S+)")


async def whoami(session: aiohttp.ClientSession, server: RunningTalkd, user: str, password: str) -> tuple[int, str]:
    async with session.get(f"{server.base_url}/ocs/v2.php/cloud/user",
                           headers={**OCS, "Authorization": basic(user, password)}) as response:
        body = await response.json(content_type=None)
        return response.status, (body["ocs"]["data"] or {}).get("id", "") if response.status == 200 else ""


def starts(server: RunningTalkd) -> list[str]:
    """The output of each start, in order."""
    return server.output().split("--- start: ")[1:]


async def test_state_survives_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # No admin password configured: the first start generates one and prints it once.
    async with running_talkd(data_dir, admin_password="") as server:
        first = starts(server)
        assert len(first) == 1
        found = GENERATED.search(first[0])
        assert found, first[0]
        admin_password = found.group(1)
        secret_file = data_dir / "secret"
        secret = secret_file.read_text()
        assert len(secret.strip()) >= 32 and (secret_file.stat().st_mode & 0o777) == 0o600

        async with aiohttp.ClientSession() as session:
            assert await whoami(session, server, "admin", admin_password) == (200, "admin")
            async with session.post(f"{server.base_url}/ocs/v2.php/cloud/users",
                                    headers={**OCS, "Authorization": basic("admin", admin_password)},
                                    data={"userid": "alice", "password": "alice long passphrase",
                                          "displayName": "Alice"}) as response:
                assert response.status == 200, await response.text()
            async with session.get(f"{server.base_url}/ocs/v2.php/core/getapppassword",
                                   headers={**OCS, "Authorization": basic("alice", "alice long passphrase")}
                                   ) as response:
                assert response.status == 200, await response.text()
                app_password = (await response.json())["ocs"]["data"]["apppassword"]
            assert await whoami(session, server, "alice", app_password) == (200, "alice")

        # No shutdown code runs: whatever was acknowledged must already be on disk.
        assert await asyncio.to_thread(server.kill, signal.SIGKILL) == -signal.SIGKILL
        await asyncio.to_thread(server.start)

        second = starts(server)
        assert len(second) == 2
        assert "created admin user" not in second[1], second[1]
        assert secret_file.read_text() == secret
        assert sorted(p.name for p in data_dir.iterdir() if "secret" in p.name) == \
            ["secret", "webrtc-encryption-secret", "webrtc-session-secret"]

        async with aiohttp.ClientSession() as session:
            assert await whoami(session, server, "admin", admin_password) == (200, "admin")
            assert await whoami(session, server, "alice", "alice long passphrase") == (200, "alice")
            # App passwords are HMACs under the server secret: this also proves the secret was reused.
            assert await whoami(session, server, "alice", app_password) == (200, "alice")
            assert (await whoami(session, server, "alice", "wrong passphrase"))[0] == 401
            async with session.get(f"{server.base_url}/ocs/v2.php/cloud/users",
                                   headers={**OCS, "Authorization": basic("admin", admin_password)}) as response:
                assert (await response.json())["ocs"]["data"]["users"] == ["admin", "alice"]


async def test_configured_admin_password_is_not_reapplied_on_restart(tmp_path: Path) -> None:
    """TALKD_ADMIN_PASSWORD only seeds the first admin: a later start with another value changes nothing."""
    data_dir = tmp_path / "data"
    async with running_talkd(data_dir, admin_password="first admin passphrase") as server:
        assert "created admin user 'admin'" in starts(server)[0]
        assert "with password" not in starts(server)[0]  # a configured password is never printed
        await asyncio.to_thread(server.kill, signal.SIGKILL)
        server.admin_password = "second admin passphrase"
        await asyncio.to_thread(server.start)
        assert "created admin user" not in starts(server)[1]
        async with aiohttp.ClientSession() as session:
            assert await whoami(session, server, "admin", "first admin passphrase") == (200, "admin")
            assert (await whoami(session, server, "admin", "second admin passphrase"))[0] == 401


async def test_a_spreed_session_resumes_with_its_token_after_sigkill(tmp_path: Path) -> None:
    """Spreed sessions live in memory, but their Token is sealed with the secrets kept in the data dir: after a
    kill and restart the client reconnects with `?t=` and is the same session and user again, as the original
    server's clients expect after a server restart."""
    env = {"TALKD_WEBRTC_USERS_MODE": "sharedsecret", "TALKD_WEBRTC_SHAREDSECRET": "restart shared secret"}
    async with running_talkd(tmp_path / "data", extra_env=env) as server, aiohttp.ClientSession(
            base_url=server.base_url) as http:
        socket = await SpreedSocket.open(http)
        combo = f"{int(time.time()) + 3600}:carol"
        secret = base64.b64encode(hmac.new(b"restart shared secret", combo.encode(), hashlib.sha256).digest())
        login = await rest(http, "PATCH", f"/api/v1/sessions/{socket.id}/", {
            "id": socket.id, "sid": socket.me["Sid"], "useridcombo": combo, "secret": secret.decode()})
        me = (await socket.request("Authentication", authentication("carol", login["nonce"])))["Data"]
        assert me["Userid"] == "carol"

        assert await asyncio.to_thread(server.kill, signal.SIGKILL) == -signal.SIGKILL
        await asyncio.to_thread(server.start)

        resumed = await SpreedSocket.open(http, me["Token"])
        assert (resumed.id, resumed.me["Sid"], resumed.me["Userid"], resumed.me["Suserid"]) == (
            socket.id, socket.me["Sid"], "carol", me["Suserid"])
        fresh = await SpreedSocket.open(http, "not a token")  # an undecodable token: a new anonymous session
        assert fresh.id != socket.id and fresh.me["Userid"] == ""
        await resumed.close()
        await fresh.close()
