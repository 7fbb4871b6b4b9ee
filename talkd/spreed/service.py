"""Spreed WebRTC's rules: sessions, rooms by name, users, access tokens and the hub counters.

Rooms live on the event bus: every frame for a room is published on its room topic and every member's
socket subscribes to it; a frame for one session is published on that session's topic. Nothing here
iterates sockets, so a clustered bus carries the same traffic unchanged. The registries below (who is
connected, who is in which room, the latest nonce) are this node's view; a cluster that spreads one room
over several nodes needs them shared as well (see docs).

Errors are domain errors whose `reason` is the Spreed error code; the channel sends it as `Code`, the
REST edge (api/errors.py) picks the HTTP status from the class.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkd.bus.base import Event, EventBus, topic
from talkd.clock import Clock
from talkd.config import WebRTCSettings
from talkd.crypto import constant_time_equals, random_token
from talkd.errors import (
    Forbidden,
    InvalidInput,
    NotAllowedHere,
    NotFound,
    PreconditionFailed,
    TalkdError,
    TooLarge,
)
from talkd.protocol.spreed import (
    API_VERSION,
    Conference,
    ContactRequest,
    SessionData,
    SessionsRequest,
    outgoing,
)
from talkd.protocol.spreed import Chat as ChatMessage
from talkd.spreed.directory import RoomDirectory
from talkd.spreed.images import ImageCache, parse_data_url
from talkd.spreed.model import Room, Session
from talkd.spreed.tokens import (
    ATTESTATION_REFRESH,
    SessionToken,
    Tickets,
    make_combo,
    turn_credentials,
    validate_combo,
)

ROOM_SCOPE = "spreed-room"
SESSION_SCOPE = "spreed-session"
DEFAULT_ROOM_TYPE = "Room"
CONFERENCE_ROOM_TYPE = "Conference"
MAX_USERS_LISTED = 5000
MAX_OFFLINE_CONTACTS = 10000  # placeholder session ids remembered for offline contacts
MAX_ACCESS_TOKEN_BYTES = 100
ROOM_NAME_LENGTH = 11
FRAME = "spreed-frame"       # bus event: deliver `frame` to subscribers except `skip`
TAKEOVER = "spreed-takeover"  # bus event: a newer connection (`connection`) now owns this session
NONCE_REQUEST = "spreed-nonce-request"  # bus event: another node asks the session's node for a nonce
REPLY_SCOPE = "spreed-reply"
REMOTE_TIMEOUT = 2.0  # seconds another node may take to answer a nonce request


def room_topic(room_id: str) -> str:
    # Room names are arbitrary text; a digest keeps the topic short and valid for any bus.
    return topic(ROOM_SCOPE, hashlib.sha256(room_id.encode()).hexdigest()[:40])


def session_topic(session_id: str) -> str:
    return topic(SESSION_SCOPE, session_id)


def frame_event(frame: dict[str, Any], skip: str = "") -> Event:
    return {"type": FRAME, "frame": frame, "skip": skip}


def clean_uris(values: tuple[str, ...]) -> list[str]:
    """Split on spaces too (Spreed's config separates URIs by spaces), drop empties and duplicates."""
    seen: list[str] = []
    for value in values:
        for uri in value.split():
            if uri not in seen:
                seen.append(uri)
    return seen


class AccessTokens:
    """The token file: one token per line, first `:` field, `#` comments; reloaded when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._tokens: list[str] = []

    def _load(self) -> list[str]:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return []
        if mtime != self._mtime:
            tokens = []
            for line in self.path.read_text(errors="replace").splitlines():
                line = line.lstrip()
                if line and not line.startswith("#"):
                    token = line.split(":", 1)[0].strip().lower()
                    if token:
                        tokens.append(token)
            self._tokens, self._mtime = tokens, mtime
        return self._tokens

    def valid(self, token: str) -> bool:
        found = False
        for candidate in self._load():
            found |= constant_time_equals(candidate, token)  # no early exit: timing says nothing
        return found


@dataclass
class Counters:
    connections: int = 0
    broadcast_chat: int = 0
    unicast_chat: int = 0
    throttled: int = 0


class SpreedService:
    def __init__(self, settings: WebRTCSettings, tickets: Tickets, *, bus: EventBus, clock: Clock,
                 version: str) -> None:
        self.settings = settings
        self.tickets = tickets
        self.bus = bus
        self.clock = clock
        self.version = version
        self.users_enabled = bool(settings.users_mode)
        self.stun_uris = clean_uris(settings.stun_uris)
        self.turn_uris = clean_uris(settings.turn_uris)
        self._sharedsecret = settings.sharedsecret.encode()
        self._turnsecret = settings.turnsecret.encode()
        self._conference_patterns = [re.compile(p) for p in settings.conference_rooms]
        self.access_tokens = AccessTokens(Path(settings.token_file)) if settings.token_file else None
        self.sessions: dict[str, Session] = {}
        self.directory = RoomDirectory(bus, clock)
        self.users: dict[str, dict[str, Session]] = {}
        self.images = ImageCache()
        self.counters = Counters()
        self.global_room_id = self.room_id(settings.global_room, "") if settings.global_room else ""
        self.offline_contacts: dict[str, str] = {}  # user id -> placeholder session id

    # --- configuration -------------------------------------------------------------------------------

    @property
    def base_path(self) -> str:
        path = self.settings.base_path
        return path if path.endswith("/") else path + "/"

    def config_document(self) -> dict[str, Any]:
        """GET api/v1/config: what the web client needs; never a secret or the global room name."""
        s = self.settings
        return {
            "Title": s.title, "S": f"static/ver={self.version}", "B": self.base_path, "Token": s.server_token,
            "Renegotiation": s.renegotiation, "StunURIs": self.stun_uris, "TurnURIs": self.turn_uris,
            "Tokens": self.access_tokens is not None, "Version": self.version,
            "UsersEnabled": self.users_enabled, "UsersAllowRegistration": self.users_enabled and s.allow_registration,
            "UsersMode": s.users_mode, "DefaultRoomEnabled": s.default_room_enabled, "Plugin": s.plugin,
            "AuthorizeRoomCreation": s.authorize_room_creation, "AuthorizeRoomJoin": s.authorize_room_join,
            "Modules": list(s.modules),
        }

    def module_enabled(self, name: str) -> bool:
        return name in self.settings.modules

    # --- sessions --------------------------------------------------------------------------------------

    async def connect(self, token: str, header_userid: str, connection: str) -> Session:
        """A socket opened: resume the session of `token` (`?t=`) or start a new one. A session still
        held by an older socket is taken over; that socket closes without a Left."""
        now = self.clock.now()
        resumed = self.tickets.decode_token(token, now) if token else None
        st = resumed or self.tickets.new_session()
        self.counters.connections += 1
        session = Session(id=st.id, sid=st.sid, connection=connection, index=self.counters.connections, stamp=now)
        previous = self.sessions.get(session.id)
        if previous is not None:
            session.contacts = previous.contacts
            await self.retire(previous)
        self.sessions[session.id] = session
        userid = (header_userid or st.userid) if self.users_enabled else ""
        if userid:
            self._bind_user(session, userid)
        await self.bus.publish(session_topic(session.id), {"type": TAKEOVER, "connection": connection})
        return session

    async def retire(self, session: Session) -> None:
        """Forget a session that another connection took over: no Left, no broadcast."""
        session.closed = True
        room = self.directory.get(session.room_id)
        session.room_id = None
        self._forget(session)
        if room is not None:
            await self.directory.remove(room, session)

    async def disconnect(self, session: Session) -> None:
        """The socket closed: leave the room (Left "hard"), tell linked contacts, drop the session."""
        if session.closed:
            return
        session.closed = True
        if session.room_id is not None:
            await self.leave(session, "hard")
        left = outgoing({"Type": "Left", "Id": session.id, "Status": "hard"}, sender=session.id,
                        attestation=self.attestation(session))
        for contact_id in sorted(session.contacts):
            contact = self.sessions.get(contact_id)
            if contact is not None:
                contact.contacts.discard(session.id)
            await self.bus.publish(session_topic(contact_id), frame_event(left))
        self.images.delete(session.id)
        self._forget(session)

    def _forget(self, session: Session) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        sessions = self.users.get(session.userid)
        if sessions is not None and sessions.get(session.id) is session:
            del sessions[session.id]
            if not sessions:
                del self.users[session.userid]

    def attestation(self, session: Session) -> str:
        now = self.clock.now()
        if now >= session.attestation_until:
            session.attestation = self.tickets.attest(session.id, now)
            session.attestation_until = now + ATTESTATION_REFRESH
        return session.attestation

    def self_document(self, session: Session) -> dict[str, Any]:
        now = self.clock.now()
        token = self.tickets.encode_token(SessionToken(session.id, session.sid, session.userid), now)
        return {
            "Type": "Self", "Id": session.id, "Sid": session.sid, "Userid": session.userid,
            "Suserid": self.tickets.suserid(session.userid), "Token": token, "Version": self.version,
            "ApiVersion": API_VERSION, "Turn": turn_credentials(self._turnsecret, session.id, now, self.turn_uris),
            "Stun": self.stun_uris,
        }

    def update_ua(self, session: Session, ua: str) -> None:
        session.ua = ua  # announced by the join that follows
        session.rev += 1

    async def update_status(self, session: Session, status: Any) -> None:
        """Store a Status; a buddy picture sent as a data URL is kept here and replaced by `img:<ref>`."""
        if isinstance(status, dict) and isinstance(status.get("buddyPicture"), str) \
                and status["buddyPicture"].startswith("data:"):
            parsed = parse_data_url(status["buddyPicture"])
            if parsed is None:
                del status["buddyPicture"]  # never relay arbitrary data URLs
            else:
                status["buddyPicture"] = "img:" + self.images.update(session.id, *parsed, self.clock.now())
        session.status = status
        session.rev += 1
        await self.directory.changed(session)

    def status_document(self, session: Session) -> dict[str, Any]:
        doc: dict[str, Any] = {"Type": "Status", "Id": session.id}
        if session.userid:
            doc["Userid"] = session.userid
        if session.status is not None:
            doc["Status"] = session.status
        doc.update({"Rev": session.rev, "Prio": session.prio})
        return doc

    # --- rooms -------------------------------------------------------------------------------------------

    def configured_type(self, name: str) -> str:
        if any(pattern.search(name) for pattern in self._conference_patterns):
            return CONFERENCE_ROOM_TYPE
        return DEFAULT_ROOM_TYPE

    def room_id(self, name: str, room_type: str) -> str:
        return f"{room_type or self.configured_type(name)}:{name}"

    def new_room_name(self) -> str:
        return random_token(ROOM_NAME_LENGTH)

    async def join(self, session: Session, name: str, room_type: str, pin: str | None) -> Room:
        """Hello: leave a different room first (even if this join fails), enter, announce Joined."""
        rid = self.room_id(name, room_type)
        if session.room_id is not None and session.room_id != rid:
            await self.leave(session, "soft")
        try:
            room = await self._enter(session, rid, name, room_type or self.configured_type(name), pin)
        except TalkdError:
            if session.room_id is not None:
                await self.leave(session, "soft")
            raise
        joined = session.data().document("Joined")
        joined.pop("Rev", None)
        await self.broadcast(session, joined)
        return room

    async def _enter(self, session: Session, rid: str, name: str, room_type: str, pin: str | None) -> Room:
        authenticated = bool(session.userid)
        if not name and not self.settings.default_room_enabled:  # the room named "", whatever its type
            raise Forbidden("The default room is not enabled", reason="default_room_disabled")
        if self.users_enabled and self.settings.authorize_room_join and not authenticated:
            raise Forbidden("Room join requires a user account", reason="room_join_requires_account")
        room = self.directory.live().get(rid)
        if room is None:
            if self.users_enabled and self.settings.authorize_room_creation and not authenticated:
                raise Forbidden("Room creation requires a user account", reason="room_join_requires_account")
            room = await self.directory.create(rid, name, room_type, pin)
        if room.pin is None and pin is not None:
            raise InvalidInput("No credentials may be provided for this room", reason="authorization_not_required")
        if room.pin is not None:
            if pin is None:
                raise Forbidden("Valid credentials are required to join this room", reason="authorization_required")
            if not constant_time_equals(room.pin, pin):
                raise Forbidden("The provided credentials are incorrect", reason="invalid_credentials")
        session.room_id = rid
        await self.directory.add(room, session)
        return room

    async def leave(self, session: Session, status: str) -> None:
        """Leave the current room and tell it (Left "soft" on Leave or switching rooms, "hard" on disconnect)."""
        rid = session.room_id
        if rid is None:
            return
        session.room_id = None
        room = self.directory.get(rid)
        if room is not None:
            await self.directory.remove(room, session)
        await self.broadcast(session, {"Type": "Left", "Id": session.id, "Status": status}, room_id=rid)

    async def update_room(self, session: Session, name: str, room_type: str, credentials_given: bool,
                          pin: str | None) -> dict[str, Any]:
        """Room: change the PIN of the current room (empty PIN removes it); everyone else sees the update."""
        rid = self.room_id(name, room_type)
        room = self.directory.get(rid)
        if session.room_id != rid or room is None:
            raise PreconditionFailed("Cannot update other rooms", reason="not_in_room")
        if credentials_given:
            await self.directory.set_pin(room, pin)
        doc: dict[str, Any] = {"Type": room.type, "Name": room.name}
        if credentials_given:
            doc["Credentials"] = {"PIN": pin or ""}
        await self.broadcast(session, doc)
        return doc

    def room_users(self, session: Session) -> list[dict[str, Any]]:
        room = self.directory.get(session.room_id)
        if room is None:
            raise PreconditionFailed("Cannot list users without a current room", reason="not_in_room")
        members = room.member_data()
        global_room = self.directory.get(self.global_room_id) if self.global_room_id else None
        if global_room is not None and global_room is not room:
            members += global_room.member_data()
        return [member.document("Online") for member in members[:MAX_USERS_LISTED]]

    async def conference_update(self, session: Session) -> None:
        """In a server-managed conference room, tell everyone (the joiner too) who takes part."""
        room = self.directory.get(session.room_id)
        if room is None or room.type != CONFERENCE_ROOM_TYPE:
            return
        members = room.member_ids()
        if len(members) < 2:
            return
        document = {"Type": "Conference", "Id": room.id, "Conference": members}
        await self._publish_room(room.id, outgoing(document, to=room.id), skip="")

    def is_conference_room(self, session: Session) -> bool:
        room = self.directory.get(session.room_id)
        return room is not None and room.type == CONFERENCE_ROOM_TYPE

    # --- delivery (always through the bus) ---------------------------------------------------------------

    async def broadcast(self, session: Session, data: dict[str, Any], *, room_id: str | None = None) -> None:
        """To everyone in the session's room but the session itself."""
        rid = room_id if room_id is not None else session.room_id
        if rid is None:
            return
        frame = outgoing(data, sender=session.id, attestation=self.attestation(session))
        await self._publish_room(rid, frame, skip=session.id)

    async def _publish_room(self, rid: str, frame: dict[str, Any], skip: str) -> None:
        topics = {room_topic(rid)}
        if self.global_room_id:
            if rid == self.global_room_id:
                topics |= {room_topic(other) for other in self.directory.live()}
            else:
                topics.add(room_topic(self.global_room_id))
        event = frame_event(frame, skip)
        for name in sorted(topics):
            await self.bus.publish(name, event)

    async def unicast(self, session: Session, to: str, data: dict[str, Any]) -> None:
        """To one session wherever it is connected; nobody listening means the frame is dropped."""
        frame = outgoing(data, sender=session.id, to=to, attestation=self.attestation(session))
        await self.bus.publish(session_topic(to), frame_event(frame))

    # --- users and authentication ------------------------------------------------------------------------

    def _bind_user(self, session: Session, userid: str) -> None:
        session.userid = userid
        session.stamp = self.clock.now()
        session.rev += 1
        self.users.setdefault(userid, {})[session.id] = session

    def _issue_nonce(self, session: Session, userid: str) -> str:
        session.nonce = self.tickets.issue_nonce(session.sid, userid, self.clock.now())
        return session.nonce

    def _connected(self, session_id: str, sid: str) -> Session | None:
        session = self.sessions.get(session_id)
        if session is None or not constant_time_equals(session.sid, sid):
            return None
        return session

    async def authenticate(self, session: Session, userid: str, nonce: str) -> None:
        """Authentication: the latest nonce of this session, for this user id, within 60 s, once."""
        if session.userid:
            raise PreconditionFailed("session already authenticated", reason="already_authenticated")
        if not session.nonce or not constant_time_equals(session.nonce, nonce):
            raise Forbidden("nonce validation failed", reason="invalid_session_token")
        nonce_userid = self.tickets.nonce_userid(session.sid, nonce, self.clock.now())
        if nonce_userid is None:
            raise Forbidden("nonce expired", reason="invalid_session_token")
        if not constant_time_equals(nonce_userid, userid):
            raise Forbidden("user id mismatch", reason="invalid_session_token")
        session.nonce = ""
        self._bind_user(session, userid)
        await self.directory.changed(session)

    async def _nonce_for(self, session_id: str, sid: str, userid: str) -> str | None:
        """A nonce for `userid` issued to the connected, still anonymous session `session_id` wherever
        it is connected (a REST call may reach another node than the socket); None when there is none."""
        session = self._connected(session_id, sid)
        if session is not None:
            return None if session.userid else self._issue_nonce(session, userid)
        if session_id in self.sessions or not self.directory.has_peers():
            return None
        reply = topic(REPLY_SCOPE, random_token(16))
        async with self.bus.subscribe(reply) as answers:
            await self.bus.publish(session_topic(session_id), {"type": NONCE_REQUEST, "sid": sid, "userid": userid,
                                                               "reply": reply})
            answer = await answers.get(timeout=REMOTE_TIMEOUT)
        nonce = answer.get("nonce") if answer is not None else None
        return nonce if isinstance(nonce, str) and nonce else None

    async def answer_nonce_request(self, session: Session, event: Event) -> None:
        """Another node's REST call for a session connected here: issue the nonce here, where it is used."""
        sid, userid, reply = event.get("sid"), event.get("userid"), event.get("reply")
        if not isinstance(reply, str) or not reply.startswith(topic(REPLY_SCOPE, "")):
            return
        nonce = ""
        if isinstance(sid, str) and isinstance(userid, str) and userid and not session.userid \
                and constant_time_equals(session.sid, sid):
            nonce = self._issue_nonce(session, userid)
        await self.bus.publish(reply, {"type": "spreed-nonce", "nonce": nonce})

    async def register_user(self, session_id: str, sid: str) -> dict[str, Any]:
        """POST api/v1/users: a fresh `<uuid>@<realm>` user id, its combo and secret, and a nonce."""
        if not session_id or not sid:
            raise InvalidInput("Incomplete request", reason="users_bad_request")
        userid = f"{uuid.uuid4()}@{self.settings.realm}"  # before validation: no timing difference
        if not self.tickets.validate_session(session_id, sid):
            raise Forbidden("Invalid session", reason="users_invalid_session")
        if self.settings.users_mode != "sharedsecret":
            raise PreconditionFailed("Error: create is not possible in httpheader mode", reason="users_create_failed")
        nonce = await self._nonce_for(session_id, sid, userid)
        if nonce is None:
            raise PreconditionFailed("Error: no such session, or it is authenticated already",
                                     reason="users_request_failed")
        expiry, combo, secret = make_combo(self._sharedsecret, userid, self.clock.now())
        return {"success": True, "userid": userid, "useridcombo": combo, "timestamp": expiry, "secret": secret,
                "nonce": nonce}

    async def patch_session(self, path_id: str, body: Any, header_userid: str) -> tuple[str, str]:
        """PATCH api/v1/sessions/{id}/: every check runs, any failure is the same single refusal."""
        failed = not isinstance(body, dict)
        fields = body if isinstance(body, dict) else {}
        values: dict[str, str] = {}
        for key in ("id", "sid", "useridcombo", "secret"):
            value = fields.get(key)
            values[key] = value if isinstance(value, str) else ""
        failed |= path_id != values["id"]
        failed |= not values["sid"]
        failed |= not self.tickets.validate_session(values["id"], values["sid"])
        userid = ""
        if self.settings.users_mode == "sharedsecret":
            try:
                userid = validate_combo(self._sharedsecret, values["useridcombo"], values["secret"], self.clock.now())
            except (Forbidden, InvalidInput):
                failed = True
        elif self.settings.users_mode == "httpheader":
            userid = header_userid
        failed |= not userid
        nonce = None if failed else await self._nonce_for(values["id"], values["sid"], userid)
        if nonce is None:
            raise Forbidden("Failed to patch session", reason="session_patch_failed")
        return userid, nonce

    # --- chat and conferences -------------------------------------------------------------------------------

    async def chat(self, session: Session, msg: ChatMessage) -> None:
        """Chat: echo (unless NoEcho), then to the room (To empty) or to one session with a `sent` receipt."""
        now = datetime.datetime.fromtimestamp(self.clock.now(), datetime.UTC)
        time = now.isoformat(timespec="seconds").replace("+00:00", "Z")
        if not msg.no_echo:
            # The echo is the message as sent, before any contact token is minted: the requester must not
            # get a token the other side never accepted. Invalid contact requests are echoed too.
            await self.unicast(session, session.id, msg.document(time=time))
        contact = None
        if msg.to and msg.contact_request is not None:
            if not self.module_enabled("contacts"):
                return
            try:
                contact = self.contact_request(session, msg.to, msg.contact_request)
            except TalkdError:
                return  # an invalid contact request is ignored, as the original does
        doc = msg.document(time=time, contact=contact, userid=session.userid if contact is not None else "")
        if not msg.to:
            if session.room_id is not None:
                self.counters.broadcast_chat += 1
                await self.broadcast(session, doc)
            return
        if msg.status is None:
            self.counters.unicast_chat += 1
        await self.unicast(session, msg.to, doc)
        if msg.mid:  # delivery confirmation for the sender
            sent = {"To": msg.to, "Type": "Chat", "Chat": {"Mid": msg.mid, "Status": {"State": "sent"}}}
            await self.unicast(session, session.id, sent)

    async def conference(self, session: Session, msg: Conference) -> None:
        """A client's conference list goes to each listed peer, except in rooms the server manages itself."""
        if self.is_conference_room(session):
            return
        for target in dict.fromkeys(msg.ids):
            if target != session.id:
                await self.unicast(session, target, msg.document)

    # --- Sessions and contacts -----------------------------------------------------------------------------

    def lookup_sessions(self, session: Session, request: SessionsRequest) -> list[dict[str, Any]]:
        now = self.clock.now()
        if request.type == "session":
            target_id = self.tickets.verify_attestation(request.token, now)
            if target_id is None:
                raise Forbidden("invalid or expired attestation", reason="bad_attestation")
            target = self.sessions.get(target_id)
            data = target.data() if target is not None else self.directory.find(target_id)
            if data is None:
                raise NotFound("cannot retrieve session", reason="no_such_session")
            return [data.document("")]
        if request.type == "contact":
            if not self.module_enabled("contacts"):
                raise NotAllowedHere("incoming contacts session request with contacts disabled",
                                     reason="contacts_not_enabled")
            pair = self.tickets.decode_contact(request.token, now)
            other = ""
            if pair is not None and session.userid:
                other = pair[1] if pair[0] == session.userid else pair[0] if pair[1] == session.userid else ""
            if not other:
                raise Forbidden("invalid or foreign contact token", reason="bad_request")
            found = sorted(self.users.get(other, {}).values(), key=lambda s: (s.prio, s.stamp))
            if not found:
                return [self._offline_contact(other).document("")]
            for target in found:  # linked both ways: each sees the other's Left on disconnect
                session.contacts.add(target.id)
                target.contacts.add(session.id)
            return [target.data().document("") for target in found]
        raise InvalidInput("unknown sessions request type", reason="bad_request")

    def _offline_contact(self, userid: str) -> SessionData:
        """A contact without a connected session is answered, as in the original, with one stable
        placeholder session for the user id: the web client opens a chat with it from its contact list.
        Nothing is connected under that id, so frames sent to it are dropped."""
        placeholder = self.offline_contacts.pop(userid, None) or self.tickets.new_session().id
        self.offline_contacts[userid] = placeholder  # most recently used last
        if len(self.offline_contacts) > MAX_OFFLINE_CONTACTS:
            del self.offline_contacts[next(iter(self.offline_contacts))]
        return SessionData(id=placeholder, userid=userid)

    def contact_request(self, session: Session, to: str, request: ContactRequest) -> ContactRequest:
        """A Chat's ContactRequest: mint the contact token, strip it on refusal, check it on acceptance."""
        if request.token and not request.success:
            return ContactRequest(request.id, False, "")
        target = self.sessions.get(to)
        if not session.userid or target is None or not target.userid:
            raise Forbidden("contact requests need two authenticated sessions", reason="bad_request")
        now = self.clock.now()
        if request.success:
            if self.tickets.decode_contact(request.token, now) != (session.userid, target.userid):
                raise Forbidden("contact token mismatch", reason="bad_request")
            return request
        if target.userid == session.userid:
            raise Forbidden("cannot request oneself as a contact", reason="bad_request")
        return ContactRequest(request.id, False, self.tickets.encode_contact(target.userid, session.userid, now))

    # --- REST helpers --------------------------------------------------------------------------------------

    async def check_access_token(self, value: str) -> str:
        if len(value.encode()) > MAX_ACCESS_TOKEN_BYTES:
            raise TooLarge("Auth too large", reason="auth_too_large")
        token = value.lower()
        # The file check (stat, maybe a reload) runs off the event loop.
        if self.access_tokens is None or not token or not await asyncio.to_thread(self.access_tokens.valid, token):
            raise Forbidden("Invalid token", reason="invalid_token")
        return token

    def stats(self, details: bool) -> dict[str, Any]:
        rooms = self.directory.live()
        hub: dict[str, Any] = {
            "rooms": len(rooms), "connections": len(self.sessions), "sessions": len(self.sessions),
            "users": len(self.users), "count": self.counters.connections,
            "broadcastchatmessages": self.counters.broadcast_chat,
            "unicastchatmessages": self.counters.unicast_chat,
            "throttledmessages": self.counters.throttled,
        }
        if details:
            hub["sessionsbyid"] = {sid: s.data().document("") for sid, s in self.sessions.items()}
            hub["connectionsbyidx"] = {str(s.index): sid for sid, s in self.sessions.items()}
            hub["idsinroom"] = {rid: room.member_ids() for rid, room in rooms.items()}
            hub["usersbyid"] = {uid: {"Id": uid, "Sessions": len(s)} for uid, s in self.users.items()}
        return hub
