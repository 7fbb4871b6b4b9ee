"""Inviting guests by e-mail (the seed's "Invite a guest by email", v4's source=emails) with a real SMTP
server: aiosmtpd listening on a free loopback port in the test's event loop, collecting what talkd
delivers."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.api.conftest import AppFactory, app_factory
from tests.helpers.client import TalkClient

__all__ = ["app_factory"]

V1 = "/apps/spreed/api/v1"
V4 = "/apps/spreed/api/v4"
BASE_URL = "https://talk.example.test"
SENDER = "talk@example.test"


class Inbox:
    """An aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield inbox, port
    server.close()
    await server.wait_closed()


@pytest.fixture
async def talk_mail(app_factory: AppFactory, smtp: tuple[Inbox, int]) -> TalkClient:
    _, port = smtp
    talk = await app_factory(mail__smtp_host="127.0.0.1", mail__smtp_port=port, mail__sender=SENDER,
                             server__base_url=BASE_URL)
    await talk.make_user("alice", display_name="Alice Inviter")
    await talk.make_user("bob", display_name="Bob B")
    await talk.make_user("carol")
    return talk


async def public_room(talk: TalkClient, name: str = "Book club") -> str:
    reply = (await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 3, "roomName": name})).expect(201)
    token = str(reply.data["token"])
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice", json={"newParticipant": "bob"})
     ).expect(200)
    return token


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None
    content: Any = part.get_content()
    return str(content)


def assert_invitation(inbox: Inbox, to: str, token: str) -> None:
    assert len(inbox.received) == 1
    mail_from, recipients, message = inbox.received[0]
    assert mail_from == SENDER and recipients == [to]
    assert message["To"] == to and message["From"] == SENDER
    assert "Alice Inviter" in str(message["Subject"])
    body = body_of(message)
    assert f"{BASE_URL}/call/{token}" in body
    assert "Alice Inviter" in body


async def test_v1_invitation_is_mailed_and_listed(talk_mail: TalkClient, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    token = await public_room(talk_mail)
    reply = (await talk_mail.ocs("POST", f"{V1}/room/{token}/participants/guests", user="alice",
                                 json={"newParticipant": "reader@example.org"})).expect(200)
    assert reply.data == []  # already public: the type did not change
    assert_invitation(inbox, "reader@example.org", token)
    assert "Book club" in str(inbox.received[0][2]["Subject"])

    entries = (await talk_mail.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
    invited = [e for e in entries if e["actorType"] == "emails"]
    assert len(invited) == 1
    assert invited[0]["actorId"] == "reader@example.org" and invited[0]["participantType"] == 4
    v1 = (await talk_mail.ocs("GET", f"{V1}/room/{token}/participants", user="alice")).expect(200).data
    assert sorted(e["participantType"] for e in v1) == [1, 3, 4]
    assert next(e for e in v1 if e["participantType"] == 4)["userId"] == ""

    # Inviting the same address again changes nothing and mails nothing.
    (await talk_mail.ocs("POST", f"{V1}/room/{token}/participants/guests", user="alice",
                         json={"newParticipant": "reader@example.org"})).expect(200)
    assert len(inbox.received) == 1


async def test_v4_invitation_by_source_emails(talk_mail: TalkClient, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    token = await public_room(talk_mail)
    reply = (await talk_mail.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                                 json={"newParticipant": "guest@example.org", "source": "emails"})).expect(200)
    assert reply.data == []
    assert_invitation(inbox, "guest@example.org", token)
    entries = (await talk_mail.ocs("GET", f"{V4}/room/{token}/participants", user="bob")).expect(200).data
    assert {(e["actorType"], e["actorId"]) for e in entries} == {
        ("users", "alice"), ("users", "bob"), ("emails", "guest@example.org")}


async def test_inviting_to_a_group_room_opens_it_to_guests(talk_mail: TalkClient, smtp: tuple[Inbox, int]
                                                           ) -> None:
    inbox, _ = smtp
    created = (await talk_mail.ocs("POST", f"{V4}/room", user="alice",
                                   json={"roomType": 2, "roomName": "Private"})).expect(201)
    token = created.data["token"]
    reply = (await talk_mail.ocs("POST", f"{V1}/room/{token}/participants/guests", user="alice",
                                 json={"newParticipant": "reader@example.org"})).expect(200)
    assert reply.data == {"type": 3}
    room = (await talk_mail.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(200).data
    assert room["type"] == 3 and room["lastMessage"]["systemMessage"] == "guests_allowed"
    assert_invitation(inbox, "reader@example.org", token)

    one = (await talk_mail.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 1, "invite": "bob"})
           ).data["token"]
    (await talk_mail.ocs("POST", f"{V4}/room/{one}/participants", user="alice",
                         json={"newParticipant": "x@example.org", "source": "emails"})).expect(400)
    assert len(inbox.received) == 1


async def test_refused_invitations_send_no_mail(talk_mail: TalkClient, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    token = await public_room(talk_mail)
    v1 = f"{V1}/room/{token}/participants/guests"
    v4 = f"{V4}/room/{token}/participants"
    for bad in ("not-an-address", "two@@example.org", "a@b@c"):
        (await talk_mail.ocs("POST", v1, user="alice", json={"newParticipant": bad})).expect(400)
        (await talk_mail.ocs("POST", v4, user="alice", json={"newParticipant": bad, "source": "emails"})
         ).expect(400)
    (await talk_mail.ocs("POST", v1, user="alice", json={"newParticipant": ""})).expect(400)
    (await talk_mail.ocs("POST", v1, user="bob", json={"newParticipant": "r@example.org"})).expect(403)
    (await talk_mail.ocs("POST", v1, user="bob", json={"newParticipant": "not-an-address"})).expect(403)
    (await talk_mail.ocs("POST", v4, user="bob", json={"newParticipant": "r@example.org", "source": "emails"})
     ).expect(403)
    # Not a participant of the (public) room, and no room at all: 404.
    (await talk_mail.ocs("POST", v1, user="carol", json={"newParticipant": "r@example.org"})).expect(404)
    (await talk_mail.ocs("POST", f"{V1}/room/nosuchroom/participants/guests", user="alice",
                         json={"newParticipant": "r@example.org"})).expect(404)
    # An anonymous caller is not logged in.
    (await talk_mail.ocs("POST", v1, json={"newParticipant": "r@example.org"})).expect(997)

    assert inbox.received == []
    entries = (await talk_mail.ocs("GET", v4, user="alice")).expect(200).data
    assert {e["actorType"] for e in entries} == {"users"}
