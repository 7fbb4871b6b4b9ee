"""nc-py-api's Talk client against a real talkd process (`python -m talkd serve`): the library reads
capabilities, the X-Nextcloud-Talk-Hash and X-Nextcloud-Talk-Modified-Before headers, and parses every
conversation and participant field it knows, so a missing or wrongly typed field fails here."""

from __future__ import annotations

import pytest
from nc_py_api import AsyncNextcloud, NextcloudException
from nc_py_api.talk import ConversationType, NotificationLevel, ParticipantType

from tests.helpers.server import ADMIN_PASSWORD, RunningTalkd

pytestmark = pytest.mark.interop

@pytest.fixture(scope="module")
def talkd_url(shared_talkd_server: RunningTalkd) -> str:
    return shared_talkd_server.base_url


def read_all(entity: object) -> dict[str, object]:
    """Every property nc-py-api defines on a Talk entity: a missing key or a value outside its enum raises."""
    names = {name for cls in type(entity).__mro__ for name, attr in vars(cls).items() if isinstance(attr, property)}
    return {name: getattr(entity, name) for name in sorted(names)}


def client(url: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> AsyncNextcloud:
    """nc-py-api as `user` (the admin by default)."""
    return AsyncNextcloud(nextcloud_url=url, nc_auth_user=user, nc_auth_pass=password)


async def make_users(url: str, *names: str) -> dict[str, AsyncNextcloud]:
    admin = client(url)
    existing = set(await admin.users.get_list())
    for name in names:
        if name not in existing:
            await admin.users.create(name, display_name=name.title(), password=f"{name}-Secret-Password-1")
    return {name: client(url, name, f"{name}-Secret-Password-1") for name in names}


async def test_talk_is_available_and_hash_is_read(talkd_url: str) -> None:
    nc = (await make_users(talkd_url, "ann"))["ann"]
    assert await nc.talk.available
    assert (await nc.capabilities)["spreed"]["features"]
    assert await nc.talk.get_user_conversations() == []
    assert nc.talk.config_sha  # read from X-Nextcloud-Talk-Hash
    assert nc.talk.modified_since > 0  # from X-Nextcloud-Talk-Modified-Before


async def test_group_conversation_lifecycle(talkd_url: str) -> None:
    users = await make_users(talkd_url, "gina", "gus")
    gina, gus = users["gina"], users["gus"]
    created = await gina.talk.create_conversation(ConversationType.GROUP, room_name="Planning")
    assert created.conversation_type == ConversationType.GROUP
    assert created.participant_type == ParticipantType.OWNER and created.display_name == "Planning"
    assert created.last_message is not None and created.last_message.system_message == "conversation_created"
    assert read_all(created.last_message)["actor_id"] == "gina"

    await gina.talk.rename_conversation(created, "Roadmap")
    await gina.talk.set_conversation_fav(created, True)
    await gina.talk.set_conversation_readonly(created, True)
    await gina.talk.set_conversation_notify_lvl(created, NotificationLevel.ALWAYS_NOTIFY)
    got = await gina.talk.get_conversation_by_token(created.token)
    assert got.display_name == "Roadmap" and got.is_favorite and got.read_only
    assert got.notification_level == NotificationLevel.ALWAYS_NOTIFY
    assert got.can_delete_conversation and got.can_leave_conversation
    fields = read_all(got)
    assert fields["token"] == created.token and fields["actor_id"] == "gina" and fields["actor_type"] == "users"

    listed = await gina.talk.get_user_conversations()
    assert [c.token for c in listed] == [created.token]
    await gina.talk.set_conversation_fav(created, False)
    assert not (await gina.talk.get_conversation_by_token(created)).is_favorite

    # Someone who is not in the conversation cannot see it.
    with pytest.raises(NextcloudException) as missing:
        await gus.talk.get_conversation_by_token(created.token)
    assert missing.value.status_code == 404

    participants = await gina.talk.list_participants(created)
    assert [(p.actor_id, p.participant_type) for p in participants] == [("gina", ParticipantType.OWNER)]
    assert participants[0].display_name == "Gina" and participants[0].session_ids == []
    fields = read_all(participants[0])
    assert fields["attendee_id"] == got.attendee_id and fields["actor_type"] == "users"

    await gina.talk.delete_conversation(created)
    assert await gina.talk.get_user_conversations() == []


async def test_one_to_one_and_leaving(talkd_url: str) -> None:
    users = await make_users(talkd_url, "olga", "otto")
    olga, otto = users["olga"], users["otto"]
    one = await olga.talk.create_conversation(ConversationType.ONE_TO_ONE, invite="otto")
    assert one.conversation_type == ConversationType.ONE_TO_ONE and one.display_name == "Otto"
    again = await olga.talk.create_conversation(ConversationType.ONE_TO_ONE, invite="otto")
    assert again.token == one.token
    seen_by_otto = await otto.talk.get_conversation_by_token(one.token)
    assert seen_by_otto.display_name == "Olga"
    assert read_all(seen_by_otto)["notification_level"] == NotificationLevel.ALWAYS_NOTIFY  # one-to-one default
    names = sorted(p.actor_id for p in await otto.talk.list_participants(one))
    assert names == ["olga", "otto"]

    await otto.talk.leave_conversation(one)
    assert one.token not in [c.token for c in await otto.talk.get_user_conversations()]
    assert [p.actor_id for p in await olga.talk.list_participants(one)] == ["olga"]


async def test_public_conversation_password_and_privacy(talkd_url: str) -> None:
    users = await make_users(talkd_url, "pia", "paul")
    pia = users["pia"]
    public = await pia.talk.create_conversation(ConversationType.PUBLIC, room_name="Open house")
    assert public.conversation_type == ConversationType.PUBLIC and not public.has_password
    read_all(public)

    await pia.talk.set_conversation_password(public, "a long room password")
    assert (await pia.talk.get_conversation_by_token(public)).has_password
    await pia.talk.set_conversation_password(public, "")
    assert not (await pia.talk.get_conversation_by_token(public)).has_password

    await pia.talk.set_conversation_public(public, False)
    got = await pia.talk.get_conversation_by_token(public)
    assert got.conversation_type == ConversationType.GROUP
    # A group conversation has no password.
    with pytest.raises(NextcloudException) as refused:
        await pia.talk.set_conversation_password(public, "nope nope nope")
    assert refused.value.status_code == 403
    await pia.talk.set_conversation_public(public, True)
    assert (await pia.talk.get_conversation_by_token(public)).conversation_type == ConversationType.PUBLIC

    # The owner cannot leave behind a conversation without moderators, but alone may leave (and so delete) it.
    await pia.talk.leave_conversation(public)
    with pytest.raises(NextcloudException) as gone:
        await pia.talk.get_conversation_by_token(public)
    assert gone.value.status_code == 404
