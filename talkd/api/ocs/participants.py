"""Talk's participant API, v1..v4: the attendee list, adding and removing people, moderators, joining
and leaving with a session, and guests' names. Versions differ in how a target is named (user id or
guest session id before v3, attendee id from v3) and in the serializer."""

from __future__ import annotations

from typing import Any

from talkd.api.errors import OcsError
from talkd.api.ocs.room_serializers import participant_data, room_data
from talkd.api.ocs.rooms import ONE, conversations, talk_errors
from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.api.params import INT32_MAX
from talkd.domain.conversation import Attendee
from talkd.domain.participants import ParticipantService
from talkd.domain.rooms import effective_permissions
from talkd.domain.throttle import ThrottleAction
from talkd.errors import Conflict, InvalidInput
from talkd.protocol.ocs import OcsResult

router = OcsRouter()

OLD = "/apps/spreed/api/{apiVersion:v[1-2]}/room/{token}"
NEW = "/apps/spreed/api/{apiVersion:v[3-4]}/room/{token}"
MAX_ID = 255


def participants(req: OcsRequest) -> ParticipantService:
    return req.services.participants


@router.get(ONE + "/participants", access=Access.PUBLIC, errors=talk_errors)
async def list_participants(req: OcsRequest) -> list[dict[str, Any]]:
    room, members = await participants(req).members(req.identity, req.match("token"))
    return [participant_data(m, room.type, req.api_version, effective_permissions(room, m.attendee))
            for m in members]


@router.post(ONE + "/participants", access=Access.USER, errors=talk_errors)
async def add_participant(req: OcsRequest) -> Any:
    new = req.params.string("newParticipant", "", max_length=MAX_ID)
    source = req.params.string("source", "", max_length=32) or (
        "groups" if req.params.boolean("isGroup") else "users")
    changed = await participants(req).add(req.identity, req.match("token"), new, source,
                                          convert_one_to_one=req.api_version == 1)
    return {"type": int(changed)} if changed is not None else []


@router.post(OLD + "/participants/guests", access=Access.USER, errors=talk_errors)
async def invite_guest(req: OcsRequest) -> Any:
    email = req.params.string("newParticipant", "", max_length=MAX_ID)
    changed = await participants(req).invite_email(req.identity, req.match("token"), email)
    return {"type": int(changed)} if changed is not None else []


@router.delete(OLD + "/participants", access=Access.PUBLIC, errors=talk_errors)
async def remove_user(req: OcsRequest) -> list[Any]:
    user_id = req.params.string("participant", "", max_length=MAX_ID)
    await participants(req).remove_user(req.identity, req.match("token"), user_id)
    return []


@router.delete(OLD + "/participants/guests", access=Access.PUBLIC, errors=talk_errors)
async def remove_guest(req: OcsRequest) -> list[Any]:
    session_id = req.params.string("participant", "", max_length=512)
    await participants(req).remove_guest(req.identity, req.match("token"), session_id)
    return []


@router.delete(NEW + "/attendees", access=Access.PUBLIC, errors=talk_errors)
async def remove_attendee(req: OcsRequest) -> list[Any]:
    attendee_id = req.params.integer("attendeeId", minimum=0, maximum=INT32_MAX)
    await participants(req).remove_attendee(req.identity, req.match("token"), attendee_id)
    return []


@router.delete(ONE + "/participants/self", access=Access.PUBLIC, errors=talk_errors)
async def remove_self(req: OcsRequest) -> list[Any]:
    await participants(req).remove_self(req.identity, req.match("token"))
    return []


@router.post(ONE + "/participants/active", access=Access.PUBLIC, errors=talk_errors,
             bruteforce=ThrottleAction.ROOM_TOKEN)
async def join(req: OcsRequest) -> Any:
    password = req.params.string("password", "", max_length=1000)
    token = req.match("token")
    web_session_id: int | None = None
    if req.identity.user is None:
        # Guests are recognised by their cookie session; one starts here if they have none.
        await conversations(req).get(req.identity, token)  # 404 before creating a session for nothing
        web_session_id = (await req.web_session()).id
    elif req.identity.web_session is not None:
        web_session_id = req.identity.web_session.id
    try:
        joined = await participants(req).join(req.identity, token, password, web_session_id=web_session_id,
                                              force=req.params.boolean("force", True))
    except Conflict as exc:
        # Talk answers 409 with the conflicting session, so the client can ask whether to take over.
        raise OcsError(409, exc.message, data=exc.details) from None
    if req.api_version < 4:
        return {"sessionId": joined.session.session_id}
    return OcsResult(data=room_data(await conversations(req).get(req.identity, token), req.api_version))


@router.delete(ONE + "/participants/active", access=Access.PUBLIC, errors=talk_errors)
async def leave(req: OcsRequest) -> list[Any]:
    await participants(req).leave(req.identity, req.match("token"))
    return []


async def _target(req: OcsRequest) -> Attendee | None:
    service, token = participants(req), req.match("token")
    if req.api_version >= 3:
        attendee_id = req.params.integer("attendeeId", minimum=0, maximum=INT32_MAX)
        return await service.find_target(token, attendee_id=attendee_id)
    name = req.params.string("participant", "", max_length=512)
    if not name:
        raise InvalidInput("Missing parameter participant", reason="missing-participant")
    return await service.find_target(token, user_id=name)


@router.post(ONE + "/moderators", access=Access.PUBLIC, errors=talk_errors)
@router.delete(ONE + "/moderators", access=Access.PUBLIC, errors=talk_errors)
async def set_moderator(req: OcsRequest) -> list[Any]:
    await participants(req).set_moderator(req.identity, req.match("token"), await _target(req), req.turns_on)
    return []


@router.post("/apps/spreed/api/v1/guest/{token}/name", access=Access.PUBLIC)
async def set_guest_name(req: OcsRequest) -> list[Any]:
    name = req.params.string("displayName", "", max_length=1000)
    await participants(req).set_guest_name(req.identity, req.match("token"), name)
    return []
