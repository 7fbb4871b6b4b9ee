"""Spreed WebRTC wire formats: the channelling envelope (API 1.4) and the REST error body.

Client → server: `{"Type": T, T: <inner document>, "Iid": "..."}`; the inner document per type is listed
in shared notes spreed-webrtc.md section 5. Keys match case-insensitively (the original decodes with Go's
encoding/json). `decode` validates a frame once at the door and returns a typed message; handlers trust it.
Server → client: `{"Data", "From", "To", "Iid", "A"}` with empty keys left out (`outgoing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

API_VERSION = 1.4
MAX_FRAME_BYTES = 1024 * 1024
MAX_CONFERENCE_SIZE = 100
MAX_ID_LENGTH = 256        # session ids, tokens named in To/Id fields
MAX_NAME_LENGTH = 1024     # room names
MAX_UA_LENGTH = 512
MAX_PIN_LENGTH = 256
MAX_TOKEN_LENGTH = 4096    # attestations, contact tokens, nonces

SIGNALLING_TYPES = ("Offer", "Answer", "Candidate", "Bye")


class ProtocolError(Exception):
    """A frame that cannot be served. `code` goes to the client as an Error reply when `reply` is True;
    otherwise the frame is dropped silently (as the original does for malformed relays)."""

    def __init__(self, code: str, message: str, *, reply: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reply = reply
        self.iid = ""


def _dropped(message: str) -> ProtocolError:
    return ProtocolError("bad_request", message, reply=False)


def field_of(doc: dict[str, Any], name: str) -> Any:
    """`doc[name]`, matching the key case-insensitively like Go's JSON decoder; None when absent."""
    if name in doc:
        return doc[name]
    lowered = name.lower()
    for key, value in doc.items():
        if key.lower() == lowered:
            return value
    return None


