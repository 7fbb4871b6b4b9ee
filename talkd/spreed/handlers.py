"""One small function per channelling message type (shared notes section 6). Each gets the connection,
the decoded message and the request's Iid; replies go to the connection, everything for others goes
through the service, which publishes on the bus. Domain errors become Error replies in channelling.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from talkd.errors import TalkdError
from talkd.protocol import spreed as p

if TYPE_CHECKING:
    from talkd.spreed.channelling import Connection


async def on_self(conn: Connection, msg: p.SelfRequest, iid: str) -> None:
    conn.reply(conn.service.self_document(conn.session), iid)


async def on_hello(conn: Connection, msg: p.Hello, iid: str) -> None:
    service, session = conn.service, conn.session
    service.update_ua(session, msg.ua)
    await conn.follow_room(service.room_id(msg.name, msg.room_type))  # listen before anyone can see us
    try:
        room = await service.join(session, msg.name, msg.room_type, msg.pin)
    except TalkdError:
        await conn.follow_room(None)
        raise
    welcome = {"Type": "Welcome", "Room": {"Type": room.type, "Name": room.name},
               "Users": service.room_users(session)}
    conn.reply(welcome, iid)
    await service.conference_update(session)


async def on_leave(conn: Connection, msg: p.Leave, iid: str) -> None:
    await conn.service.leave(conn.session, "soft")
    await conn.follow_room(None)


async def on_room(conn: Connection, msg: p.RoomUpdate, iid: str) -> None:
    service = conn.service
    doc = await service.update_room(conn.session, msg.name, msg.room_type, msg.credentials_given, msg.pin)
    conn.reply(doc, iid)
    await service.conference_update(conn.session)


async def on_relay(conn: Connection, msg: p.Relay, iid: str) -> None:
    """Offer, Answer, Candidate, Bye: to the addressed session only, wherever it is."""
    await conn.service.unicast(conn.session, msg.to, msg.document)


async def on_status(conn: Connection, msg: p.StatusUpdate, iid: str) -> None:
    service, session = conn.service, conn.session
    await service.update_status(session, msg.status)
    await service.broadcast(session, service.status_document(session))


async def on_chat(conn: Connection, msg: p.Chat, iid: str) -> None:
    await conn.service.chat(conn.session, msg)


async def on_conference(conn: Connection, msg: p.Conference, iid: str) -> None:
    await conn.service.conference(conn.session, msg)


async def on_users(conn: Connection, msg: p.Users, iid: str) -> None:
    conn.reply({"Type": "Users", "Users": conn.service.room_users(conn.session)}, iid)


async def on_alive(conn: Connection, msg: p.Alive, iid: str) -> None:
    conn.reply(msg.document, iid)


async def on_authentication(conn: Connection, msg: p.Authentication, iid: str) -> None:
    service, session = conn.service, conn.session
    await service.authenticate(session, msg.userid, msg.nonce)
    conn.reply(service.self_document(session), iid)
    await service.broadcast(session, service.status_document(session))


async def on_sessions(conn: Connection, msg: p.SessionsRequest, iid: str) -> None:
    users = conn.service.lookup_sessions(conn.session, msg)
    conn.reply({"Type": "Sessions", "Sessions": {"Type": msg.type, "Token": msg.token}, "Users": users}, iid)


Handler = Callable[["Connection", Any, str], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    "Self": on_self,
    "Hello": on_hello,
    "Leave": on_leave,
    "Room": on_room,
    **{kind: on_relay for kind in p.SIGNALLING_TYPES},
    "Status": on_status,
    "Chat": on_chat,
    "Conference": on_conference,
    "Users": on_users,
    "Alive": on_alive,
    "Authentication": on_authentication,
    "Sessions": on_sessions,
}
