"""SpreedSocket: a Spreed WebRTC channelling client over a real aiohttp WebSocket, for tests (against an
in-process TestClient, or a real server through a ClientSession with its base_url)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import ClientSession, ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from talkd.services import SERVICES

TIMEOUT = 5.0
_counter = itertools.count(1)


class SpreedSocket:
    def __init__(self, ws: ClientWebSocketResponse, self_frame: dict[str, Any]) -> None:
        self.ws = ws
        self.self_frame = self_frame
        self.backlog: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, client: TestClient | ClientSession, token: str = "", *, path: str = "/ws",
                   headers: dict[str, str] | None = None) -> SpreedSocket:
        params = {"t": token} if token else {}
        ws = await client.ws_connect(path, params=params, headers=headers or {})
        first = await ws.receive(timeout=TIMEOUT)
        assert first.type is WSMsgType.TEXT, first
        frame = orjson.loads(first.data)
        assert frame["Data"]["Type"] == "Self", frame
        return cls(ws, frame)

    @property
    def me(self) -> dict[str, Any]:
        return self.self_frame["Data"]  # type: ignore[no-any-return]

    @property
    def id(self) -> str:
        return str(self.me["Id"])

    async def send(self, kind: str, inner: Any = None, *, iid: str = "") -> None:
        frame: dict[str, Any] = {"Type": kind}
        if inner is not None:
            frame[kind] = inner
        if iid:
            frame["Iid"] = iid
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def recv(self, timeout: float | None = TIMEOUT) -> dict[str, Any]:
        """The next frame (from the backlog first); `timeout=None` waits for as long as it takes."""
        if self.backlog:
            return self.backlog.pop(0)
        message = await self.ws.receive(timeout=timeout)
        assert message.type is WSMsgType.TEXT, f"expected a text frame, got {message.type}: {message.data!r}"
        frame: dict[str, Any] = orjson.loads(message.data)
        return frame

    async def request(self, kind: str, inner: Any = None) -> dict[str, Any]:
        """Send with a fresh Iid and return the reply carrying it; other frames wait in the backlog."""
        iid = f"iid-{next(_counter)}"
        await self.send(kind, inner, iid=iid)
        return await self._until(lambda f: f.get("Iid") == iid)

    async def next_of(self, data_type: str) -> dict[str, Any]:
        """The next frame whose Data.Type is `data_type`; others wait in the backlog."""
        return await self._until(lambda f: isinstance(f.get("Data"), dict) and f["Data"].get("Type") == data_type)

    async def _until(self, match: Any) -> dict[str, Any]:
        for index, frame in enumerate(self.backlog):
            if match(frame):
                return self.backlog.pop(index)
        for _ in range(200):
            message = await self.ws.receive(timeout=TIMEOUT)
            assert message.type is WSMsgType.TEXT, f"socket ended: {message.type} {message.data!r}"
            frame = orjson.loads(message.data)
            if match(frame):
                return frame  # type: ignore[no-any-return]
            self.backlog.append(frame)
        raise AssertionError("no matching frame among 200")

    async def drain(self) -> list[dict[str, Any]]:
        """Everything addressed to this session before a marker it sends itself through the bus (a private
        Chat to its own Id travels the same session topic as any relay, so the order is guaranteed)."""
        marker = f"marker-{next(_counter)}"
        await self.send("Chat", {"To": self.id, "Type": "Chat", "Chat": {"Message": marker, "NoEcho": True}})
        frames = list(self.backlog)
        self.backlog.clear()
        for _ in range(200):
            message = await self.ws.receive(timeout=TIMEOUT)
            assert message.type is WSMsgType.TEXT, f"socket ended: {message.type}"
            frame = orjson.loads(message.data)
            data = frame.get("Data") or {}
            if data.get("Type") == "Chat" and (data.get("Chat") or {}).get("Message") == marker:
                return frames
            frames.append(frame)
        raise AssertionError("marker never came back")

    async def hello(self, room: str = "", *, ua: str = "test", pin: str | None = None,
                    room_type: str = "") -> dict[str, Any]:
        inner: dict[str, Any] = {"Version": "1.4", "Ua": ua, "Name": room, "Type": room_type}
        if pin is not None:
            inner["Credentials"] = {"PIN": pin}
        return await self.request("Hello", inner)

    async def close(self) -> None:
        await self.ws.close()


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = TIMEOUT) -> None:
    """Wait (bounded) until `check()` holds: for state that another task or node updates after the bus
    delivers an event. Fails naming `what` when it never does."""
    for _ in range(int(timeout / 0.01)):
        outcome = check()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def wait_closed(client: TestClient, session_id: str) -> None:
    """Wait until the server has finished closing a session whose socket we closed."""
    spreed = client.app[SERVICES].spreed
    await eventually(lambda: session_id not in spreed.sessions, f"session {session_id} unregistered")


def authentication(userid: str, nonce: str) -> dict[str, Any]:
    """The inner document of an Authentication frame."""
    return {"Type": "Authentication", "Authentication": {"Userid": userid, "Nonce": nonce}}


def error_code(frame: dict[str, Any]) -> str:
    """The Code of an Error reply (and that the frame is one)."""
    assert frame["Data"]["Type"] == "Error", frame
    return str(frame["Data"]["Code"])


async def rest(client: TestClient | ClientSession, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A JSON REST call that must succeed; its JSON answer."""
    async with client.request(method, path, json=body) as response:
        assert response.status == 200, await response.text()
        reply: dict[str, Any] = await response.json()
        return reply