def _string(doc: dict[str, Any], name: str, limit: int, what: str) -> str:
    value = field_of(doc, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError("bad_request", f"{what} {name} must be a string")
    if len(value) > limit:
        raise ProtocolError("bad_request", f"{what} {name} is too long")
    return value


def _pin(doc: dict[str, Any], what: str) -> str | None:
    """The PIN of `Credentials`, or None when no credentials were sent (an empty PIN counts as none)."""
    credentials = field_of(doc, "Credentials")
    if credentials is None:
        return None
    if not isinstance(credentials, dict):
        raise ProtocolError("bad_request", f"{what} Credentials must be an object")
    return _string(credentials, "PIN", MAX_PIN_LENGTH, what) or None


# --- Client → server messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfRequest:
    pass


@dataclass(frozen=True)
class Hello:
    version: str
    ua: str
    name: str
    room_type: str
    pin: str | None


@dataclass(frozen=True)
class Leave:
    pass


@dataclass(frozen=True)
class RoomUpdate:
    name: str
    room_type: str
    credentials_given: bool
    pin: str | None  # with credentials_given: None removes the PIN


@dataclass(frozen=True)
class Relay:
    """Offer, Answer, Candidate or Bye: the inner document goes unchanged to `to`."""

    kind: str
    to: str
    document: dict[str, Any]


@dataclass(frozen=True)
class ContactRequest:
    id: str
    success: bool
    token: str


@dataclass(frozen=True)
class Chat:
    to: str
    message: str
    no_echo: bool
    mid: str
    status: dict[str, Any] | None
    contact_request: ContactRequest | None

    def document(self, *, time: str = "", contact: ContactRequest | None = None, userid: str = ""
                 ) -> dict[str, Any]:
        """The inner Chat document as relayed: known fields only, server time, contact token attached."""
        message: dict[str, Any] = {"Message": self.message}
        if time:
            message["Time"] = time
        if self.no_echo:
            message["NoEcho"] = True
        if self.mid:
            message["Mid"] = self.mid
        if self.status is not None:
            status = dict(self.status)
            request = contact or self.contact_request
            if request is not None:
                cr: dict[str, Any] = {"Id": request.id, "Success": request.success}
                if userid:
                    cr["Userid"] = userid
                if request.token:
                    cr["Token"] = request.token
                status["ContactRequest"] = cr
            message["Status"] = status
        return {"To": self.to, "Type": "Chat", "Chat": message}


@dataclass(frozen=True)
class StatusUpdate:
    status: Any


@dataclass(frozen=True)
class Conference:
    id: str
    ids: tuple[str, ...]
    document: dict[str, Any]


@dataclass(frozen=True)
class Users:
    pass


@dataclass(frozen=True)
class Alive:
    document: Any


@dataclass(frozen=True)
class Authentication:
    userid: str
    nonce: str


@dataclass(frozen=True)
class SessionsRequest:
    type: str
    token: str


Message = (SelfRequest | Hello | Leave | RoomUpdate | Relay | Chat | StatusUpdate | Conference | Users | Alive
           | Authentication | SessionsRequest)


@dataclass(frozen=True)
class Incoming:
    type: str
    iid: str
    message: Message


class Ignored(Exception):
    """Not a frame we serve (invalid JSON, not an object, unknown Type): dropped without an answer."""


_STATUS_KEYS = ("Typing", "State", "Mid", "SeenMids", "FileInfo", "Geolocation", "ContactRequest", "AutoCall")


def decode(frame: str | bytes) -> Incoming:
    """Parse one client frame. Raises Ignored (drop silently) or ProtocolError (maybe answer)."""
    try:
        doc = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise Ignored("invalid JSON") from None
    if not isinstance(doc, dict):
        raise Ignored("frame is not an object")
    kind = field_of(doc, "Type")
    iid = field_of(doc, "Iid")
    if not isinstance(kind, str) or kind not in _DECODERS:
        raise Ignored(f"unknown type {kind!r}")
    iid = iid if isinstance(iid, str) and len(iid) <= MAX_ID_LENGTH else ""
    inner = field_of(doc, kind)
    try:
        return Incoming(kind, iid, _DECODERS[kind](inner))
    except ProtocolError as exc:
        exc.iid = iid
        raise


def _object(inner: Any, kind: str) -> dict[str, Any]:
    if not isinstance(inner, dict):
        raise ProtocolError("bad_request", f"message did not contain {kind}")
    return inner


def _nested(inner: Any, kind: str) -> Any:
    """The innermost level of `{"Type": kind, kind: value}`; a single-level document is accepted too. Only a
    document typed `kind` without its value is the middle level missing its content (a single-level Sessions
    has a Type of its own: session or contact)."""
    doc = _object(inner, kind)
    value = field_of(doc, kind)
    return value if value is not None else (None if field_of(doc, "Type") == kind else doc)


def _decode_self(inner: Any) -> Message:
    return SelfRequest()


def _decode_hello(inner: Any) -> Message:
    doc = _object(inner, "Hello")
    name = _string(doc, "Name", MAX_NAME_LENGTH, "Hello") or _string(doc, "Id", MAX_NAME_LENGTH, "Hello")
    return Hello(version=_string(doc, "Version", 64, "Hello"), ua=_string(doc, "Ua", MAX_UA_LENGTH, "Hello"),
                 name=name, room_type=_string(doc, "Type", 64, "Hello"), pin=_pin(doc, "Hello"))


def _decode_leave(inner: Any) -> Message:
    return Leave()


def _decode_room(inner: Any) -> Message:
    doc = _object(inner, "Room")
    return RoomUpdate(name=_string(doc, "Name", MAX_NAME_LENGTH, "Room"),
                      room_type=_string(doc, "Type", 64, "Room"),
                      credentials_given=field_of(doc, "Credentials") is not None, pin=_pin(doc, "Room"))


def _relay_decoder(kind: str) -> Any:
    def decode_relay(inner: Any) -> Message:
        if not isinstance(inner, dict):
            raise _dropped(f"invalid {kind}")
        to = field_of(inner, "To")
        payload = field_of(inner, kind)
        if not isinstance(to, str) or not to or len(to) > MAX_ID_LENGTH:
            raise _dropped(f"{kind} without a valid To")
        # Offers and answers carry a session description object; a candidate or bye anything non-null.
        if (kind in ("Offer", "Answer") and not isinstance(payload, dict)) or (kind == "Candidate" and payload is None):
            raise _dropped(f"{kind} without {kind}")
        document = {"To": to, "Type": kind, kind: payload}
        return Relay(kind=kind, to=to, document=document)
    return decode_relay


def _decode_contact_request(value: Any) -> ContactRequest | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _dropped("invalid ContactRequest")
    cid, success, token = field_of(value, "Id"), field_of(value, "Success"), field_of(value, "Token")
    if not isinstance(cid, str) or not isinstance(success, (bool, type(None))) \
            or not isinstance(token, (str, type(None))) or len(token or "") > MAX_TOKEN_LENGTH:
        raise _dropped("invalid ContactRequest")
    return ContactRequest(id=cid[:MAX_ID_LENGTH], success=bool(success), token=token or "")


def _decode_chat(inner: Any) -> Message:
    if not isinstance(inner, dict):
        raise _dropped("invalid Chat")
    to = field_of(inner, "To")
    body = field_of(inner, "Chat")
    if not isinstance(to, (str, type(None))) or len(to or "") > MAX_ID_LENGTH or not isinstance(body, dict):
        raise _dropped("invalid Chat")
    message, mid = field_of(body, "Message"), field_of(body, "Mid")
    status = field_of(body, "Status")
    if not isinstance(message, (str, type(None))) or not isinstance(mid, (str, type(None))) \
            or len(mid or "") > MAX_ID_LENGTH or not isinstance(status, (dict, type(None))):
        raise _dropped("invalid Chat")
    kept: dict[str, Any] | None = None
    contact = None
    if status is not None:
        kept = {key: field_of(status, key) for key in _STATUS_KEYS if field_of(status, key) is not None}
        contact = _decode_contact_request(kept.pop("ContactRequest", None))
    return Chat(to=to or "", message=message or "", no_echo=field_of(body, "NoEcho") is True, mid=mid or "",
                status=kept, contact_request=contact)


def _decode_status(inner: Any) -> Message:
    if not isinstance(inner, dict):
        raise _dropped("invalid Status")
    return StatusUpdate(status=_nested(inner, "Status"))


def _decode_conference(inner: Any) -> Message:
    if not isinstance(inner, dict):
        raise _dropped("invalid Conference")
    cid, ids = field_of(inner, "Id"), field_of(inner, "Conference")
    if not isinstance(cid, (str, type(None))) or len(cid or "") > MAX_NAME_LENGTH + 64 or not isinstance(ids, list):
        raise _dropped("invalid Conference")
    if len(ids) > MAX_CONFERENCE_SIZE:
        raise _dropped("conference above the size limit")
    if not all(isinstance(i, str) and len(i) <= MAX_ID_LENGTH for i in ids):
        raise _dropped("invalid Conference member")
    document = {"Id": cid or "", "Type": "Conference", "Conference": ids}
    return Conference(id=cid or "", ids=tuple(ids), document=document)


def _decode_users(inner: Any) -> Message:
    return Users()


def _timestamp(value: Any) -> bool:
    """An unsigned 64-bit integer, what the original's decoder accepts for Alive."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 64


def _decode_alive(inner: Any) -> Message:
    """The reply is rebuilt from Type and Alive only, as the original's typed decode does."""
    if isinstance(inner, dict):
        kind, value = field_of(inner, "Type"), field_of(inner, "Alive")
        value = 0 if value is None else value
        if isinstance(kind, (str, type(None))) and len(kind or "") <= 64 and _timestamp(value):
            return Alive(document={"Type": kind or "", "Alive": value})
    elif _timestamp(inner):
        return Alive(document={"Type": "Alive", "Alive": inner})  # the single-level form
    raise _dropped("invalid Alive")


def _decode_authentication(inner: Any) -> Message:
    doc = _nested(inner, "Authentication")
    if not isinstance(doc, dict):
        raise ProtocolError("bad_request", "message did not contain Authentication")
    return Authentication(userid=_string(doc, "Userid", MAX_NAME_LENGTH, "Authentication"),
                          nonce=_string(doc, "Nonce", MAX_TOKEN_LENGTH, "Authentication"))


def _decode_sessions(inner: Any) -> Message:
    doc = _nested(inner, "Sessions")
    if not isinstance(doc, dict):
        raise ProtocolError("bad_request", "message did not contain Sessions")
    return SessionsRequest(type=_string(doc, "Type", 64, "Sessions"),
                           token=_string(doc, "Token", MAX_TOKEN_LENGTH, "Sessions"))


_DECODERS: dict[str, Any] = {
    "Self": _decode_self,
    "Hello": _decode_hello,
    "Leave": _decode_leave,
    "Room": _decode_room,
    **{kind: _relay_decoder(kind) for kind in SIGNALLING_TYPES},
    "Chat": _decode_chat,
    "Status": _decode_status,
    "Conference": _decode_conference,
    "Users": _decode_users,
    "Alive": _decode_alive,
    "Authentication": _decode_authentication,
    "Sessions": _decode_sessions,
}
KNOWN_TYPES = tuple(_DECODERS)


# --- Server → client documents -------------------------------------------------------------------------


def outgoing(data: Any, *, sender: str = "", to: str = "", iid: str = "", attestation: str = "") -> dict[str, Any]:
    """The envelope of every server frame; empty keys are left out as the original does."""
    frame: dict[str, Any] = {"Data": data}
    if sender:
        frame["From"] = sender
    if to:
        frame["To"] = to
    if iid:
        frame["Iid"] = iid
    if attestation:
        frame["A"] = attestation
    return frame


def error_document(code: str, message: str) -> dict[str, str]:
    return {"Type": "Error", "Code": code, "Message": message}


@dataclass(frozen=True)
class SessionData:
    """A session as others see it (Users, Welcome, Sessions, stats); empty fields are left out."""

    id: str
    userid: str = ""
    ua: str = ""
    rev: int = 0
    prio: int = 100
    status: Any = None

    def document(self, kind: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"Type": kind, "Id": self.id}
        if self.userid:
            doc["Userid"] = self.userid
        if self.ua:
            doc["Ua"] = self.ua
        if self.rev:
            doc["Rev"] = self.rev
        if self.prio:
            doc["Prio"] = self.prio
        if self.status is not None:
            doc["Status"] = self.status
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> SessionData:
        """The inverse of `document` (for session data another node announced)."""
        return cls(id=str(doc["Id"]), userid=str(doc.get("Userid", "")), ua=str(doc.get("Ua", "")),
                   rev=int(doc.get("Rev", 0)), prio=int(doc.get("Prio", 0)), status=doc.get("Status"))


# --- REST -----------------------------------------------------------------------------------------------


def rest_error(code: str, message: str) -> dict[str, Any]:
    """The JSON body of every non-200 REST answer."""
    return {"success": False, "code": code, "message": message}
