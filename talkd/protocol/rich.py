"""Rich Object Strings for chat messages: the `{placeholder}` text and its `messageParameters`.

System messages are stored as an event name plus raw values (domain/system_messages.py); this codec
renders them the way Talk's clients expect: `systemMessage` holds the name, `message` an English text
with placeholders, and each placeholder a rich object (`user`, `guest`, ...)."""

from __future__ import annotations

from typing import Any

RichParameters = dict[str, dict[str, Any]]

# Stored actor references are {"type": actor type, "id": actor id, "name": display name}.
ActorRef = dict[str, str]


def rich_actor(ref: ActorRef) -> dict[str, Any]:
    """A participant as a rich object: users by id, guests as `guest/<id>` (Talk's convention)."""
    actor_type, actor_id, name = ref.get("type", ""), ref.get("id", ""), ref.get("name", "")
    if actor_type == "users":
        return {"type": "user", "id": actor_id, "name": name or actor_id}
    if actor_type in ("guests", "emails"):
        return {"type": "guest", "id": f"guest/{actor_id}", "name": name or "Guest"}
    if actor_type == "groups":
        return {"type": "user-group", "id": actor_id, "name": name or actor_id}
    return {"type": "highlight", "id": actor_id, "name": name or actor_id}


# Event name → English text. {actor} is who did it; other placeholders come from the parameters.
SYSTEM_TEXTS: dict[str, str] = {
    "conversation_created": "{actor} created the conversation",
    "conversation_renamed": "{actor} renamed the conversation from \"{oldName}\" to \"{newName}\"",
    "description_set": "{actor} set the description",
    "description_removed": "{actor} removed the description",
    "call_started": "{actor} started a call",
    "call_joined": "{actor} joined the call",
    "call_left": "{actor} left the call",
    "call_ended": "Call with {participants} (Duration {duration})",
    "call_ended_everyone": "{actor} ended the call with {participants} (Duration {duration})",
    "guests_allowed": "{actor} allowed guests",
    "guests_disallowed": "{actor} disallowed guests",
    "password_set": "{actor} set a password",
    "password_removed": "{actor} removed the password",
    "user_added": "{actor} added {user}",
    "user_removed": "{actor} removed {user}",
    "group_added": "{actor} added group {group}",
    "moderator_promoted": "{actor} promoted {user} to moderator",
    "moderator_demoted": "{actor} demoted {user} from moderator",
    "guest_moderator_promoted": "{actor} promoted {user} to moderator",
    "guest_moderator_demoted": "{actor} demoted {user} from moderator",
    "read_only": "{actor} locked the conversation",
    "read_only_off": "{actor} unlocked the conversation",
    "lobby_none": "{actor} opened the conversation to everyone",
    "lobby_non_moderators": "{actor} restricted the conversation to moderators",
    "message_deleted": "{actor} deleted a message",
    "reaction": "{reaction}",
    "reaction_revoked": "{actor} deleted a reaction",
}


def _duration(seconds: int) -> str:
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_system(name: str, actor: ActorRef, values: dict[str, Any]) -> tuple[str, RichParameters]:
    """Text and rich parameters of one system message."""
    text = SYSTEM_TEXTS.get(name, "{actor}")
    parameters: RichParameters = {"actor": rich_actor(actor)}
    if isinstance(values.get("user"), dict):
        parameters["user"] = rich_actor(values["user"])
    if isinstance(values.get("group"), dict):
        parameters["group"] = rich_actor(values["group"])
    if name == "reaction":
        text = str(values.get("reaction", ""))
    if name == "conversation_renamed":
        text = text.replace("{oldName}", str(values.get("oldName", ""))).replace("{newName}",
                                                                                str(values.get("newName", "")))
    if name in ("call_ended", "call_ended_everyone"):
        people = [rich_actor(ref) for ref in values.get("users", []) if isinstance(ref, dict)]
        placeholders = []
        for index, person in enumerate(people[:5], start=1):
            parameters[f"user{index}"] = person
            placeholders.append(f"{{user{index}}}")
        others = len(people) - len(placeholders) + int(values.get("guests", 0))
        names = ", ".join(placeholders[:-1]) + (" and " if len(placeholders) > 1 else "") + placeholders[-1] \
            if placeholders else "guests"
        if others > 0 and placeholders:
            names = ", ".join(placeholders) + f" and {others} others"
        summary = f"{names} (Duration {_duration(int(values.get('duration', 0)))})"
        text = f"Call with {summary}" if name == "call_ended" else f"{{actor}} ended the call with {summary}"
    return text, parameters
