"""nc-py-api, the Python client for Nextcloud, against a real `python -m talkd serve` over TCP:
capabilities, user provisioning and groups, exactly as a script on nc-py-api would use them.

The sync `Nextcloud` class is what most scripts use today (nc-py-api 0.30 deprecates it for
`AsyncNextcloud`, which is exercised too). Not served: sub-admin promotion, avatars, wipe and welcome
mails (talkd has admins only, and no files or mail templates)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nc_py_api import AsyncNextcloud, Nextcloud, NextcloudException, NextcloudExceptionNotFound

from tests.helpers.server import RunningTalkd

pytestmark = [pytest.mark.interop, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def client(server: RunningTalkd, user: str | None = None, password: str | None = None) -> Nextcloud:
    return Nextcloud(nextcloud_url=server.base_url, nc_auth_user=user or server.admin_user,
                     nc_auth_pass=password or server.admin_password)


@pytest.fixture
def nc(talkd_server: RunningTalkd) -> Iterator[Nextcloud]:
    yield client(talkd_server)


def test_capabilities_and_version(nc: Nextcloud) -> None:
    capabilities = nc.capabilities
    assert capabilities["core"]["pollinterval"] > 0
    assert "spreed" in capabilities and isinstance(capabilities["spreed"]["features"], list)
    assert capabilities["spreed"]["config"]["chat"]["max-length"] == 32000
    assert nc.srv_version["major"] >= 27 and nc.srv_version["string"].startswith(str(nc.srv_version["major"]))
    assert nc.talk.available  # nc-py-api's own check that the spreed capability is there
    assert not nc.check_capabilities("spreed")  # "no missing capability"


def test_current_user_is_the_admin(nc: Nextcloud, talkd_server: RunningTalkd) -> None:
    me = nc.users.get_user()
    assert me.user_id == talkd_server.admin_user and me.enabled
    assert "admin" in me.groups


def test_user_lifecycle(nc: Nextcloud, talkd_server: RunningTalkd) -> None:
    nc.users.create("alice", display_name="Alice", password="alice long passphrase", email="alice@example.org")
    nc.users.create("bob", password="bob long passphrase")
    assert sorted(nc.users.get_list()) == ["admin", "alice", "bob"]
    assert nc.users.get_list(mask="ali") == ["alice"]

    alice = nc.users.get_user("alice")
    assert (alice.user_id, alice.display_name, alice.email, alice.enabled) == \
        ("alice", "Alice", "alice@example.org", True)
    assert alice.groups == []

    nc.users.edit("alice", displayname="Alice Liddell", email="liddell@example.org")
    alice = nc.users.get_user("alice")
    assert (alice.display_name, alice.email) == ("Alice Liddell", "liddell@example.org")

    # The new user can log in with nc-py-api itself and sees the changed profile.
    as_alice = client(talkd_server, "alice", "alice long passphrase")
    assert as_alice.users.get_user().display_name == "Alice Liddell"
    # ... but is no admin: creating users is refused (106 "no group specified", as Nextcloud answers
    # a user who is no sub-admin either).
    with pytest.raises(NextcloudException) as refused:
        as_alice.users.create("mallory", password="mallory long passphrase")
    assert refused.value.status_code in (106, 403)
    assert "mallory" not in nc.users.get_list()

    nc.users.disable("bob")
    assert nc.users.get_user("bob").enabled is False
    nc.users.enable("bob")
    assert nc.users.get_user("bob").enabled is True

    with pytest.raises(NextcloudException):  # already exists
        nc.users.create("alice", password="another long passphrase")

    nc.users.delete("alice")
    assert sorted(nc.users.get_list()) == ["admin", "bob"]
    with pytest.raises(NextcloudExceptionNotFound):
        nc.users.get_user("alice")
    with pytest.raises(NextcloudException):
        client(talkd_server, "alice", "alice long passphrase").users.get_user()


def test_groups_and_membership(nc: Nextcloud) -> None:
    nc.users.create("carol", password="carol long passphrase")
    nc.users_groups.create("staff", display_name="Staff")
    nc.users_groups.create("ops")
    assert sorted(nc.users_groups.get_list()) == ["admin", "ops", "staff"]
    assert nc.users_groups.get_list(mask="sta") == ["staff"]
    assert nc.users_groups.get_members("staff") == []

    nc.users.add_to_group("carol", "staff")
    nc.users.add_to_group("carol", "ops")
    assert nc.users_groups.get_members("staff") == ["carol"]
    assert sorted(nc.users.get_user("carol").groups) == ["ops", "staff"]

    nc.users.remove_from_group("carol", "staff")
    assert nc.users_groups.get_members("staff") == []
    assert nc.users.get_user("carol").groups == ["ops"]

    with pytest.raises(NextcloudException):
        nc.users.add_to_group("carol", "no-such-group")
    with pytest.raises(NextcloudException):
        nc.users_groups.create("staff")  # exists

    nc.users_groups.delete("ops")
    assert sorted(nc.users_groups.get_list()) == ["admin", "staff"]
    assert nc.users.get_user("carol").groups == []
    with pytest.raises(NextcloudException):
        nc.users_groups.get_members("ops")


async def test_async_client(talkd_server: RunningTalkd) -> None:
    nc = AsyncNextcloud(nextcloud_url=talkd_server.base_url, nc_auth_user=talkd_server.admin_user,
                        nc_auth_pass=talkd_server.admin_password)
    assert "spreed" in await nc.capabilities
    await nc.users.create("dave", display_name="Dave", password="dave long passphrase")
    await nc.users_groups.create("crew")
    await nc.users.add_to_group("dave", "crew")
    assert await nc.users_groups.get_members("crew") == ["dave"]
    assert (await nc.users.get_user("dave")).display_name == "Dave"
    await nc.users.delete("dave")
    assert await nc.users.get_list() == ["admin"]


def test_group_details_rename_and_subadmins(nc: Nextcloud) -> None:
    nc.users_groups.create("staff", display_name="Staff")
    nc.users.create("erin", display_name="Erin", password="erin long passphrase")
    nc.users.add_to_group("erin", "staff")
    details = {g.group_id: g for g in nc.users_groups.get_details()}
    assert details["staff"].display_name == "Staff" and details["staff"].user_count == 1
    assert details["admin"].user_count == 1

    nc.users_groups.edit("staff", "Staff members")
    assert {g.group_id: g for g in nc.users_groups.get_details()}["staff"].display_name == "Staff members"
    with pytest.raises(NextcloudException):
        nc.users_groups.edit("no-such-group", "Nobody")

    # talkd has admins and no sub-admins: an existing group has none, an unknown one is an error.
    assert nc.users_groups.get_subadmins("staff") == []
    with pytest.raises(NextcloudException):
        nc.users_groups.get_subadmins("no-such-group")


def test_editable_fields(nc: Nextcloud) -> None:
    assert nc.users.editable_fields() == ["displayname", "email"]
