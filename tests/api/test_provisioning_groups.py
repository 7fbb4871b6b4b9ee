"""Groups and memberships through the provisioning API, as GroupsController and UsersController
answer them (codes 101..105 for memberships), under both OCS versions."""

from __future__ import annotations

from typing import Any

import pytest

from talkd.errors import Forbidden
from talkd.ids import UserId
from tests.helpers.client import TalkClient
from tests.helpers.locks import behind_held_memberships
from tests.helpers.state import account_state

VERSIONS = pytest.mark.parametrize("version", [1, 2])


async def _refused(talk: TalkClient, code: int, method: str, path: str, **kwargs: Any) -> None:
    before = await account_state(talk.services.db)
    (await talk.ocs(method, path, **kwargs)).expect(code)
    assert await account_state(talk.services.db) == before


# GET/POST /cloud/groups ---------------------------------------------------------------------------


@VERSIONS
async def test_admin_creates_groups_and_anyone_lists_them(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    (await talk.ocs("POST", "/cloud/groups", user="admin", version=version,
                    json={"groupid": "staff", "displayname": "The Staff"})).expect(200)
    (await talk.ocs("POST", "/cloud/groups", user="admin", version=version, data={"groupid": "crew"})).expect(200)
    assert (await talk.services.accounts.get_group("staff")).display_name == "The Staff"
    reply = (await talk.ocs("GET", "/cloud/groups", user="alice", version=version)).expect(200)
    assert reply.data == {"groups": ["admin", "crew", "staff"]}
    page = await talk.ocs("GET", "/cloud/groups", user="alice", params={"search": "st", "limit": "5"})
    assert page.data == {"groups": ["staff"]}


@VERSIONS
async def test_group_creation_refusals_follow_nextcloud(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    await talk.services.accounts.create_group("staff")
    reply = await talk.ocs("POST", "/cloud/groups", user="admin", version=version, json={"groupid": "staff"})
    assert reply.expect(102).message == "group exists"
    empty = await talk.ocs("POST", "/cloud/groups", user="admin", version=version, json={})
    assert empty.expect(101).message == "Invalid group name"
    for bad in ("x" * 65, " padded", "a/b", "x" * 300):
        await _refused(talk, 101, "POST", "/cloud/groups", user="admin", version=version, json={"groupid": bad})
    denied = await talk.ocs("POST", "/cloud/groups", user="alice", version=version, json={"groupid": "mine"})
    assert denied.expect(403).message == "Logged in account must be an admin"
    assert await talk.services.accounts.find_group("mine") is None


# GET/DELETE /cloud/groups/{id} --------------------------------------------------------------------


@VERSIONS
@pytest.mark.parametrize("suffix", ["", "/users"])
async def test_group_members_are_visible_to_admins_and_members(talk: TalkClient, version: int,
                                                               suffix: str) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice", groups=("staff",))
    await talk.make_user("bob")
    path = f"/cloud/groups/staff{suffix}"
    assert (await talk.ocs("GET", path, user="admin", version=version)).expect(200).data == {"users": ["alice"]}
    assert (await talk.ocs("GET", path, user="alice", version=version)).expect(200).data == {"users": ["alice"]}
    (await talk.ocs("GET", path, user="bob", version=version)).expect(403)
    missing = await talk.ocs("GET", f"/cloud/groups/nope{suffix}", user="admin", version=version)
    assert missing.expect(404).message == "The requested group could not be found"


@VERSIONS
async def test_deleting_groups_follows_nextcloud(talk: TalkClient, version: int) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice", groups=("staff",))
    await _refused(talk, 403, "DELETE", "/cloud/groups/staff", user="alice", version=version)
    await _refused(talk, 101, "DELETE", "/cloud/groups/nope", user="admin", version=version)
    await _refused(talk, 102, "DELETE", "/cloud/groups/admin", user="admin", version=version)
    (await talk.ocs("DELETE", "/cloud/groups/staff", user="admin", version=version)).expect(200)
    assert await talk.services.accounts.find_group("staff") is None
    assert await talk.services.accounts.groups_of(UserId("alice")) == []


# GET /cloud/users/{id}/groups ---------------------------------------------------------------------


@VERSIONS
async def test_a_users_groups_are_visible_to_themself_and_admins(talk: TalkClient, version: int) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice", groups=("staff",))
    await talk.make_user("bob")
    for caller in ("alice", "admin"):
        reply = await talk.ocs("GET", "/cloud/users/alice/groups", user=caller, version=version)
        assert reply.expect(200).data == {"groups": ["staff"]}
    (await talk.ocs("GET", "/cloud/users/alice/groups", user="bob", version=version)).expect(998)
    (await talk.ocs("GET", "/cloud/users/ghost/groups", user="admin", version=version)).expect(998)


# POST/DELETE /cloud/users/{id}/groups -------------------------------------------------------------


@VERSIONS
async def test_admin_adds_and_removes_members(talk: TalkClient, version: int) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice")
    path = "/cloud/users/alice/groups"
    (await talk.ocs("POST", path, user="admin", version=version, params={"groupid": "staff"})).expect(200)
    (await talk.ocs("POST", path, user="admin", version=version, params={"groupid": "staff"})).expect(200)
    assert await talk.services.accounts.groups_of(UserId("alice")) == ["staff"]
    (await talk.ocs("DELETE", path, user="admin", version=version, json={"groupid": "staff"})).expect(200)
    assert await talk.services.accounts.groups_of(UserId("alice")) == []
    (await talk.ocs("DELETE", path, user="admin", version=version, json={"groupid": "staff"})).expect(200)


@VERSIONS
@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_membership_refusals_are_101_to_104(talk: TalkClient, version: int, method: str) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice", groups=("staff",))
    await talk.make_user("bob")
    kw = {"version": version}
    await _refused(talk, 101, method, "/cloud/users/bob/groups", user="admin", **kw)
    await _refused(talk, 101, method, "/cloud/users/bob/groups", user="admin", **kw, params={"groupid": ""})
    await _refused(talk, 102, method, "/cloud/users/bob/groups", user="admin", **kw, params={"groupid": "nope"})
    await _refused(talk, 102, method, "/cloud/users/ghost/groups", user="admin", **kw, params={"groupid": "nope"})
    await _refused(talk, 103, method, "/cloud/users/ghost/groups", user="admin", **kw, params={"groupid": "staff"})
    await _refused(talk, 104, method, "/cloud/users/bob/groups", user="alice", **kw, params={"groupid": "staff"})
    await _refused(talk, 104, method, "/cloud/users/alice/groups", user="alice", **kw, params={"groupid": "staff"})


@VERSIONS
async def test_admin_cannot_leave_the_admin_group_but_can_remove_another_admin(talk: TalkClient,
                                                                                 version: int) -> None:
    await talk.make_user("root2", admin=True)
    reply = await talk.ocs("DELETE", "/cloud/users/admin/groups", user="admin", version=version,
                           params={"groupid": "admin"})
    assert reply.expect(105).message == "Cannot remove yourself from the admin group"
    assert await talk.services.accounts.is_admin(UserId("admin"))
    (await talk.ocs("DELETE", "/cloud/users/root2/groups", user="admin", version=version,
                    params={"groupid": "admin"})).expect(200)
    assert not await talk.services.accounts.is_admin(UserId("root2"))


# Group details, renaming, sub-admins ---------------------------------------------------------------


@VERSIONS
async def test_group_details_list_display_names_and_member_counts(talk: TalkClient, version: int) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice", groups=("staff",))
    await talk.services.accounts.rename_group("staff", "The Staff")
    reply = (await talk.ocs("GET", "/cloud/groups/details", user="admin", version=version,
                            params={"search": "st"})).expect(200)
    assert reply.data == {"groups": [{"id": "staff", "displayname": "The Staff", "usercount": 1, "disabled": 0,
                                      "canAdd": True, "canRemove": True}]}


@VERSIONS
async def test_only_admins_rename_groups_and_only_the_display_name(talk: TalkClient, version: int) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice", groups=("staff",))
    (await talk.ocs("PUT", "/cloud/groups/staff", user="admin", version=version,
                    data={"key": "displayname", "value": "Staff members"})).expect(200)
    assert (await talk.services.accounts.get_group("staff")).display_name == "Staff members"
    await _refused(talk, 403, "PUT", "/cloud/groups/staff", user="alice", version=version,
                   data={"key": "displayname", "value": "Mine"})
    await _refused(talk, 101, "PUT", "/cloud/groups/staff", user="admin", version=version,
                   data={"key": "gid", "value": "other"})
    await _refused(talk, 101, "PUT", "/cloud/groups/staff", user="admin", version=version,
                   data={"key": "displayname", "value": "   "})
    await _refused(talk, 101, "PUT", "/cloud/groups/nobody", user="admin", version=version,
                   data={"key": "displayname", "value": "Nobody"})


@VERSIONS
async def test_groups_have_no_subadmins_and_users_edit_name_and_email(talk: TalkClient, version: int) -> None:
    await talk.services.accounts.create_group("staff")
    await talk.make_user("alice", groups=("staff",))
    none = (await talk.ocs("GET", "/cloud/groups/staff/subadmins", user="admin", version=version)).expect(200)
    assert none.data == []
    (await talk.ocs("GET", "/cloud/groups/nobody/subadmins", user="admin", version=version)).expect(101)
    (await talk.ocs("GET", "/cloud/groups/staff/subadmins", user="alice", version=version)).expect(403)
    fields = (await talk.ocs("GET", "/cloud/user/fields", user="alice", version=version)).expect(200)
    assert fields.data == ["displayname", "email"]



@pytest.mark.parametrize("action", ["remove", "delete"])
async def test_two_admins_demoting_each_other_at_once_leave_one_admin(talk: TalkClient, action: str) -> None:
    # The service, not the API: over HTTP the loser may already fail for having lost its own rights.
    accounts = talk.services.accounts
    await talk.make_user("root2", admin=True)

    async def demote(user_id: str) -> str:
        try:
            if action == "remove":
                await accounts.remove_from_group(user_id, "admin")
            else:
                await accounts.delete_user(user_id)
        except Forbidden as refusal:
            return refusal.reason
        return "done"

    outcomes = await behind_held_memberships(talk.services.db, demote("admin"), demote("root2"))
    assert sorted(outcomes) == ["done", "last-admin"]
    assert len(await accounts.members_of("admin")) == 1

async def test_a_removed_admin_loses_the_rights_at_once(talk: TalkClient) -> None:
    await talk.make_user("root2", admin=True)
    # Signed in twice: the second request trusts the remembered identity, admin flag included.
    for _ in range(2):
        assert (await talk.ocs("GET", "/cloud/users", user="root2")).expect(200).data["users"]
    (await talk.ocs("DELETE", "/cloud/users/root2/groups", user="admin", params={"groupid": "admin"})).expect(200)
    assert (await talk.ocs("GET", "/cloud/users", user="root2")).expect(200).data["users"] == []
