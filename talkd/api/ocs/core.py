"""Nextcloud's own OCS API that clients need: capabilities, the current user, user and group
provisioning, and app passwords. Status codes follow Nextcloud's provisioning_api and
core/Controller/AppPasswordController.php; the rules behind them live in domain/provisioning.py."""

from __future__ import annotations

from typing import Any

from talkd.api.errors import ErrorMap, OcsError
from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.api.ocs.serializers import user_data
from talkd.domain.model import User
from talkd.domain.provisioning import Actor, Provisioning
from talkd.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from talkd.protocol.ocs import RESPOND_NOT_FOUND

router = OcsRouter()


@router.get("/cloud/capabilities", access=Access.PUBLIC)
async def capabilities(req: OcsRequest) -> Any:
    return req.services.capabilities.document()


def _provisioning(req: OcsRequest) -> Provisioning:
    return Provisioning(req.services.accounts, Actor(req.user.id, req.identity.is_admin))


async def _user_data(req: OcsRequest, user: User) -> dict[str, Any]:
    groups = await req.services.accounts.groups_of(user.id)
    return user_data(user, groups, viewer_is_admin=req.identity.is_admin, is_self=user.id == req.user.id)


@router.get("/cloud/user")
async def current_user(req: OcsRequest) -> Any:
    return await _user_data(req, req.user)


# Users --------------------------------------------------------------------------------------------
# Codes follow apps/provisioning_api/lib/Controller/UsersController.php; a route's `errors` map
# turns the domain's reasons (see domain/provisioning.py) into them.


def _paging(req: OcsRequest) -> tuple[str, int | None, int]:
    search = req.params.string("search", "", max_length=255)
    limit = req.params.integer("limit", -1, minimum=-1, maximum=10_000)
    offset = req.params.integer("offset", 0, minimum=0, maximum=10_000_000)
    return search, (None if limit < 0 else limit), offset


@router.get("/cloud/user/fields")
async def editable_fields(req: OcsRequest) -> Any:
    """The profile fields the current user may change here (Nextcloud's getEditableFields)."""
    return ["displayname", "email"]


@router.get("/cloud/users")
async def list_users(req: OcsRequest) -> Any:
    users = await _provisioning(req).list_users(*_paging(req))
    return {"users": [u.id for u in users]}


@router.post("/cloud/users", errors={
    AlreadyExists: 102, "group-not-found": 104, "group-privileges": 105, "group-required": 106,
    "email-required": 108, InvalidInput: 101})
async def add_user(req: OcsRequest) -> Any:
    p = req.params
    user = await _provisioning(req).create_user(
        p.string("userid", "", max_length=255),
        password=p.string("password", "", max_length=1024),
        display_name=p.string("displayName", "", max_length=1024),
        email=p.string("email", "", max_length=1024),
        groups=tuple(p.strings("groups", max_items=100)))
    return {"id": user.id}


@router.get("/cloud/users/{userId}", errors={Forbidden: RESPOND_NOT_FOUND})
async def get_user(req: OcsRequest) -> Any:
    return await _user_data(req, await _provisioning(req).view_user(req.match("userId")))


@router.put("/cloud/users/{userId}", errors={
    NotFound: RESPOND_NOT_FOUND, "not-permitted": RESPOND_NOT_FOUND, "field-not-editable": 113,
    "password-too-long": 102, "password-empty": 107, InvalidInput: 101})
async def edit_user(req: OcsRequest) -> Any:
    key = req.params.string("key", "", max_length=64)
    value = req.params.string("value", "", max_length=1024)
    await _provisioning(req).edit_user(req.match("userId"), key, value)
    return []


@router.delete("/cloud/users/{userId}", errors={
    NotFound: RESPOND_NOT_FOUND, "not-permitted": RESPOND_NOT_FOUND, Forbidden: 101})
async def delete_user(req: OcsRequest) -> Any:
    await _provisioning(req).delete_user(req.match("userId"))
    return []


_ENABLE_ERRORS: ErrorMap = {NotFound: 101, "self-target": 101, Forbidden: RESPOND_NOT_FOUND}


@router.put("/cloud/users/{userId}/{switch:enable|disable}", errors=_ENABLE_ERRORS)
async def set_user_enabled(req: OcsRequest) -> Any:
    await _provisioning(req).set_enabled(req.match("userId"), req.match("switch") == "enable")
    return []


# A user's groups ---------------------------------------------------------------------------------


