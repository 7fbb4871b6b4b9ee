"""TalkClient: drives talkd through its public HTTP API, as a real client would."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from talkd.services import Services


@dataclass
class OcsReply:
    http_status: int
    status_code: int  # meta.statuscode
    message: str
    data: Any
    headers: Any
    body: bytes
    version: int = 2

    @property
    def ok(self) -> bool:
        return 200 <= self.http_status < 300

    def expect(self, code: int) -> OcsReply:
        """Assert the status a route chose (200, 102, 403, 997...) as this OCS version carries it:
        v1 in meta.statuscode (100 for success) with HTTP 200 except 401; v2 in both, OCS-only codes
        mapped to HTTP. Returns self so a test can go on reading the reply."""
        if self.version == 1:
            wanted = (100 if code == 200 else code, 401 if code == 997 else 200)
        else:
            http = {997: 401, 998: 404, 996: 500, 999: 500}.get(code, code)
            wanted = (code, 400 if http < 200 or http > 600 else http)
        assert (self.status_code, self.http_status) == wanted, (self.message, self.data)
        return self


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TalkClient:
    def __init__(self, client: TestClient, services: Services) -> None:
        self.client = client
        self.services = services
        self.passwords: dict[str, str] = {"admin": "admin-password"}

    async def make_user(self, user_id: str, password: str | None = None, *, display_name: str = "",
                        admin: bool = False, groups: tuple[str, ...] = ()) -> str:
        """Create a user straight through the service (setup, not the behaviour under test)."""
        password = password or f"{user_id}-password"
        all_groups = groups + (("admin",) if admin else ())
        await self.services.accounts.create_user(user_id, password, display_name=display_name, groups=all_groups)
        self.passwords[user_id] = password
        return user_id

    async def ocs(self, method: str, path: str, *, user: str | None = None, password: str | None = None,
                  version: int = 2, params: dict[str, Any] | None = None, json: Any = None,
                  data: Any = None, headers: dict[str, str] | None = None, fmt: str = "json") -> OcsReply:
        """Call /ocs/v{version}.php{path}; `params` go in the query string, `json`/`data` in the body."""
        hdrs = {"OCS-APIRequest": "true"}
        if fmt == "json":
            hdrs["Accept"] = "application/json"
        if user is not None:
            hdrs["Authorization"] = basic(user, password if password is not None else self.passwords[user])
        hdrs.update(headers or {})
        kwargs: dict[str, Any] = {"headers": hdrs, "params": params or {}}
        if json is not None:
            kwargs["data"] = orjson.dumps(json)
            hdrs["Content-Type"] = "application/json"
        elif data is not None:
            kwargs["data"] = data
        async with self.client.request(method, f"/ocs/v{version}.php{path}", **kwargs) as response:
            body = await response.read()
            status_code, message, payload = 0, "", None
            if body and fmt == "json":
                ocs = orjson.loads(body)["ocs"]
                status_code, message, payload = ocs["meta"]["statuscode"], ocs["meta"]["message"], ocs["data"]
            return OcsReply(response.status, status_code, message, payload, response.headers, body, version)
