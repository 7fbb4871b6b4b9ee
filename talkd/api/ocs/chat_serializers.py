"""Chat messages on the OCS wire (GET/POST /chat/{token}, a room's `lastMessage`)."""

from __future__ import annotations

from typing import Any

from talkd.domain.conversation import ChatMessage, Verb
from talkd.protocol.rich import render_system


def message_data(message: ChatMessage, token: str) -> dict[str, Any]:
    """One message as Talk's chat API describes it (seed fields, then today's additions)."""
    ref = {"type": message.actor_type, "id": message.actor_id, "name": message.actor_display_name}
    if message.verb == Verb.SYSTEM:
        actor = message.parameters.get("actor")
        text, parameters = render_system(message.message, actor if isinstance(actor, dict) else ref,
                                         dict(message.parameters))
        system_message = message.message
    else:
        text = message.message
        raw = message.parameters.get("rich")
        parameters = raw if isinstance(raw, dict) else {}
        system_message = ""
    return {
        "id": message.id,
        "token": token,
        "actorType": message.actor_type,
        "actorId": message.actor_id,
        "actorDisplayName": message.actor_display_name,
        "timestamp": message.created_at,
        "systemMessage": system_message,
        "message": text,
        "messageParameters": parameters or [],
        "messageType": message.verb.value if message.verb != Verb.SYSTEM else "system",
        "isReplyable": message.verb == Verb.COMMENT,
        "referenceId": message.reference_id,
        "reactions": [],
        "expirationTimestamp": 0,
        "markdown": message.verb == Verb.COMMENT,
    }
