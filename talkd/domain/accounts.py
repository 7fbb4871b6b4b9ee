"""Accounts: users, groups and app passwords, with Nextcloud's rules for ids, names and passwords."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from talkd.bus.base import EventBus
from talkd.clock import Clock
from talkd.crypto import PasswordHashing, keyed_hash, random_token
from talkd.domain import events
from talkd.domain.model import ADMIN_GROUP, AppPassword, Group, User
from talkd.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from talkd.ids import AppPasswordId, GroupId, UserId
from talkd.storage.accounts import AppPasswordStore, GroupStore, LastMember, UserStore

# Nextcloud: "Only the following characters are allowed in a username: a-z, A-Z, 0-9, spaces and _.@-'".
_USER_ID = re.compile(r"^[a-zA-Z0-9 _.@\-']+$")
MAX_ID_LENGTH = 64
MAX_PASSWORD_LENGTH = 469  # Nextcloud's own upper bound
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
APP_PASSWORD_LENGTH = 72


@dataclass(frozen=True)
class NewAppPassword:
    """An app password as created: the plain text exists only here, to be handed to the client once."""

    record: AppPassword
    password: str


def validate_user_id(user_id: str) -> UserId:
    if not user_id or len(user_id) > MAX_ID_LENGTH or not _USER_ID.match(user_id):
        raise InvalidInput("Invalid user id: only a-z, A-Z, 0-9, spaces and _.@-' are allowed",
                           reason="invalid-user-id")
    if user_id != user_id.strip() or user_id in (".", ".."):
        raise InvalidInput("Invalid user id", reason="invalid-user-id")
    return UserId(user_id)


def validate_group_id(group_id: str) -> GroupId:
    if not group_id or len(group_id) > MAX_ID_LENGTH or group_id != group_id.strip():
        raise InvalidInput("Invalid group name", reason="invalid-group-id")
    if any(ord(c) < 32 for c in group_id) or "/" in group_id:
        raise InvalidInput("Invalid group name", reason="invalid-group-id")
    return GroupId(group_id)


def validate_password(password: str) -> str:
    # Two reasons, because Nextcloud answers them differently: a too long value is an invalid
    # argument, an empty one is what a password policy rejects.
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput("Invalid password value", reason="password-too-long")
    if not password:
        raise InvalidInput("Password must not be empty", reason="password-empty")
    return password


def plausible_id(value: str) -> bool:
    """Whether `value` could name a user or group at all; anything else is simply not found (and
    never reaches the database: PostgreSQL rejects NUL characters outright)."""
    return 0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value


def validate_email(email: str) -> str | None:
    email = email.strip()
    if not email:
        return None
    if len(email) > 255 or not _EMAIL.match(email):
        raise InvalidInput("Invalid email address", reason="invalid-email")
    return email


class AccountService:
    def __init__(self, *, users: UserStore, groups: GroupStore, app_passwords: AppPasswordStore,
                 hashing: PasswordHashing, bus: EventBus, clock: Clock, secret: bytes,
                 max_display_name_length: int) -> None:
        self.users = users
        self.groups = groups
        self.app_passwords = app_passwords
        self.hashing = hashing
        self.bus = bus
        self.clock = clock
        self._secret = secret
        self._max_display_name = max_display_name_length
        # Run after a user is deleted, like Nextcloud's UserDeletedEvent listeners (conversations
        # remove the user from every room).
        self.user_deleted: list[Callable[[UserId], Awaitable[None]]] = []

    # Users ----------------------------------------------------------------------------------------

    def _display_name(self, display_name: str, fallback: str) -> str:
        name = display_name.strip() or fallback
        if len(name) > self._max_display_name:
            raise InvalidInput("Display name is too long", reason="invalid-display-name")
        return name

    async def create_user(self, user_id: str, password: str, *, display_name: str = "", email: str = "",
                          groups: tuple[str, ...] = ()) -> User:
        # Nextcloud's order, so the first failing check decides the answer: taken id, missing
        # group, password, then the id's and the other values' syntax.
        if await self.find_user(user_id) is not None:
            raise AlreadyExists("User already exists", reason="user-exists")
        for group_id in groups:
            await self.get_group(group_id)
        validate_password(password)
        uid = validate_user_id(user_id)
        name = self._display_name(display_name, uid)
        address = validate_email(email)
        password_hash = await self.hashing.hash(password)
        user = await self.users.create(user_id=uid, display_name=name, email=address,
                                       password_hash=password_hash, now=int(self.clock.now()))
        for group_id in groups:
            await self.groups.add_member(GroupId(group_id), uid)
        return user

    async def get_user(self, user_id: str) -> User:
        user = await self.find_user(user_id)
        if user is None:
            raise NotFound("User does not exist", reason="user-not-found")
        return user

    async def find_user(self, user_id: str) -> User | None:
        return await self.users.get(user_id) if plausible_id(user_id) else None

    async def list_users(self, search: str = "", limit: int | None = None, offset: int = 0) -> list[User]:
        return await self.users.search(search, limit=limit, offset=offset)

    async def set_password(self, user_id: str, password: str) -> None:
        user = await self.get_user(user_id)
        validate_password(password)
        await self.users.update(user.id, password_hash=await self.hashing.hash(password))
        await self.bus.publish(events.ACCOUNTS_TOPIC, events.credentials_changed(user.id))

    async def set_display_name(self, user_id: str, display_name: str) -> bool:
        """Rename; an empty name is ignored (as Nextcloud's user model does). True when changed."""
        user = await self.get_user(user_id)
        if not display_name.strip():
            return False
        await self.users.update(user.id, display_name=self._display_name(display_name, user.id))
        return True

    async def set_email(self, user_id: str, email: str) -> None:
        user = await self.get_user(user_id)
        await self.users.update(user.id, email=validate_email(email))

    async def set_enabled(self, user_id: str, enabled: bool) -> None:
        user = await self.get_user(user_id)
        await self.users.update(user.id, enabled=enabled)
        if not enabled:
            await self.bus.publish(events.ACCOUNTS_TOPIC, events.credentials_changed(user.id))

    async def delete_user(self, user_id: str) -> None:
        user = await self.get_user(user_id)
        try:
            await self.users.delete(user.id, keep_member_of=ADMIN_GROUP)
        except LastMember:
            raise Forbidden("The last admin cannot be deleted", reason="last-admin") from None
        await self.bus.publish(events.ACCOUNTS_TOPIC, events.credentials_changed(user.id))
        for listener in self.user_deleted:
            await listener(user.id)

    async def record_login(self, user_id: UserId) -> None:
        await self.users.update(user_id, last_login=int(self.clock.now()))

    # Groups ---------------------------------------------------------------------------------------

    async def is_admin(self, user_id: UserId) -> bool:
        return await self.groups.is_member(ADMIN_GROUP, user_id)

    async def create_group(self, group_id: str, display_name: str = "") -> Group:
        gid = validate_group_id(group_id)
        name = display_name.strip() or gid
        if len(name) > 255:
            raise InvalidInput("Group display name is too long", reason="invalid-group-id")
        return await self.groups.create(gid, name)

    async def rename_group(self, group_id: str, display_name: str) -> None:
        group = await self.get_group(group_id)
        name = display_name.strip()
        if not name or len(name) > 255:
            raise InvalidInput("Invalid group display name", reason="invalid-display-name")
        await self.groups.set_display_name(group.id, name)

    async def member_counts(self, group_ids: list[GroupId]) -> dict[str, int]:
        return await self.groups.member_counts(group_ids)

    async def find_group(self, group_id: str) -> Group | None:
        return await self.groups.get(group_id) if plausible_id(group_id) else None

    async def get_group(self, group_id: str) -> Group:
        group = await self.find_group(group_id)
        if group is None:
            raise NotFound(f"group {group_id} does not exist", reason="group-not-found")
        return group

    async def list_groups(self, search: str = "", limit: int | None = None, offset: int = 0) -> list[Group]:
        return await self.groups.search(search, limit=limit, offset=offset)

    async def delete_group(self, group_id: str) -> None:
        group = await self.get_group(group_id)
        if group.id == ADMIN_GROUP:
            raise Forbidden("The admin group cannot be deleted", reason="admin-group")
        await self.groups.delete(group.id)

    async def add_to_group(self, user_id: str, group_id: str) -> None:
        user = await self.get_user(user_id)
        group = await self.get_group(group_id)
        await self.groups.add_member(group.id, user.id)

    async def remove_from_group(self, user_id: str, group_id: str) -> None:
        user = await self.get_user(user_id)
        group = await self.get_group(group_id)
        admin = group.id == ADMIN_GROUP
        try:
            removed = await self.groups.remove_member(group.id, user.id, keep_one=admin)
        except LastMember:
            raise Forbidden("The last admin cannot leave the admin group", reason="last-admin") from None
        if removed and admin:
            # Remembered credentials carry the admin flag: drop them on every node, so the rights
            # end at once and not at the next recheck.
            await self.bus.publish(events.ACCOUNTS_TOPIC, events.credentials_changed(user.id))

    async def groups_of(self, user_id: UserId) -> list[GroupId]:
        return await self.groups.groups_of(user_id)

    async def members_of(self, group_id: str) -> list[UserId]:
        group = await self.get_group(group_id)
        return await self.groups.members(group.id)

    # App passwords ----------------------------------------------------------------------------------

    def app_password_hash(self, password: str) -> str:
        return keyed_hash(self._secret, "app-password", password)

    async def create_app_password(self, user_id: str, name: str) -> NewAppPassword:
        user = await self.get_user(user_id)
        password = random_token(APP_PASSWORD_LENGTH)
        record = await self.app_passwords.create(user_id=user.id, name=name[:255] or "app password",
                                                 token_hash=self.app_password_hash(password),
                                                 now=int(self.clock.now()))
        return NewAppPassword(record, password)

    async def find_app_password(self, password: str) -> AppPassword | None:
        if len(password) != APP_PASSWORD_LENGTH:
            return None
        return await self.app_passwords.find(self.app_password_hash(password))

    async def list_app_passwords(self, user_id: str) -> list[AppPassword]:
        user = await self.get_user(user_id)
        return await self.app_passwords.list_for(user.id)

    async def revoke_app_password(self, user_id: UserId, app_password_id: AppPasswordId) -> None:
        owned = {p.id for p in await self.app_passwords.list_for(user_id)}
        if app_password_id not in owned:
            raise NotFound("App password does not exist", reason="app-password-not-found")
        await self.app_passwords.delete(app_password_id)
        await self.bus.publish(events.ACCOUNTS_TOPIC, events.app_password_revoked(user_id, app_password_id))

    # First start ------------------------------------------------------------------------------------

    async def ensure_first_admin(self, user_id: str, password: str) -> tuple[User, str] | None:
        """Create the admin group and, when it has no member, an admin. Returns (user, password) when a
        user was created; `password` is the generated one when none was given."""
        if await self.groups.get(ADMIN_GROUP) is None:
            with contextlib.suppress(AlreadyExists):  # another node or process created it first
                await self.groups.create(ADMIN_GROUP, "admin")
        if await self.groups.members(ADMIN_GROUP):
            return None
        chosen = password or random_token(24)
        existing = await self.users.get(user_id)
        if existing is None:
            user = await self.create_user(user_id, chosen)
        else:
            user = existing
            await self.set_password(user.id, chosen)
        await self.groups.add_member(ADMIN_GROUP, user.id)
        return user, chosen
