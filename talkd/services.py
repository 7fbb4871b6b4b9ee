"""The container of long-lived objects that routes reach through `request.app[SERVICES]`.
Built once by app.build_services (the composition root); features add their services here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from talkd.bus.base import EventBus
from talkd.capabilities import Capabilities
from talkd.clock import Clock
from talkd.config import Settings
from talkd.domain.accounts import AccountService
from talkd.domain.auth import Authenticator, Identity, WebSessions
from talkd.domain.calls import CallService
from talkd.domain.chat import ChatService
from talkd.domain.login_flow import LoginFlows
from talkd.domain.participants import ParticipantService
from talkd.domain.rooms import ConversationService
from talkd.domain.signaling import SignalingService
from talkd.domain.signaling_settings import SignalingSettingsService
from talkd.domain.throttle import Throttle
from talkd.ids import RoomToken
from talkd.spreed.service import SpreedService
from talkd.storage.database import Database

# The conversation `token` names, when this caller may see it (Talk's getRoomForUserByToken), else None.
# Routes that only need to know that (signaling settings) ask this; build_services wires it to the
# conversation service, and tests may swap it.
RoomLookup = Callable[[RoomToken, Identity], Awaitable[object | None]]


async def no_rooms(token: RoomToken, identity: Identity) -> object | None:
    """A lookup that knows no conversation (for services built without one)."""
    return None


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    bus: EventBus
    accounts: AccountService
    auth: Authenticator
    throttle: Throttle
    web_sessions: WebSessions
    login_flows: LoginFlows
    capabilities: Capabilities
    secret: bytes
    spreed: SpreedService
    signaling_settings: SignalingSettingsService
    conversations: ConversationService
    participants: ParticipantService
    chat: ChatService
    calls: CallService
    signaling: SignalingService
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    room_lookup: RoomLookup = field(default=no_rooms)


SERVICES = web.AppKey("services", Services)
