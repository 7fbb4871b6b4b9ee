"""Composition root: builds the database, bus, stores and services once, then the aiohttp app.

Start-up order: settings → secret → database (migrated) → bus → services → first admin → routes →
background tasks. Shutdown runs it backwards: tasks cancelled, bus closed, database closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from talkd import __version__
from talkd.api import nextcloud, spreed
from talkd.api.ocs import calls, chat, core, participants, rooms, signaling
from talkd.api.ocs.routing import unknown_ocs_route
from talkd.bus.base import EventBus
from talkd.bus.memory import MemoryBus
from talkd.bus.nats import NatsBus
from talkd.capabilities import Capabilities
from talkd.clock import Clock, SystemClock
from talkd.config import Settings, secret_bytes
from talkd.crypto import PasswordHashing, random_token
from talkd.domain.accounts import AccountService
from talkd.domain.auth import Authenticator, CredentialCache, Identity, WebSessions
from talkd.domain.calls import CallService
from talkd.domain.chat import ChatService
from talkd.domain.login_flow import LoginFlows
from talkd.domain.participants import ParticipantService
from talkd.domain.room_core import RoomCore
from talkd.domain.rooms import ConversationService
from talkd.domain.signaling import SignalingService
from talkd.domain.signaling_settings import SignalingSettingsService
from talkd.domain.throttle import Throttle
from talkd.ids import RoomToken
from talkd.log import quiet_malformed_requests
from talkd.mail import Mailer
from talkd.services import SERVICES, Services
from talkd.spreed.service import SpreedService
from talkd.spreed.tokens import Tickets
from talkd.storage import datadir, migrate
from talkd.storage.accounts import (
    AppPasswordStore,
    AuthFailureStore,
    GroupStore,
    LoginFlowStore,
    UserStore,
    WebSessionStore,
)
from talkd.storage.database import Database

log = logging.getLogger(__name__)

SECRET_FILE = "secret"
CLEANUP_INTERVAL = 600.0
FLUSH_INTERVAL = 1.0  # batched pings and read markers are written this often

# Capability names of seed 004 that the conversation and participant APIs implement, plus
# "conversation-v4": today's Talk apps pick the room API version by it and refuse servers without it.
CONVERSATION_FEATURES = (
    "empty-group-room", "guest-display-names", "multi-room-users", "favorites", "last-room-activity",
    "invite-by-mail", "notification-levels", "invite-group", "conversation-v4",
)
# The chat API: seed 004's names, and the names of today's additions the issue asks for.
CHAT_FEATURES = (
    "chat-v2", "system-messages", "mention-flag", "chat-reference-id", "chat-replies", "delete-messages",
    "chat-read-marker", "chat-unread", "reactions", "direct-mention-flag", "silent-send",
)
# Seed 004's call capabilities: calls with audio and video, guests signaling through the API, pings
# carried by signaling pulls (no ping endpoint), and participantFlags.
CALL_FEATURES = ("audio", "video", "guest-signaling", "no-ping", "in-call-flags")


def kept_secret(settings: Settings, filename: str, generate: Callable[[], str]) -> str:
    """A secret generated on first start and kept (0600) in the data dir under `filename`."""
    path = Path(settings.storage.data_dir) / filename
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=datadir.DIR_MODE, parents=True, exist_ok=True)
    value = generate()
    # O_EXCL: two processes starting together cannot overwrite each other's secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def load_secret(settings: Settings) -> bytes:
    """The configured secret, or one generated on first start and kept in the data dir."""
    if settings.security.secret:
        return settings.security.secret.encode()
    return kept_secret(settings, SECRET_FILE, lambda: random_token(64)).encode()


def build_spreed(settings: Settings, clock: Clock, bus: EventBus) -> SpreedService:
    """Spreed WebRTC's service; its session and encryption secrets default to ones kept in the data dir."""
    webrtc = settings.webrtc
    session_secret = webrtc.session_secret or kept_secret(settings, "webrtc-session-secret",
                                                          lambda: secrets.token_hex(32))
    encryption_secret = webrtc.encryption_secret or kept_secret(settings, "webrtc-encryption-secret",
                                                                lambda: secrets.token_hex(32))
    tickets = Tickets(secret_bytes(session_secret), secret_bytes(encryption_secret),
                      realm=f"{webrtc.realm}.{webrtc.server_token}")
    return SpreedService(webrtc, tickets, bus=bus, clock=clock, version=__version__)


