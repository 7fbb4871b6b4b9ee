"""Call participants and signaling on the OCS wire, per API version: THE place where the versions of
the call API differ (v1/v2 name users by `userId`, v3+ by actor type, id and display name)."""

from __future__ import annotations

from typing import Any

from talkd.domain.calls import Peer
from talkd.domain.conversation import ActorType
from talkd.domain.signaling import Pulled


def call_peer_data(peer: Peer, token: str, api_version: int) -> dict[str, Any]:
    attendee, session = peer.attendee, peer.session
    data: dict[str, Any] = {"token": token, "lastPing": session.last_ping, "sessionId": session.session_id}
    if api_version <= 2:
        data["userId"] = attendee.actor_id if attendee.actor_type == ActorType.USERS else ""
    else:
        data.update({"actorType": attendee.actor_type.value, "actorId": attendee.actor_id,
                     "displayName": attendee.display_name})
    return data


def pulled_data(pulled: Pulled) -> list[dict[str, Any]]:
    """GET /signaling/{token}: the queued messages (JSON strings, as Talk stores and returns them),
    then the `usersInRoom` update."""
    data: list[dict[str, Any]] = [{"type": "message", "data": message} for message in pulled.messages]
    data.append({"type": "usersInRoom", "data": [
        {"userId": user.attendee.actor_id if user.attendee.actor_type == ActorType.USERS else "",
         "roomId": user.room_id, "lastPing": user.session.last_ping, "sessionId": user.session.session_id,
         "inCall": user.session.in_call, "participantPermissions": user.permissions}
        for user in pulled.users]})
    return data
