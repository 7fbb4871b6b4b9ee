"""What the account tables hold, read straight from the database, to show that a refused request
changed nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from talkd.storage.database import Database
from talkd.storage.tables import app_passwords, group_members, groups, login_flows, users


async def account_state(db: Database) -> dict[str, Any]:
    async with db.read() as conn:
        user_rows = (await conn.execute(sa.select(
            users.c.id, users.c.display_name, users.c.email, users.c.password_hash, users.c.enabled
        ).order_by(users.c.id))).all()
        group_rows = (await conn.execute(sa.select(groups).order_by(groups.c.id))).all()
        member_rows = (await conn.execute(sa.select(group_members).order_by(
            group_members.c.group_id, group_members.c.user_id))).all()
        password_rows = (await conn.execute(sa.select(
            app_passwords.c.id, app_passwords.c.user_id, app_passwords.c.token_hash
        ).order_by(app_passwords.c.id))).all()
        flow_rows = (await conn.execute(sa.select(login_flows.c.id, login_flows.c.user_id))).all()
    return {
        "users": [tuple(r) for r in user_rows],
        "groups": [tuple(r) for r in group_rows],
        "members": [tuple(r) for r in member_rows],
        "app_passwords": [tuple(r) for r in password_rows],
        "login_flows": [tuple(r) for r in flow_rows],
    }
