"""Talk's signaling API: the settings a client fetches before a call, in v1..v3
(/apps/spreed/api/v{1,2,3}/signaling/settings). Internal signaling joins this module later."""

from __future__ import annotations

from typing import Any

from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.api.ocs.serializers import signaling_settings_data
from talkd.errors import NotFound
from talkd.ids import RoomToken

router = OcsRouter()

# Talk stores tokens in a 32-character column; anything longer cannot name a conversation.
MAX_TOKEN_LENGTH = 32


@router.get("/apps/spreed/api/{apiVersion:v[1-3]}/signaling/settings", access=Access.PUBLIC)
async def signaling_settings(req: OcsRequest) -> Any:
    api_version = int(req.match("apiVersion")[1:])
    token = req.params.string("token", "", max_length=MAX_TOKEN_LENGTH)
    # No token is allowed: Talk answers without a conversation for older mobile apps.
    room = RoomToken(token) if token else None
    if room is not None and await req.services.room_lookup(room, req.identity) is None:
        raise NotFound("Conversation not found")
    config = req.services.signaling_settings.for_caller(req.identity.user_id, room)
    return signaling_settings_data(config, api_version)
