"""Typed domain events and the topics they travel on. Publishers build them here; waiters read `type`."""

from __future__ import annotations

from talkd.bus.base import ACCOUNTS, ROOM, ROOMS, SESSION, USER, Event, topic
from talkd.ids import AppPasswordId, UserId

ACCOUNTS_TOPIC = topic(ACCOUNTS)
ROOMS_TOPIC = topic(ROOMS)


def credentials_changed(user_id: UserId) -> Event:
    """A user's password changed, or the user was disabled or deleted: forget what was verified."""
    return {"type": "credentials-changed", "userId": user_id}


def app_password_revoked(user_id: UserId, app_password_id: AppPasswordId) -> Event:
    return {"type": "app-password-revoked", "userId": user_id, "appPasswordId": app_password_id}


def room_topic(token: str) -> str:
    return topic(ROOM, token)


def user_topic(user_id: str) -> str:
    return topic(USER, user_id)


def room_changed(token: str) -> Event:
    """A conversation's settings, attendees or sessions changed."""
    return {"type": "room-changed", "token": token}


def room_deleted(token: str) -> Event:
    """The conversation is gone: every node drops what it cached about it (on its topic and ROOMS_TOPIC)."""
    return {"type": "room-deleted", "token": token}


def chat_message(token: str, message_id: int) -> Event:
    """A message up to `message_id` was committed in the conversation."""
    return {"type": "message", "token": token, "id": message_id}


def rooms_changed(user_id: str) -> Event:
    """The user's room list changed (a room appeared, went away or changed)."""
    return {"type": "rooms-changed", "userId": user_id}


def session_topic(session_pk: int) -> str:
    """A room session's topic, named by its row id (the 512-character session id is not a key)."""
    return topic(SESSION, str(session_pk))


def signaling_queued(session_pk: int) -> Event:
    """Internal-signaling messages were queued for the session."""
    return {"type": "signaling", "session": session_pk}
