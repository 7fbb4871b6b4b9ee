"""The provisioning API's rules: what an actor may do to accounts, checked in the order Nextcloud's
provisioning_api (UsersController, GroupsController) checks them, so that the first rule that fails
is the one the answer reports.

talkd has admins and users, no sub-admins: an admin manages every account, a user only themself.
Each refusal carries a `reason`; the routes turn reasons into Nextcloud's numeric codes.

    reason                  raised when
    user-not-found          the target user does not exist (NotFound)
    group-not-found         the named group does not exist (NotFound)
    user-exists             creating an id that is taken (AlreadyExists)
    not-permitted           the actor may not see or touch this account (Forbidden)
    group-required          a non-admin creates a user without naming a group (Forbidden)
    group-privileges        a non-admin creates a user in a group (Forbidden)
    self-target             deleting, enabling or disabling oneself (Forbidden)
    admin-self-removal      an admin leaving the admin group (Forbidden)
    field-not-editable      editing a key the actor may not (or talkd cannot) change (Forbidden)
    missing-group           no group id given for a membership change (InvalidInput)
    email-required          neither a password nor an email address to send a link to (InvalidInput)
"""

from __future__ import annotations

from dataclasses import dataclass

from talkd.crypto import random_token
from talkd.domain.accounts import AccountService
from talkd.domain.model import ADMIN_GROUP, User
from talkd.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from talkd.ids import GroupId, UserId

# The keys PUT /cloud/users/{id} accepts; Nextcloud knows more (quota, phone, language...), which
# talkd does not store, so they are refused like any key the actor may not edit.
EDITABLE_FIELDS = frozenset({"display", "displayname", "email", "password"})
GENERATED_PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class Actor:
    user_id: UserId
    is_admin: bool

    def is_self(self, user: User) -> bool:
        return user.id == self.user_id

    def may_view(self, user: User) -> bool:
        return self.is_admin or self.is_self(user)

    def may_edit(self, user: User) -> bool:
        return self.is_admin or self.is_self(user)

    def may_manage(self, user: User) -> bool:
        """Delete, enable, disable, change group membership: admins only (no sub-admins here)."""
        return self.is_admin


def _not_permitted() -> Forbidden:
    return Forbidden("", reason="not-permitted")


class Provisioning:
    """The account operations of the provisioning API, performed by `actor`."""

    def __init__(self, accounts: AccountService, actor: Actor) -> None:
        self.accounts = accounts
        self.actor = actor

    async def _visible(self, user_id: str) -> User:
        user = await self.accounts.get_user(user_id)
        if not self.actor.may_view(user):
            raise _not_permitted()
        return user

    # Users ----------------------------------------------------------------------------------------

    async def list_users(self, search: str, limit: int | None, offset: int) -> list[User]:
        """Admins see every match; anyone else sees none (an empty list, not an error)."""
        if not self.actor.is_admin:
            return []
        return await self.accounts.list_users(search, limit, offset)

    async def create_user(self, user_id: str, *, password: str, display_name: str, email: str,
                          groups: tuple[str, ...]) -> User:
        if await self.accounts.find_user(user_id) is not None:
            raise AlreadyExists("User already exists", reason="user-exists")
        for group_id in groups:
            await self.accounts.get_group(group_id)
            if not self.actor.is_admin:
                raise Forbidden(f"insufficient privileges for group {group_id}", reason="group-privileges")
        if not groups and not self.actor.is_admin:
            raise Forbidden("no group specified (required for subadmins)", reason="group-required")
        if not password:
            if not email.strip():
                raise InvalidInput("To send a password link to the user an email address is required.",
                                   reason="email-required")
            # talkd sends no mail yet: the account gets a random password an admin can reset.
            password = random_token(GENERATED_PASSWORD_LENGTH)
        return await self.accounts.create_user(user_id, password, display_name=display_name, email=email,
                                               groups=groups)

    async def view_user(self, user_id: str) -> User:
        return await self._visible(user_id)

    async def edit_user(self, user_id: str, key: str, value: str) -> None:
        target = await self.accounts.get_user(user_id)
        if not self.actor.may_edit(target):
            raise _not_permitted()
        if key not in EDITABLE_FIELDS:
            raise Forbidden(f"The field {key!r} cannot be edited", reason="field-not-editable")
        if key in ("display", "displayname"):
            await self.accounts.set_display_name(target.id, value)
        elif key == "email":
            await self.accounts.set_email(target.id, value)
        else:
            await self.accounts.set_password(target.id, value)

    async def delete_user(self, user_id: str) -> None:
        target = await self.accounts.get_user(user_id)
        if self.actor.is_self(target):
            raise Forbidden("You cannot delete yourself", reason="self-target")
        if not self.actor.may_manage(target):
            raise _not_permitted()
        await self.accounts.delete_user(target.id)

    async def set_enabled(self, user_id: str, enabled: bool) -> None:
        target = await self.accounts.get_user(user_id)
        if self.actor.is_self(target):
            raise Forbidden("You cannot enable or disable yourself", reason="self-target")
        if not self.actor.may_manage(target):
            raise _not_permitted()
        await self.accounts.set_enabled(target.id, enabled)

    # Memberships ----------------------------------------------------------------------------------

    async def groups_of_user(self, user_id: str) -> list[GroupId]:
        target = await self._visible(user_id)
        return await self.accounts.groups_of(target.id)

    async def _membership(self, user_id: str, group_id: str) -> tuple[User, GroupId]:
        if not group_id.strip():
            raise InvalidInput("No group given", reason="missing-group")
        group = await self.accounts.get_group(group_id)
        target = await self.accounts.get_user(user_id)
        if not self.actor.may_manage(target):
            raise _not_permitted()
        return target, group.id

    async def add_to_group(self, user_id: str, group_id: str) -> None:
        target, gid = await self._membership(user_id, group_id)
        await self.accounts.add_to_group(target.id, gid)

    async def remove_from_group(self, user_id: str, group_id: str) -> None:
        target, gid = await self._membership(user_id, group_id)
        if self.actor.is_self(target) and gid == ADMIN_GROUP:
            raise Forbidden("Cannot remove yourself from the admin group", reason="admin-self-removal")
        await self.accounts.remove_from_group(target.id, gid)

    # Groups ---------------------------------------------------------------------------------------

    async def group_members(self, group_id: str) -> list[UserId]:
        """Admins and the group's own members may list it (Nextcloud's current rule)."""
        group = await self.accounts.find_group(group_id)
        if group is None:
            raise NotFound("The requested group could not be found", reason="group-not-found")
        members = await self.accounts.members_of(group.id)
        if not self.actor.is_admin and self.actor.user_id not in members:
            raise _not_permitted()
        return members

