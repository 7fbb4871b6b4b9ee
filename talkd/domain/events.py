"""Typed domain events and the topics they travel on. Publishers build them here; waiters read `type`."""

from __future__ import annotations

from talkd.bus.base import ACCOUNTS, Event, topic
from talkd.ids import AppPasswordId, UserId

ACCOUNTS_TOPIC = topic(ACCOUNTS)


def credentials_changed(user_id: UserId) -> Event:
    """A user's password changed, or the user was disabled or deleted: forget what was verified."""
    return {"type": "credentials-changed", "userId": user_id}


def app_password_revoked(user_id: UserId, app_password_id: AppPasswordId) -> Event:
    return {"type": "app-password-revoked", "userId": user_id, "appPasswordId": app_password_id}
