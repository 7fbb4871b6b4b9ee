"""The provisioning API for users, as apps/provisioning_api's UsersController answers it: every
success and every refusal, under both OCS versions, and nothing changes when a request is refused."""

from __future__ import annotations

from typing import Any

import pytest

from talkd.ids import UserId
from tests.helpers.client import TalkClient
from tests.helpers.state import account_state

VERSIONS = pytest.mark.parametrize("version", [1, 2])


async def _refused(talk: TalkClient, code: int, method: str, path: str, **kwargs: Any) -> None:
    """The request gets `code` and leaves every account table as it was."""
    before = await account_state(talk.services.db)
    (await talk.ocs(method, path, **kwargs)).expect(code)
    assert await account_state(talk.services.db) == before


# GET /cloud/users ---------------------------------------------------------------------------------


@VERSIONS
async def test_admin_lists_users_with_search_and_paging(talk: TalkClient, version: int) -> None:
    for name in ("carol", "bob", "alice"):
        await talk.make_user(name)
    reply = (await talk.ocs("GET", "/cloud/users", user="admin", version=version)).expect(200)
    assert reply.data == {"users": ["admin", "alice", "bob", "carol"]}
    page = await talk.ocs("GET", "/cloud/users", user="admin", version=version,
                          params={"limit": "2", "offset": "1"})
    assert page.expect(200).data == {"users": ["alice", "bob"]}
    found = await talk.ocs("GET", "/cloud/users", user="admin", version=version, params={"search": "AR"})
    assert found.data == {"users": ["carol"]}


