"""The channelling WebSocket (`<base>ws`, `?t=<token>` to resume): the transport around handlers.py.

A connection owns three loops: the reader (this request's task: size check, rate limit, decode, dispatch),
the writer (drains a bounded outbox to the socket) and the bus pumps (its session topic for the whole
connection, its room topic while in a room). Frames for other sessions never pass through here directly:
the service publishes them on the bus and each recipient's pump puts them in its own outbox.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from talkd.bus.base import Event, Subscription
from talkd.clock import Clock
from talkd.crypto import random_token
from talkd.errors import TalkdError
from talkd.protocol import spreed as p
from talkd.spreed.handlers import HANDLERS
from talkd.spreed.model import Session
from talkd.spreed.service import FRAME, NONCE_REQUEST, TAKEOVER, SpreedService, room_topic, session_topic

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 60.0         # the original drops a peer 60 s after its last read (pong or frame)
# aiohttp pings after PING_INTERVAL s without a read and closes when no pong follows within half that:
# a silent peer goes 40 + 20 = 60 s after its last read.
PING_INTERVAL = IDLE_TIMEOUT * 2 / 3
OUTBOX_LIMIT = 2048         # frames waiting for a slow client; beyond this new frames are dropped
RATE_PER_SECOND = 20        # inbound frames per sliding second; more are delayed, not dropped
HARD_FRAME_LIMIT = 4 * p.MAX_FRAME_BYTES  # larger frames close the socket (1009) unread


class RateLimiter:
    """At most `rate` events per sliding `window`; `delay()` says how long the next one must wait."""

    def __init__(self, clock: Clock, rate: int = RATE_PER_SECOND, window: float = 1.0) -> None:
        self._clock = clock
        self._rate = rate
        self._window = window
        self._times: collections.deque[float] = collections.deque()

    def delay(self) -> float:
        now = self._clock.monotonic()
        wait = 0.0
        if len(self._times) >= self._rate:
            wait = max(0.0, self._window - (now - self._times.popleft()))
        self._times.append(now + wait)  # the frame counts from when it is let through
        return wait


class Connection:
    def __init__(self, ws: web.WebSocketResponse, service: SpreedService) -> None:
        self.id = random_token(16)
        self.ws = ws
        self.service = service
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self.limiter = RateLimiter(service.clock)
        self.replaced = False
        self._session: Session | None = None
        self._room: tuple[str, Subscription, asyncio.Task[None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Subscription] = []

    async def _subscribe(self, name: str) -> Subscription:
        """A started subscription: a network bus has registered it with the server when this returns, so
        nothing published afterwards is missed."""
        subscription = self.service.bus.subscribe(name)
        await subscription.__aenter__()
        self._subscriptions.append(subscription)
        return subscription

    @property
    def session(self) -> Session:
        assert self._session is not None, "session is set before any frame is handled"
        return self._session

    # --- outgoing -------------------------------------------------------------------------------------

    def push(self, frame: dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(orjson.dumps(frame))
        except asyncio.QueueFull:
            log.warning("spreed outbox overflow, frame dropped", extra={"connection": self.id})

    def reply(self, data: Any, iid: str = "") -> None:
        """An answer to this client's own request: From is its own Id, the Iid is echoed."""
        self.push(p.outgoing(data, sender=self.session.id, iid=iid))

    async def _write(self) -> None:
        while True:
            payload = await self.outbox.get()
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(payload.decode())
            except (ConnectionError, RuntimeError):
                return  # the peer went away; the reader notices and cleans up

    # --- bus ------------------------------------------------------------------------------------------

    def _watch(self, subscription: Subscription) -> asyncio.Task[None]:
        return asyncio.create_task(self._pump(subscription), name=f"spreed-pump-{self.id}")

    async def _pump(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            if event is None:
                return
            await self._on_event(event)

    async def _on_event(self, event: Event) -> None:
        kind = event.get("type")
        if kind == FRAME and isinstance(event.get("frame"), dict):
            if event.get("skip") != self.session.id:
                self.push(event["frame"])
        elif kind == TAKEOVER and event.get("connection") != self.id:
            # A newer socket resumed this session: go quietly (no Left), as the original does.
            self.replaced = True
            await self.ws.close(message=b"session taken over")
        elif kind == NONCE_REQUEST:
            await self.service.answer_nonce_request(self.session, event)
        elif kind == "overflow":
            log.warning("spreed connection lagged behind the bus", extra={"connection": self.id})

    async def follow_room(self, room_id: str | None) -> None:
        """Receive the frames of `room_id` (None: of no room), from the moment this returns."""
        if self._room is not None:
            if self._room[0] == room_id:
                return
            _, subscription, task = self._room
            task.cancel()
            self._subscriptions.remove(subscription)
            await subscription.close()
            self._room = None
        if room_id is not None:
            subscription = await self._subscribe(room_topic(room_id))
            self._room = (room_id, subscription, self._watch(subscription))

    # --- incoming -------------------------------------------------------------------------------------

    async def serve(self, token: str, header_userid: str) -> None:
        service = self.service
        self._session = await service.connect(token, header_userid, self.id)
        personal = await self._subscribe(session_topic(self.session.id))
        self._tasks += [asyncio.create_task(self._write(), name=f"spreed-writer-{self.id}"), self._watch(personal)]
        self.reply(service.self_document(self.session))
        try:
            async for message in self.ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_text(message.data)
        finally:
            await self._close()

    async def _on_text(self, text: str) -> None:
        if len(text) > p.MAX_FRAME_BYTES or len(text.encode()) > p.MAX_FRAME_BYTES:
            log.info("spreed frame over 1 MiB dropped", extra={"connection": self.id})
            return
        wait = self.limiter.delay()
        if wait > 0:
            self.service.counters.throttled += 1
            await self.service.clock.sleep(wait)
        try:
            incoming = p.decode(text)
        except p.Ignored:
            return
        except p.ProtocolError as exc:
            if exc.reply:
                self.reply(p.error_document(exc.code, exc.message), exc.iid)
            return
        try:
            await HANDLERS[incoming.type](self, incoming.message, incoming.iid)
        except TalkdError as exc:
            self.reply(p.error_document(exc.reason, exc.message), incoming.iid)
        except Exception:
            log.exception("spreed handler failed", extra={"type": incoming.type})
            self.reply(p.error_document("unknown", "internal error"), incoming.iid)

    async def _close(self) -> None:
        tasks = self._tasks + ([self._room[2]] if self._room else [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self._subscriptions:
            await subscription.close()
        if self._session is not None:
            if self.replaced:
                await self.service.retire(self._session)
            else:
                await self.service.disconnect(self._session)


async def websocket(request: web.Request, service: SpreedService) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=PING_INTERVAL, max_msg_size=HARD_FRAME_LIMIT)
    await ws.prepare(request)
    header_userid = ""
    if service.settings.users_mode == "httpheader":
        header_userid = request.headers.get(service.settings.httpheader, "")[:p.MAX_NAME_LENGTH]
    await Connection(ws, service).serve(request.query.get("t", ""), header_userid)
    return ws
