"""Talk's conversation API, v1..v4 (/apps/spreed/api/v{1-4}/room...). Thin: read parameters, call the
domain, pick the version's serializer. Rules live in domain/permissions.py and domain/rooms.py."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from talkd.api.errors import ErrorMap
from talkd.api.ocs.room_serializers import created_room_data, room_data
from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.api.params import INT32_MAX
from talkd.domain.conversation import NotificationLevel
from talkd.domain.rooms import ConversationService
from talkd.domain.throttle import ThrottleAction
from talkd.errors import NotAllowedHere, PreconditionFailed
from talkd.protocol.ocs import OcsResult
from talkd.services import Services

router = OcsRouter()

ROOM = "/apps/spreed/api/{apiVersion:v[1-4]}/room"
ONE = ROOM + "/{token}"
SEED_NAME_LENGTH = 200  # v1..v3: "1-200 characters"; v4 allows 255


def talk_errors(req: OcsRequest) -> ErrorMap:
    """Where later versions answer differently from the seed's v1: a wrong room type is a plain 400
    from v2 on (only the seed's v1 documents 405 for renaming a one-to-one room), a target with the
    wrong role (412 in v1) is 400 in v4."""
    if req.api_version >= 4:
        return {NotAllowedHere: 400, PreconditionFailed: 400}
    if req.api_version >= 2:
        return {NotAllowedHere: 400}
    return {}


def conversations(req: OcsRequest) -> ConversationService:
    return req.services.conversations


def talk_hash(services: Services) -> str:
    """X-Nextcloud-Talk-Hash: changes whenever capabilities or signaling configuration change, telling
    clients to fetch both again."""
    config = {"spreed": services.capabilities.spreed(), "signaling": services.settings.signaling.mode}
    return hashlib.sha1(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()


def name_length(req: OcsRequest) -> int:
    return 255 if req.api_version >= 4 else SEED_NAME_LENGTH


@router.get(ROOM, access=Access.USER, errors=talk_errors)
async def list_rooms(req: OcsRequest) -> OcsResult:
    modified_since = req.params.integer("modifiedSince", 0, minimum=0)
    before = int(req.services.clock.now())
    views = await conversations(req).list_for(req.identity, modified_since=modified_since)
    return OcsResult(data=[room_data(view, req.api_version) for view in views],
                     headers={"X-Nextcloud-Talk-Hash": talk_hash(req.services),
                              "X-Nextcloud-Talk-Modified-Before": str(before)})


@router.post(ROOM, access=Access.USER, errors=talk_errors)
async def create_room(req: OcsRequest) -> OcsResult:
    room_type = req.params.integer("roomType", 0, maximum=INT32_MAX)
    view, created = await conversations(req).create(
        req.identity, room_type, name=req.params.string("roomName", "", max_length=name_length(req)),
        invite=req.params.string("invite", "", max_length=255), source=req.params.string("source", "", max_length=32),
        max_name_length=name_length(req))
    return OcsResult(data=created_room_data(view, req.api_version), status=201 if created else 200)


@router.get(ONE, access=Access.PUBLIC, errors=talk_errors, bruteforce=ThrottleAction.ROOM_TOKEN)
async def get_room(req: OcsRequest) -> OcsResult:
    view = await conversations(req).get(req.identity, req.match("token"))
    return OcsResult(data=room_data(view, req.api_version), headers={"X-Nextcloud-Talk-Hash": talk_hash(req.services)})


@router.put(ONE, access=Access.PUBLIC, errors=talk_errors)
async def rename_room(req: OcsRequest) -> list[Any]:
    name = req.params.string("roomName", "", max_length=4 * 255)
    await conversations(req).rename(req.identity, req.match("token"), name, max_name_length=name_length(req))
    return []


@router.delete(ONE, access=Access.PUBLIC, errors=talk_errors)
async def delete_room(req: OcsRequest) -> list[Any]:
    # The seed's v1 deletes one-to-one rooms too; from v4 they are only left.
    await conversations(req).delete(req.identity, req.match("token"), allow_one_to_one=req.api_version < 4)
    return []


@router.put("/apps/spreed/api/{apiVersion:v[3-4]}/room/{token}/description", access=Access.PUBLIC, errors=talk_errors)
async def set_description(req: OcsRequest) -> list[Any]:
    description = req.params.string("description", "", max_length=10_000)
    await conversations(req).set_description(req.identity, req.match("token"), description)
    return []


@router.post(ONE + "/public", access=Access.USER, errors=talk_errors)
@router.delete(ONE + "/public", access=Access.USER, errors=talk_errors)
async def set_public(req: OcsRequest) -> list[Any]:
    await conversations(req).set_public(req.identity, req.match("token"), req.turns_on)
    return []


@router.put(ONE + "/password", access=Access.PUBLIC, errors=talk_errors)
async def set_password(req: OcsRequest) -> list[Any]:
    password = req.params.string("password", "", max_length=1000)
    await conversations(req).set_password(req.identity, req.match("token"), password)
    return []


# Read-only and lobby need a login (Talk's NoAdminRequired without PublicPage): guest moderators get 401.
@router.put(ONE + "/read-only", access=Access.USER, errors=talk_errors)
async def set_read_only(req: OcsRequest) -> list[Any]:
    state = req.params.integer("state", maximum=INT32_MAX)
    await conversations(req).set_read_only(req.identity, req.match("token"), state)
    return []


@router.put(ONE + "/webinar/lobby", access=Access.USER, errors=talk_errors)
async def set_lobby(req: OcsRequest) -> Any:
    token = req.match("token")
    await conversations(req).set_lobby(req.identity, token, req.params.integer("state", maximum=INT32_MAX),
                                       req.params.integer("timer", 0, minimum=0))
    if req.api_version >= 4:
        return room_data(await conversations(req).get(req.identity, token), req.api_version)
    return []


@router.post(ONE + "/favorite", access=Access.USER, errors=talk_errors)
@router.delete(ONE + "/favorite", access=Access.USER, errors=talk_errors)
async def set_favorite(req: OcsRequest) -> list[Any]:
    await conversations(req).set_favorite(req.identity, req.match("token"), req.turns_on)
    return []


@router.post(ONE + "/notify", access=Access.USER, errors=talk_errors)
async def set_notification_level(req: OcsRequest) -> list[Any]:
    # The seed's v1 knows levels 1..3; later versions also accept 0 (back to the default).
    minimum = NotificationLevel.ALWAYS if req.api_version == 1 else NotificationLevel.DEFAULT
    level = req.params.integer("level", maximum=INT32_MAX)
    await conversations(req).set_notification_level(req.identity, req.match("token"), level, minimum=minimum)
    return []
