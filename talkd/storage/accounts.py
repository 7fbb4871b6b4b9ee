"""Users, groups, app passwords, web sessions, login flows and failed-login records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.domain.model import AppPassword, Group, LoginFlow, User, WebSession
from talkd.errors import AlreadyExists
from talkd.ids import AppPasswordId, GroupId, UserId, WebSessionId
from talkd.storage.database import Database
from talkd.storage.tables import (
    app_passwords,
    auth_failures,
    group_members,
    groups,
    login_flows,
    users,
    web_sessions,
)


class LastMember(Exception):
    """The change would leave a group that must keep a member without any."""


async def _keep_a_member(conn: AsyncConnection, group_id: GroupId, user_id: UserId) -> None:
    """Raise LastMember when `user_id` is the only member of `group_id`. On PostgreSQL the group's
    row is locked first, so removals from one group take turns and each counts what the one before
    it left; SQLite's single writer serialises them already."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(groups.c.id).where(groups.c.id == group_id).with_for_update())
    members = (await conn.execute(sa.select(group_members.c.user_id)
                                  .where(group_members.c.group_id == group_id).limit(2))).scalars().all()
    if list(members) == [user_id]:
        raise LastMember(group_id)


def _user(row: Any) -> User:
    return User(
        id=UserId(row.id),
        display_name=row.display_name,
        email=row.email,
        password_hash=row.password_hash,
        enabled=bool(row.enabled),
        created_at=int(row.created_at),
        last_login=int(row.last_login),
    )


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, user_id: UserId, display_name: str, email: str | None, password_hash: str,
                     now: int) -> User:
        values = {
            "id": user_id, "id_lower": user_id.lower(), "display_name": display_name, "email": email,
            "password_hash": password_hash, "enabled": True, "created_at": now, "last_login": 0,
        }
        try:
            async with self.db.transaction("user_create") as conn:
                await conn.execute(users.insert().values(**values))
        except IntegrityError:
            raise AlreadyExists("User already exists") from None
        return User(id=user_id, display_name=display_name, email=email, password_hash=password_hash,
                    enabled=True, created_at=now, last_login=0)

    async def get(self, user_id: str) -> User | None:
        """Exact id, or failing that the case-insensitive match Nextcloud logins allow."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
            if row is None:
                row = (await conn.execute(sa.select(users).where(users.c.id_lower == user_id.lower()))).first()
        return _user(row) if row else None

    async def get_many(self, user_ids: Sequence[str]) -> dict[UserId, User]:
        if not user_ids:
            return {}
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(users).where(users.c.id.in_(list(user_ids))))).all()
        return {UserId(r.id): _user(r) for r in rows}

    async def search(self, term: str, *, limit: int | None, offset: int) -> list[User]:
        query = sa.select(users).order_by(users.c.id_lower)
        if term:
            like = f"%{_escape_like(term.lower())}%"
            query = query.where(
                sa.or_(
                    users.c.id_lower.like(like, escape="\\"),
                    sa.func.lower(users.c.display_name).like(like, escape="\\"),
                    sa.func.lower(sa.func.coalesce(users.c.email, "")).like(like, escape="\\"),
                )
            )
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        async with self.db.read() as conn:
            return [_user(r) for r in (await conn.execute(query)).all()]

    async def update(self, user_id: UserId, **fields: Any) -> bool:
        async with self.db.transaction("user_update") as conn:
            result = await conn.execute(users.update().where(users.c.id == user_id).values(**fields))
        return bool(result.rowcount)

    async def delete(self, user_id: UserId, *, keep_member_of: GroupId | None = None) -> bool:
        """Delete the user; raises LastMember instead when that would leave `keep_member_of` empty."""
        async with self.db.transaction("user_delete") as conn:
            if keep_member_of is not None:
                await _keep_a_member(conn, keep_member_of, user_id)
            result = await conn.execute(users.delete().where(users.c.id == user_id))
        return bool(result.rowcount)

    async def count(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one())


class GroupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, group_id: GroupId, display_name: str) -> Group:
        try:
            async with self.db.transaction("group_create") as conn:
                await conn.execute(groups.insert().values(id=group_id, display_name=display_name))
        except IntegrityError:
            raise AlreadyExists("group exists") from None
        return Group(group_id, display_name)

    async def get(self, group_id: str) -> Group | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(groups).where(groups.c.id == group_id))).first()
        return Group(GroupId(row.id), row.display_name) if row else None

    async def search(self, term: str, *, limit: int | None, offset: int) -> list[Group]:
        query = sa.select(groups).order_by(groups.c.id)
        if term:
            like = f"%{_escape_like(term.lower())}%"
            query = query.where(
                sa.or_(sa.func.lower(groups.c.id).like(like, escape="\\"),
                       sa.func.lower(groups.c.display_name).like(like, escape="\\"))
            )
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        async with self.db.read() as conn:
            return [Group(GroupId(r.id), r.display_name) for r in (await conn.execute(query)).all()]

    async def set_display_name(self, group_id: GroupId, display_name: str) -> bool:
        async with self.db.transaction("group_rename") as conn:
            result = await conn.execute(groups.update().where(groups.c.id == group_id)
                                        .values(display_name=display_name))
        return bool(result.rowcount)

    async def member_counts(self, group_ids: Sequence[str]) -> dict[str, int]:
        if not group_ids:
            return {}
        query = (sa.select(group_members.c.group_id, sa.func.count())
                 .where(group_members.c.group_id.in_(list(group_ids))).group_by(group_members.c.group_id))
        async with self.db.read() as conn:
            return {row[0]: int(row[1]) for row in await conn.execute(query)}

    async def delete(self, group_id: GroupId) -> bool:
        async with self.db.transaction("group_delete") as conn:
            result = await conn.execute(groups.delete().where(groups.c.id == group_id))
        return bool(result.rowcount)

    async def add_member(self, group_id: GroupId, user_id: UserId) -> bool:
        """True when added, False when the user already was a member."""
        async with self.db.transaction("group_add_member") as conn:
            exists = (await conn.execute(
                sa.select(group_members.c.user_id).where(
                    group_members.c.group_id == group_id, group_members.c.user_id == user_id)
            )).first()
            if exists:
                return False
            await conn.execute(group_members.insert().values(group_id=group_id, user_id=user_id))
        return True

    async def remove_member(self, group_id: GroupId, user_id: UserId, *, keep_one: bool = False) -> bool:
        """True when removed. With `keep_one`, raises LastMember instead of removing the only member."""
        async with self.db.transaction("group_remove_member") as conn:
            if keep_one:
                await _keep_a_member(conn, group_id, user_id)
            result = await conn.execute(group_members.delete().where(
                group_members.c.group_id == group_id, group_members.c.user_id == user_id))
        return bool(result.rowcount)

    async def groups_of(self, user_id: UserId) -> list[GroupId]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                sa.select(group_members.c.group_id).where(group_members.c.user_id == user_id)
                .order_by(group_members.c.group_id)
            )).all()
        return [GroupId(r.group_id) for r in rows]

    async def members(self, group_id: GroupId) -> list[UserId]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                sa.select(group_members.c.user_id).where(group_members.c.group_id == group_id)
                .order_by(group_members.c.user_id)
            )).all()
        return [UserId(r.user_id) for r in rows]

    async def is_member(self, group_id: GroupId, user_id: UserId) -> bool:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(group_members.c.user_id).where(
                group_members.c.group_id == group_id, group_members.c.user_id == user_id))).first()
        return row is not None


def _app_password(row: Any) -> AppPassword:
    return AppPassword(AppPasswordId(row.id), UserId(row.user_id), row.name, int(row.created_at),
                       int(row.last_used))


class AppPasswordStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, user_id: UserId, name: str, token_hash: str, now: int) -> AppPassword:
        async with self.db.transaction("app_password_create") as conn:
            result = await conn.execute(app_passwords.insert().values(
                user_id=user_id, name=name, token_hash=token_hash, created_at=now, last_used=0))
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        assert new_id is not None
        return AppPassword(AppPasswordId(int(new_id)), user_id, name, now, 0)

    async def find(self, token_hash: str) -> AppPassword | None:
        async with self.db.read() as conn:
            row = (await conn.execute(
                sa.select(app_passwords).where(app_passwords.c.token_hash == token_hash))).first()
        return _app_password(row) if row else None

    async def list_for(self, user_id: UserId) -> list[AppPassword]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(app_passwords).where(app_passwords.c.user_id == user_id)
                                       .order_by(app_passwords.c.id))).all()
        return [_app_password(r) for r in rows]

    async def delete(self, app_password_id: AppPasswordId) -> bool:
        async with self.db.transaction("app_password_delete") as conn:
            result = await conn.execute(app_passwords.delete().where(app_passwords.c.id == app_password_id))
        return bool(result.rowcount)

    async def touch(self, app_password_id: AppPasswordId, now: int) -> None:
        async with self.db.transaction("app_password_touch") as conn:
            await conn.execute(app_passwords.update().where(app_passwords.c.id == app_password_id)
                               .values(last_used=now))


def _web_session(row: Any) -> WebSession:
    return WebSession(WebSessionId(row.id), UserId(row.user_id) if row.user_id else None, row.csrf_token,
                      int(row.created_at), int(row.last_seen))


class WebSessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, token_hash: str, csrf_token: str, user_id: UserId | None, now: int) -> WebSession:
        async with self.db.transaction("web_session_create") as conn:
            result = await conn.execute(web_sessions.insert().values(
                token_hash=token_hash, csrf_token=csrf_token, user_id=user_id, created_at=now, last_seen=now))
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        assert new_id is not None
        return WebSession(WebSessionId(int(new_id)), user_id, csrf_token, now, now)

    async def find(self, token_hash: str) -> WebSession | None:
        async with self.db.read() as conn:
            row = (await conn.execute(
                sa.select(web_sessions).where(web_sessions.c.token_hash == token_hash))).first()
        return _web_session(row) if row else None

    async def touch(self, session_id: WebSessionId, now: int) -> None:
        async with self.db.transaction("web_session_touch") as conn:
            await conn.execute(web_sessions.update().where(web_sessions.c.id == session_id).values(last_seen=now))

    async def set_user(self, session_id: WebSessionId, user_id: UserId | None) -> None:
        async with self.db.transaction("web_session_login") as conn:
            await conn.execute(web_sessions.update().where(web_sessions.c.id == session_id)
                               .values(user_id=user_id))

    async def delete(self, session_id: WebSessionId) -> None:
        async with self.db.transaction("web_session_delete") as conn:
            await conn.execute(web_sessions.delete().where(web_sessions.c.id == session_id))

    async def delete_idle(self, before: int) -> int:
        async with self.db.transaction("web_session_expire") as conn:
            result = await conn.execute(web_sessions.delete().where(web_sessions.c.last_seen < before))
        return int(result.rowcount or 0)

    async def count(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(web_sessions))).scalar_one())


def _login_flow(row: Any) -> LoginFlow:
    return LoginFlow(int(row.id), row.client_name, UserId(row.user_id) if row.user_id else None,
                     int(row.created_at))


class LoginFlowStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, poll_token_hash: str, login_token_hash: str, client_name: str, now: int) -> LoginFlow:
        async with self.db.transaction("login_flow_create") as conn:
            result = await conn.execute(login_flows.insert().values(
                poll_token_hash=poll_token_hash, login_token_hash=login_token_hash, client_name=client_name,
                user_id=None, created_at=now))
            new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        assert new_id is not None
        return LoginFlow(int(new_id), client_name, None, now)

    async def by_login_token(self, login_token_hash: str) -> LoginFlow | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(login_flows).where(
                login_flows.c.login_token_hash == login_token_hash))).first()
        return _login_flow(row) if row else None

    async def grant(self, flow_id: int, user_id: UserId) -> bool:
        async with self.db.transaction("login_flow_grant") as conn:
            result = await conn.execute(login_flows.update().where(
                login_flows.c.id == flow_id, login_flows.c.user_id.is_(None)).values(user_id=user_id))
        return bool(result.rowcount)

    async def take_granted(self, poll_token_hash: str, *, not_before: int) -> LoginFlow | None:
        """Remove and return a granted, unexpired flow: each flow hands out its password once."""
        async with self.db.transaction("login_flow_take") as conn:
            row = (await conn.execute(sa.select(login_flows).where(
                login_flows.c.poll_token_hash == poll_token_hash,
                login_flows.c.user_id.is_not(None),
                login_flows.c.created_at >= not_before,
            ))).first()
            if row is None:
                return None
            deleted = await conn.execute(login_flows.delete().where(login_flows.c.id == row.id))
            if not deleted.rowcount:
                return None
        return _login_flow(row)

    async def delete_older_than(self, before: int) -> int:
        async with self.db.transaction("login_flow_expire") as conn:
            result = await conn.execute(login_flows.delete().where(login_flows.c.created_at < before))
        return int(result.rowcount or 0)


class AuthFailureStore:
    """Failed attempts by (action, address); the subject is what a success clears by."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def count_since(self, action: str, address: str, since: float) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(
                sa.select(sa.func.count()).select_from(auth_failures).where(
                    auth_failures.c.action == action, auth_failures.c.address == address,
                    auth_failures.c.occurred_at >= since)
            )).scalar_one())

    async def record(self, action: str, address: str, subject: str, now: float) -> None:
        async with self.db.transaction("auth_failure_record") as conn:
            await conn.execute(auth_failures.insert().values(action=action, address=address, subject=subject,
                                                             occurred_at=now))

    async def clear(self, action: str, address: str, subject: str) -> None:
        async with self.db.transaction("auth_failure_clear") as conn:
            await conn.execute(auth_failures.delete().where(
                auth_failures.c.action == action, auth_failures.c.address == address,
                auth_failures.c.subject == subject))

    async def delete_older_than(self, before: float) -> int:
        async with self.db.transaction("auth_failure_expire") as conn:
            result = await conn.execute(auth_failures.delete().where(auth_failures.c.occurred_at < before))
        return int(result.rowcount or 0)
