"""Entities the domain works with. Plain frozen dataclasses; storage builds them, serializers read them."""

from __future__ import annotations

from dataclasses import dataclass

from talkd.ids import AppPasswordId, GroupId, UserId, WebSessionId

ADMIN_GROUP = GroupId("admin")


@dataclass(frozen=True)
class User:
    id: UserId
    display_name: str
    email: str | None
    password_hash: str
    enabled: bool
    created_at: int
    last_login: int


@dataclass(frozen=True)
class Group:
    id: GroupId
    display_name: str


@dataclass(frozen=True)
class AppPassword:
    id: AppPasswordId
    user_id: UserId
    name: str
    created_at: int
    last_used: int


@dataclass(frozen=True)
class WebSession:
    """A browser or guest session, identified by a cookie. `user_id` is None for guests."""

    id: WebSessionId
    user_id: UserId | None
    csrf_token: str
    created_at: int
    last_seen: int


@dataclass(frozen=True)
class LoginFlow:
    id: int
    client_name: str
    user_id: UserId | None
    created_at: int
