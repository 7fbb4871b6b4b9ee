"""Talk's signaling API, v1..v3: the settings a client fetches before a call
(/apps/spreed/api/v{1,2,3}/signaling/settings) and internal signaling (/signaling/{token}: POST sends
messages to other sessions of the conversation, GET long-polls for the caller's)."""

from __future__ import annotations

from typing import Any

import orjson

from talkd.api.ocs.call_serializers import pulled_data
from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.api.ocs.serializers import signaling_settings_data
from talkd.domain.throttle import ThrottleAction
from talkd.errors import InvalidInput, RoomNotFound
from talkd.ids import RoomToken
from talkd.protocol.ocs import OcsResult

router = OcsRouter()

# Talk stores tokens in a 32-character column; anything longer cannot name a conversation.
MAX_TOKEN_LENGTH = 32


@router.get("/apps/spreed/api/{apiVersion:v[1-3]}/signaling/settings", access=Access.PUBLIC,
            bruteforce=ThrottleAction.ROOM_TOKEN)
async def signaling_settings(req: OcsRequest) -> Any:
    api_version = int(req.match("apiVersion")[1:])
    token = req.params.string("token", "", max_length=MAX_TOKEN_LENGTH)
    room = RoomToken(token) if token else None
    if room is None:
        # Talk answers a logged-in user without a conversation (older mobile apps); a guest gets
        # STUN/TURN credentials only for a conversation they may use, so talkd is no open relay.
        if req.identity.user is None:
            raise RoomNotFound("Conversation not found")
    elif await req.services.room_lookup(room, req.identity) is None:
        raise RoomNotFound("Conversation not found")
    config = req.services.signaling_settings.for_caller(req.identity.user_id, room)
    return signaling_settings_data(config, api_version)


# Declared after /signaling/settings, so "settings" is never taken for a conversation token.
SIGNALING = "/apps/spreed/api/{apiVersion:v[1-3]}/signaling/{token}"


@router.post(SIGNALING, access=Access.PUBLIC)
async def send_messages(req: OcsRequest) -> list[Any]:
    raw = req.params.raw("messages")
    if isinstance(raw, list):
        raw = orjson.dumps(raw).decode()  # a JSON body may carry the list itself rather than its encoding
    if not isinstance(raw, str) or not raw:
        raise InvalidInput("Missing parameter messages", reason="missing-messages")
    await req.services.signaling.send(req.identity, req.match("token"), raw)
    return []


@router.get(SIGNALING, access=Access.PUBLIC)
async def pull_messages(req: OcsRequest) -> OcsResult:
    pulled = await req.services.signaling.pull(req.identity, req.match("token"))
    return OcsResult(data=pulled_data(pulled), status=pulled.status)
