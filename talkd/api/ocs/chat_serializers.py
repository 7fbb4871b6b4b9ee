"""Chat messages on the OCS wire (GET/POST /chat/{token}, a room's `lastMessage`)."""

from __future__ import annotations

from typing import Any

from talkd.domain.chat import ChatPage
from talkd.domain.conversation import ChatMessage, Verb
from talkd.protocol.rich import render_system, rich_actor
from talkd.storage.reactions import Reaction


def _text_and_parameters(message: ChatMessage) -> tuple[str, str, dict[str, Any]]:
    """(text, systemMessage, messageParameters) of one stored message."""
    ref = {"type": message.actor_type, "id": message.actor_id, "name": message.actor_display_name}
    if message.verb == Verb.SYSTEM:
        actor = message.parameters.get("actor")
        text, parameters = render_system(message.message, actor if isinstance(actor, dict) else ref,
                                         dict(message.parameters))
        return text, message.message, parameters
    if message.verb == Verb.COMMENT_DELETED:
        by = message.parameters.get("deletedBy")
        deleter = by if isinstance(by, dict) else ref
        return "Message deleted by {actor}", "", {"actor": rich_actor(deleter)}
    rendered = message.parameters.get("rendered")
    rich = message.parameters.get("rich")
    if isinstance(rendered, str) and isinstance(rich, dict):
        return rendered, "", rich
    return message.message, "", {}


def message_data(message: ChatMessage, token: str, *, reactions: list[Reaction] | None = None,
                 reader: tuple[str, str] | None = None) -> dict[str, Any]:
    """One message as Talk's chat API describes it: the seed's fields, then today's additions."""
    text, system_message, parameters = _text_and_parameters(message)
    counts: dict[str, int] = {}
    mine: list[str] = []
    for reaction in reactions or ():
        counts[reaction.reaction] = counts.get(reaction.reaction, 0) + 1
        if reader == (reaction.actor_type, reaction.actor_id) and reaction.reaction not in mine:
            mine.append(reaction.reaction)
    data: dict[str, Any] = {
        "id": message.id,
        "token": token,
        "actorType": message.actor_type,
        "actorId": message.actor_id,
        "actorDisplayName": message.actor_display_name,
        "timestamp": message.created_at,
        "systemMessage": system_message,
        "message": text,
        # PHP serialises an empty parameter map as a list; clients expect exactly that.
        "messageParameters": parameters or [],
        "messageType": message.verb.value,
        "isReplyable": message.verb == Verb.COMMENT,
        "referenceId": message.reference_id,
        "reactions": counts,  # {} when empty: clients read an object (Talk sends a stdClass)
        "expirationTimestamp": 0,
        "markdown": message.verb == Verb.COMMENT,
        "silent": bool(message.parameters.get("silent")),
    }
    if mine:
        data["reactionsSelf"] = mine
    return data


def page_data(page: ChatPage) -> list[dict[str, Any]]:
    """Messages of a page, each with its `parent` when it replies to one."""
    out = []
    for message in page.messages:
        data = message_data(message, page.room.token, reactions=page.reactions.get(message.id), reader=page.reader)
        parent = page.parents.get(message.parent_id) if message.parent_id else None
        if parent is not None:
            data["parent"] = message_data(parent, page.room.token)
        out.append(data)
    return out


def reactions_data(rows: list[Reaction]) -> dict[str, list[dict[str, Any]]]:
    """A message's reactions by emoji; {} when there are none (Talk's formatReactions)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row.reaction, []).append({
            "actorType": row.actor_type, "actorId": row.actor_id, "actorDisplayName": row.actor_display_name,
            "timestamp": row.created_at})
    return grouped