@VERSIONS
async def test_non_admin_listing_users_gets_an_empty_list(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    reply = await talk.ocs("GET", "/cloud/users", user="alice", version=version)
    assert reply.expect(200).data == {"users": []}


async def test_listing_users_rejects_a_bad_limit(talk: TalkClient) -> None:
    (await talk.ocs("GET", "/cloud/users", user="admin", params={"limit": "many"})).expect(400)
    (await talk.ocs("GET", "/cloud/users", user="admin", params={"search": "x" * 256})).expect(400)


async def test_listing_users_needs_credentials(talk: TalkClient) -> None:
    (await talk.ocs("GET", "/cloud/users")).expect(997)


# POST /cloud/users --------------------------------------------------------------------------------


@VERSIONS
async def test_admin_creates_a_user_who_can_then_log_in(talk: TalkClient, version: int) -> None:
    await talk.services.accounts.create_group("staff")
    reply = await talk.ocs("POST", "/cloud/users", user="admin", version=version, json={
        "userid": "frank", "password": "frank-secret", "displayName": "Frank Zappa",
        "email": "frank@example.org", "groups": ["staff"]})
    assert reply.expect(200).data == {"id": "frank"}
    me = await talk.ocs("GET", "/cloud/user", user="frank", password="frank-secret")
    assert me.expect(200).data["displayname"] == "Frank Zappa"
    assert me.data["email"] == "frank@example.org" and me.data["groups"] == ["staff"]


async def test_form_body_with_php_style_group_list_creates_a_user(talk: TalkClient) -> None:
    for gid in ("a", "b"):
        await talk.services.accounts.create_group(gid)
    reply = await talk.ocs("POST", "/cloud/users", user="admin",
                           data="userid=gina&password=gina-secret&groups[]=a&groups[]=b",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    reply.expect(200)
    assert await talk.services.accounts.groups_of(UserId("gina")) == ["a", "b"]


async def test_user_without_password_but_with_email_gets_a_generated_one(talk: TalkClient) -> None:
    reply = await talk.ocs("POST", "/cloud/users", user="admin",
                           json={"userid": "hank", "email": "hank@example.org"})
    reply.expect(200)
    user = await talk.services.accounts.get_user("hank")
    assert user.email == "hank@example.org" and user.password_hash


@VERSIONS
async def test_duplicate_user_is_102_whatever_the_case(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    for userid in ("alice", "ALICE"):
        await _refused(talk, 102, "POST", "/cloud/users", user="admin", version=version,
                       json={"userid": userid, "password": "another-secret"})


@VERSIONS
async def test_creating_a_user_in_a_missing_group_is_104(talk: TalkClient, version: int) -> None:
    await _refused(talk, 104, "POST", "/cloud/users", user="admin", version=version,
                   json={"userid": "ivan", "password": "ivan-secret", "groups": ["nope"]})


@VERSIONS
async def test_invalid_user_ids_are_101(talk: TalkClient, version: int) -> None:
    for userid in ("", "bad/slash", " padded", "x" * 65, "x" * 300, "tab\tchar"):
        await _refused(talk, 101, "POST", "/cloud/users", user="admin", version=version,
                       json={"userid": userid, "password": "some-secret"})


async def test_overlong_password_display_name_and_bad_email_are_101(talk: TalkClient) -> None:
    for body in ({"password": "p" * 470},
                 {"password": "fine-secret", "displayName": "d" * 65},
                 {"password": "fine-secret", "email": "not-an-address"}):
        await _refused(talk, 101, "POST", "/cloud/users", user="admin", json={"userid": "judy", **body})


@VERSIONS
async def test_neither_password_nor_email_is_108(talk: TalkClient, version: int) -> None:
    reply = await talk.ocs("POST", "/cloud/users", user="admin", version=version, json={"userid": "kim"})
    assert reply.expect(108).message == "To send a password link to the user an email address is required."
    assert await talk.services.accounts.find_user("kim") is None


@VERSIONS
async def test_non_admin_creating_a_user_gets_nextclouds_codes(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    await talk.services.accounts.create_group("staff")
    kwargs = {"user": "alice", "version": version}
    # Checked in Nextcloud's order: taken id, then each group, then "no group for a sub-admin".
    await _refused(talk, 102, "POST", "/cloud/users", **kwargs, json={"userid": "admin", "password": "x-secret"})
    await _refused(talk, 104, "POST", "/cloud/users", **kwargs,
                   json={"userid": "lou", "password": "lou-secret", "groups": ["nope"]})
    await _refused(talk, 105, "POST", "/cloud/users", **kwargs,
                   json={"userid": "lou", "password": "lou-secret", "groups": ["staff"]})
    await _refused(talk, 106, "POST", "/cloud/users", **kwargs, json={"userid": "lou", "password": "lou-secret"})


# GET /cloud/users/{id} and /cloud/user -----------------------------------------------------------


@VERSIONS
async def test_current_user_describes_the_caller(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice", display_name="Alice A.", groups=())
    reply = (await talk.ocs("GET", "/cloud/user", user="alice", version=version)).expect(200)
    data = reply.data
    assert data["id"] == "alice" and data["display-name"] == "Alice A." and data["displayname"] == "Alice A."
    assert data["displaynameScope"] == "v2-federated" and data["groups"] == []
    # Only admins see whether an account is enabled and where it lives.
    assert "enabled" not in data and "storageLocation" not in data


async def test_admin_sees_enabled_flag_of_any_user(talk: TalkClient) -> None:
    await talk.make_user("alice")
    reply = (await talk.ocs("GET", "/cloud/users/alice", user="admin")).expect(200)
    assert reply.data["id"] == "alice" and reply.data["enabled"] is True
    assert "displaynameScope" not in reply.data  # scopes only for oneself


async def test_user_reads_their_own_record(talk: TalkClient) -> None:
    await talk.make_user("alice")
    reply = (await talk.ocs("GET", "/cloud/users/alice", user="alice")).expect(200)
    assert reply.data["id"] == "alice" and "enabled" not in reply.data


@VERSIONS
async def test_user_reading_someone_else_gets_998(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    (await talk.ocs("GET", "/cloud/users/bob", user="alice", version=version)).expect(998)


@VERSIONS
async def test_reading_a_missing_user_is_404(talk: TalkClient, version: int) -> None:
    reply = await talk.ocs("GET", "/cloud/users/ghost", user="admin", version=version)
    assert reply.expect(404).message == "User does not exist"
    (await talk.ocs("GET", "/cloud/users/" + "g" * 300, user="admin", version=version)).expect(404)


# PUT /cloud/users/{id} ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["displayname", "display"])
async def test_display_name_can_be_edited_under_both_keys(talk: TalkClient, key: str) -> None:
    await talk.make_user("alice")
    reply = await talk.ocs("PUT", "/cloud/users/alice", user="alice", params={"key": key, "value": "Al"})
    reply.expect(200)
    assert (await talk.services.accounts.get_user("alice")).display_name == "Al"


async def test_empty_display_name_is_ignored(talk: TalkClient) -> None:
    await talk.make_user("alice", display_name="Alice")
    await _refused(talk, 200, "PUT", "/cloud/users/alice", user="admin",
                   params={"key": "displayname", "value": "  "})


async def test_email_can_be_set_and_cleared(talk: TalkClient) -> None:
    await talk.make_user("alice")
    (await talk.ocs("PUT", "/cloud/users/alice", user="admin",
                    json={"key": "email", "value": "a@example.org"})).expect(200)
    assert (await talk.services.accounts.get_user("alice")).email == "a@example.org"
    (await talk.ocs("PUT", "/cloud/users/alice", user="alice", json={"key": "email", "value": ""})).expect(200)
    assert (await talk.services.accounts.get_user("alice")).email is None


async def test_password_change_takes_effect_at_once(talk: TalkClient) -> None:
    await talk.make_user("alice", "old-secret")
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)  # cached from here on
    (await talk.ocs("PUT", "/cloud/users/alice", user="alice",
                    json={"key": "password", "value": "new-secret"})).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="alice", password="old-secret")).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="alice", password="new-secret")).expect(200)


@VERSIONS
async def test_edit_refusals_follow_nextcloud(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    kw = {"version": version}
    await _refused(talk, 998, "PUT", "/cloud/users/ghost", user="admin", **kw,
                   json={"key": "email", "value": "g@example.org"})
    await _refused(talk, 998, "PUT", "/cloud/users/bob", user="alice", **kw,
                   json={"key": "displayname", "value": "Hacked"})
    await _refused(talk, 113, "PUT", "/cloud/users/alice", user="alice", **kw, json={"key": "quota", "value": "1"})
    await _refused(talk, 113, "PUT", "/cloud/users/alice", user="alice", **kw, json={"value": "no key"})
    await _refused(talk, 101, "PUT", "/cloud/users/alice", user="alice", **kw,
                   json={"key": "email", "value": "nope"})
    await _refused(talk, 101, "PUT", "/cloud/users/alice", user="admin", **kw,
                   json={"key": "displayname", "value": "d" * 65})
    await _refused(talk, 102, "PUT", "/cloud/users/alice", user="alice", **kw,
                   json={"key": "password", "value": "p" * 470})
    await _refused(talk, 107, "PUT", "/cloud/users/alice", user="alice", **kw, json={"key": "password", "value": ""})


# DELETE /cloud/users/{id} ------------------------------------------------------------------------


@VERSIONS
async def test_admin_deletes_a_user_whose_credentials_stop_working(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
    (await talk.ocs("DELETE", "/cloud/users/alice", user="admin", version=version)).expect(200)
    assert await talk.services.accounts.find_user("alice") is None
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(997)


@VERSIONS
async def test_delete_refusals_follow_nextcloud(talk: TalkClient, version: int) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    await talk.make_user("root2", admin=True)
    await _refused(talk, 998, "DELETE", "/cloud/users/ghost", user="admin", version=version)
    await _refused(talk, 101, "DELETE", "/cloud/users/admin", user="admin", version=version)
    await _refused(talk, 101, "DELETE", "/cloud/users/alice", user="alice", version=version)
    await _refused(talk, 998, "DELETE", "/cloud/users/bob", user="alice", version=version)
    await _refused(talk, 998, "DELETE", "/cloud/users/root2", user="alice", version=version)


# PUT /cloud/users/{id}/enable|disable --------------------------------------------------------------


async def test_disabled_user_cannot_log_in_until_enabled(talk: TalkClient) -> None:
    await talk.make_user("alice")
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)
    (await talk.ocs("PUT", "/cloud/users/alice/disable", user="admin")).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(997)
    assert (await talk.ocs("GET", "/cloud/users/alice", user="admin")).data["enabled"] is False
    (await talk.ocs("PUT", "/cloud/users/alice/enable", user="admin")).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="alice")).expect(200)


@VERSIONS
@pytest.mark.parametrize("action", ["enable", "disable"])
async def test_enable_disable_refusals_follow_nextcloud(talk: TalkClient, version: int, action: str) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    await _refused(talk, 101, "PUT", f"/cloud/users/ghost/{action}", user="admin", version=version)
    await _refused(talk, 101, "PUT", f"/cloud/users/admin/{action}", user="admin", version=version)
    await _refused(talk, 101, "PUT", f"/cloud/users/alice/{action}", user="alice", version=version)
    await _refused(talk, 998, "PUT", f"/cloud/users/bob/{action}", user="alice", version=version)