async def build_services(settings: Settings, *, clock: Clock | None = None, bus: EventBus | None = None,
                         hashing: PasswordHashing | None = None, db: Database | None = None) -> Services:
    clock = clock or SystemClock()
    if bus is None:
        bus = await NatsBus.connect(settings.bus.url, prefix=settings.bus.prefix) if settings.bus.url else MemoryBus()
    hashing = hashing or PasswordHashing()
    secret = load_secret(settings)
    if db is None:
        db = Database(settings.database_url)
        await migrate.upgrade(db)
    accounts = AccountService(
        users=UserStore(db), groups=GroupStore(db), app_passwords=AppPasswordStore(db), hashing=hashing,
        bus=bus, clock=clock, secret=secret, max_display_name_length=settings.limits.max_display_name_length)
    throttle = Throttle(AuthFailureStore(db), settings.security, clock)
    cache = CredentialCache(secret, settings.security.credential_cache_seconds, clock)
    capabilities = Capabilities()
    capabilities.set_config("chat", "max-length", settings.limits.chat_max_length)
    core = RoomCore(db, bus, clock)
    conversations = ConversationService(core, accounts, hashing)
    participants = ParticipantService(core, accounts, hashing, throttle, Mailer(settings.mail, public_url(settings)),
                                      secret, settings.limits.max_display_name_length)
    accounts.user_deleted.append(participants.remove_deleted_user)
    signaling_config = settings.signaling
    calls_service = CallService(core, signaling_config.session_ping_timeout)
    signaling_service = SignalingService(core, internal=signaling_config.mode == "internal",
                                         pull_timeout=signaling_config.pull_timeout,
                                         max_payload_bytes=signaling_config.max_payload_bytes)
    services = Services(
        settings=settings, clock=clock, db=db, bus=bus, accounts=accounts,
        auth=Authenticator(accounts=accounts, throttle=throttle, cache=cache), throttle=throttle,
        web_sessions=WebSessions(WebSessionStore(db), clock, settings.security.web_session_ttl),
        login_flows=LoginFlows(LoginFlowStore(db), accounts, clock, settings.security.login_flow_ttl),
        capabilities=capabilities, secret=secret, spreed=build_spreed(settings, clock, bus),
        signaling_settings=SignalingSettingsService(settings.signaling, settings.stun, settings.turn,
                                                    secret=secret, clock=clock),
        conversations=conversations, participants=participants, calls=calls_service, signaling=signaling_service,
        chat=ChatService(core, accounts, settings.limits))

    async def room_lookup(token: RoomToken, identity: Identity) -> object | None:
        return await conversations.lookup(token, identity)

    services.room_lookup = room_lookup
    return services


def public_url(settings: Settings) -> str:
    """Where users reach this server: the configured base URL, else the listening address."""
    return settings.server.base_url or f"http://{settings.server.host}:{settings.server.port}"


async def _cleanup(services: Services) -> None:
    await services.web_sessions.expire()
    await services.login_flows.expire()
    await services.throttle.store.delete_older_than(
        services.clock.now() - services.settings.security.bruteforce_window)
    await services.signaling.expire_queue()


def expiry_interval(settings: Settings) -> float:
    """How often stale conversation sessions are looked for: a few times per timeout, so a vanished
    client leaves its call soon after the timeout (at most a third of it late)."""
    return max(1.0, settings.signaling.session_ping_timeout / 3)


async def _every(interval: float, job: Callable[[], Awaitable[object]], clock: Clock) -> None:
    while True:
        await clock.sleep(interval)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic job failed")


def create_app(services: Services) -> web.Application:
    """The aiohttp application with every route; `services` must already be built."""
    app = web.Application(client_max_size=services.settings.limits.max_body_bytes,
                          middlewares=[unknown_ocs_route])
    app[SERVICES] = services
    quiet_malformed_requests()
    app.add_routes(nextcloud.routes)
    core.router.install(app)
    if services.settings.webrtc.enabled:
        spreed.install(app, services.spreed)
    signaling.router.install(app)
    rooms.router.install(app)
    participants.router.install(app)
    chat.router.install(app)
    calls.router.install(app)
    services.capabilities.add_features(*CONVERSATION_FEATURES, *CHAT_FEATURES, *CALL_FEATURES)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_release_waiters)
    return app


async def _release_waiters(app: web.Application) -> None:
    """Shutdown, once no new connection is accepted: long polls and signaling pulls answer now, as on
    their timeout (chat: 304), instead of holding the stop for server.shutdown_timeout and then being
    cut off without an answer."""
    services = app[SERVICES]
    services.bus.release_waits()
    services.chat.watches.release()


async def _background(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    tasks = [
        asyncio.create_task(services.auth.follow_invalidations(services.bus), name="auth-invalidation"),
        asyncio.create_task(services.chat.follow_deletions(services.bus), name="chat-deletions"),
        asyncio.create_task(_every(CLEANUP_INTERVAL, lambda: _cleanup(services), services.clock), name="cleanup"),
        # Real time, not the services' clock: a batching interval, not a rule tests move through.
        asyncio.create_task(_every(FLUSH_INTERVAL, services.conversations.core.flush, SystemClock()),
                            name="flush-pings-and-read-markers"),
        asyncio.create_task(_every(expiry_interval(services.settings), services.calls.expire_sessions,
                                   services.clock), name="session-expiry"),
    ]
    if services.settings.webrtc.enabled:
        tasks.append(asyncio.create_task(services.spreed.directory.follow(), name="spreed-directory"))
    services.background.extend(tasks)
    await asyncio.sleep(0)  # let the subscriptions start before the first request
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await services.chat.watches.close()
    try:
        await services.conversations.core.flush()  # what the last interval batched
    except Exception:
        log.exception("final flush failed")


async def close_services(services: Services) -> None:
    await services.bus.close()
    await services.db.close()
