"""Talk's call API, v1..v4 (/apps/spreed/api/v{1-4}/call/{token}): the peers in a conversation's call,
joining (with in-call flags), changing flags (v4) and leaving. Versions differ only in the serializer.

No `talk_errors` here: unlike the room API, v4's call API keeps 412 for the lobby."""

from __future__ import annotations

from typing import Any

from talkd.api.ocs.call_serializers import call_peer_data
from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.domain.calls import CallService
from talkd.domain.conversation import IN_CALL_ALL

router = OcsRouter()

CALL = "/apps/spreed/api/{apiVersion:v[1-4]}/call/{token}"


def calls(req: OcsRequest) -> CallService:
    return req.services.calls


def _flags(req: OcsRequest, *, required: bool) -> int | None:
    if not required and req.params.raw("flags") in (None, ""):
        return None
    return req.params.integer("flags", minimum=0, maximum=IN_CALL_ALL)


@router.get(CALL, access=Access.PUBLIC)
async def list_peers(req: OcsRequest) -> list[dict[str, Any]]:
    room, peers = await calls(req).peers(req.identity, req.match("token"))
    return [call_peer_data(peer, room.token, req.api_version) for peer in peers]


@router.post(CALL, access=Access.PUBLIC)
async def join_call(req: OcsRequest) -> list[Any]:
    await calls(req).join(req.identity, req.match("token"), _flags(req, required=False))
    return []


@router.put("/apps/spreed/api/{apiVersion:v4}/call/{token}", access=Access.PUBLIC)
async def update_call_flags(req: OcsRequest) -> list[Any]:
    await calls(req).update_flags(req.identity, req.match("token"), _flags(req, required=True) or 0)
    return []


@router.delete(CALL, access=Access.PUBLIC)
async def leave_call(req: OcsRequest) -> list[Any]:
    everyone = req.api_version >= 4 and req.params.boolean("all")
    await calls(req).leave(req.identity, req.match("token"), everyone=everyone)
    return []