@router.get("/cloud/users/{userId}/groups", errors={NotFound: RESPOND_NOT_FOUND, Forbidden: RESPOND_NOT_FOUND})
async def user_groups(req: OcsRequest) -> Any:
    return {"groups": list(await _provisioning(req).groups_of_user(req.match("userId")))}


_MEMBERSHIP_ERRORS: ErrorMap = {
    InvalidInput: 101, "group-not-found": 102, "user-not-found": 103, "not-permitted": 104,
    "admin-self-removal": 105, "last-admin": 105}


@router.post("/cloud/users/{userId}/groups", errors=_MEMBERSHIP_ERRORS)
async def add_to_group(req: OcsRequest) -> Any:
    group_id = req.params.string("groupid", "", max_length=255)
    await _provisioning(req).add_to_group(req.match("userId"), group_id)
    return []


@router.delete("/cloud/users/{userId}/groups", errors=_MEMBERSHIP_ERRORS)
async def remove_from_group(req: OcsRequest) -> Any:
    group_id = req.params.string("groupid", "", max_length=255)
    await _provisioning(req).remove_from_group(req.match("userId"), group_id)
    return []


# Groups -------------------------------------------------------------------------------------------
# apps/provisioning_api/lib/Controller/GroupsController.php: listing is open to every user, creating
# and deleting need an admin, and a group's members are visible to admins and to its members.


@router.get("/cloud/groups")
async def list_groups(req: OcsRequest) -> Any:
    groups = await req.services.accounts.list_groups(*_paging(req))
    return {"groups": [g.id for g in groups]}


@router.post("/cloud/groups", access=Access.ADMIN, errors={InvalidInput: 101, AlreadyExists: 102})
async def add_group(req: OcsRequest) -> Any:
    await req.services.accounts.create_group(req.params.string("groupid", "", max_length=255),
                                             req.params.string("displayname", "", max_length=1024))
    return []


# Registered before /cloud/groups/{groupId}: "details" is not a group id.
@router.get("/cloud/groups/details")
async def group_details(req: OcsRequest) -> Any:
    """Groups with display names and member counts (Nextcloud's GroupsController::getGroupsDetails)."""
    groups = await req.services.accounts.list_groups(*_paging(req))
    counts = await req.services.accounts.member_counts([g.id for g in groups])
    return {"groups": [{"id": g.id, "displayname": g.display_name, "usercount": counts.get(g.id, 0),
                        "disabled": 0, "canAdd": req.identity.is_admin, "canRemove": req.identity.is_admin}
                       for g in groups]}


@router.put("/cloud/groups/{groupId}", access=Access.ADMIN, errors={NotFound: 101, InvalidInput: 101})
async def edit_group(req: OcsRequest) -> Any:
    """Nextcloud's updateGroup: only `key=displayname` is editable."""
    if req.params.string("key", "", max_length=64) != "displayname":
        raise OcsError(101, "Invalid key")
    await req.services.accounts.rename_group(req.match("groupId"), req.params.string("value", "", max_length=1024))
    return []


@router.get("/cloud/groups/{groupId}/subadmins", access=Access.ADMIN, errors={NotFound: 101})
async def group_subadmins(req: OcsRequest) -> Any:
    """talkd has no sub-admins (only admins): an existing group has none."""
    await req.services.accounts.get_group(req.match("groupId"))
    return []


@router.get("/cloud/groups/{groupId}")
async def group_members(req: OcsRequest) -> Any:
    return {"users": list(await _provisioning(req).group_members(req.match("groupId")))}


@router.get("/cloud/groups/{groupId}/users")
async def group_users(req: OcsRequest) -> Any:
    return {"users": list(await _provisioning(req).group_members(req.match("groupId")))}


@router.delete("/cloud/groups/{groupId}", access=Access.ADMIN, errors={NotFound: 101, Forbidden: 102})
async def delete_group(req: OcsRequest) -> Any:
    await req.services.accounts.delete_group(req.match("groupId"))
    return []


# App passwords ------------------------------------------------------------------------------------


@router.get("/core/getapppassword")
async def get_app_password(req: OcsRequest) -> Any:
    name = req.http.headers.get("User-Agent", "")
    created = await req.services.auth.new_app_password(req.identity, name)
    return {"apppassword": created.password}


@router.delete("/core/apppassword")
async def delete_app_password(req: OcsRequest) -> Any:
    await req.services.auth.revoke_own_app_password(req.identity)
    return []
