"""Spreed WebRTC's signed and encrypted strings: session ids, session tokens, attestations, nonces,
contact tokens, user id combos (sharedsecret mode), `Suserid` and TURN REST credentials.

Every opaque value is a *sealed box*: `b64url(timestamp ‖ [iv ‖ AES-CTR(payload)] or payload ‖ mac)` where
the MAC is HMAC-SHA256 over the box's name and body (encrypt-then-MAC, the shape of gorilla's
securecookie that the original server uses). The name binds a value to its purpose, so an attestation can
never be replayed as a session token, nor a nonce of one session (its name holds the Sid) on another.

The algorithms a third party must reproduce (user combos, Suserid, TURN) are exact: see
shared notes spreed-webrtc.md section 3. Everything else is opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from talkd.crypto import constant_time_equals, random_token
from talkd.errors import Forbidden, InvalidInput

SESSION_TOKEN_MAX_AGE = 30 * 86400
ATTESTATION_MAX_AGE = 300
ATTESTATION_REFRESH = 180
NONCE_MAX_AGE = 60
TURN_TTL = 3600
COMBO_LIFETIME = 31 * 12 * 86400  # registration: "one year" as the original counts it
MAX_SEALED_LENGTH = 4096  # nothing we mint is longer; larger input is refused unread
_MAC_SIZE = 32
_IV_SIZE = 16
_NONCE_SALT = 12
_CLOCK_SKEW = 60  # a box stamped this far in the future still opens (clustered nodes' clocks differ)
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def hmac_b64(key: bytes, message: str, digest: str = "sha256") -> str:
    """Standard base64 (with padding) of an HMAC: the form of combo secrets, Suserid and TURN passwords."""
    return base64.b64encode(hmac.new(key, message.encode(), digest).digest()).decode()


@dataclass(frozen=True)
class SealedBox:
    """Seal and open values of one purpose. `encryption_key` None: signed only (readable by the holder)."""

    signing_key: bytes
    encryption_key: bytes | None = None
    max_age: int = 0  # seconds; 0: never expires

    def seal(self, name: str, payload: bytes, now: float) -> str:
        body = struct.pack(">q", int(now))
        if self.encryption_key is None:
            body += payload
        else:
            iv = os.urandom(_IV_SIZE)
            encryptor = Cipher(algorithms.AES(self.encryption_key), modes.CTR(iv)).encryptor()
            body += iv + encryptor.update(payload) + encryptor.finalize()
        return _b64url(body + self._mac(name, body))

    def open(self, name: str, sealed: str, now: float) -> bytes | None:
        """The payload, or None when the value is malformed, forged, for another name, or expired."""
        if not sealed or len(sealed) > MAX_SEALED_LENGTH:
            return None
        raw = _unb64url(sealed)
        if raw is None or len(raw) < 8 + _MAC_SIZE:
            return None
        body, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
        if not hmac.compare_digest(mac, self._mac(name, body)):
            return None
        (stamp,) = struct.unpack(">q", body[:8])
        if stamp > now + _CLOCK_SKEW or (self.max_age and stamp + self.max_age < now):
            return None
        content = body[8:]
        if self.encryption_key is None:
            return content
        if len(content) < _IV_SIZE:
            return None
        decryptor = Cipher(algorithms.AES(self.encryption_key), modes.CTR(content[:_IV_SIZE])).decryptor()
        return decryptor.update(content[_IV_SIZE:]) + decryptor.finalize()

    def _mac(self, name: str, body: bytes) -> bytes:
        return hmac.new(self.signing_key, name.encode() + b"\x00" + body, hashlib.sha256).digest()


@dataclass(frozen=True)
class SessionToken:
    """What the Self `Token` carries and `?t=` restores."""

    id: str
    sid: str
    userid: str = ""


class Tickets:
    """The server's keys and everything minted with them.

    `realm` is `<serverRealm>.<serverToken>`: changing either invalidates every token and nonce.
    The nonce key is random per process, so nonces (60 s, single use) die with a restart as in the original.
    """

    def __init__(self, session_secret: bytes, encryption_secret: bytes, realm: str,
                 nonce_key: bytes | None = None) -> None:
        self.realm = realm
        self._session_secret = session_secret
        self._encryption_secret = encryption_secret
        self._tokens = SealedBox(session_secret, encryption_secret, SESSION_TOKEN_MAX_AGE)
        self._attestations = SealedBox(session_secret, None, ATTESTATION_MAX_AGE)
        self._contacts = SealedBox(session_secret, encryption_secret, 0)
        self._nonces = SealedBox(nonce_key or os.urandom(64), None, NONCE_MAX_AGE)

    # Session ids. The public Id is a keyed hash of the secret Sid: it reveals nothing about the Sid,
    # cannot be made to match a Sid without the session secret, and the pair checks statelessly.
    def new_session(self) -> SessionToken:
        sid = random_token(32)
        return SessionToken(id=self.session_id(sid), sid=sid)

    def session_id(self, sid: str) -> str:
        return _b64url(hmac.new(self._session_secret, b"id\x00" + sid.encode(), hashlib.sha256).digest())

    def validate_session(self, session_id: str, sid: str) -> bool:
        if not session_id or not sid or len(sid) > 256:
            return False
        return constant_time_equals(self.session_id(sid), session_id)

    # Session tokens: encrypted (they hold the Sid), 30 days.
    def encode_token(self, token: SessionToken, now: float) -> str:
        payload = orjson.dumps({"i": token.id, "s": token.sid, "u": token.userid})
        return self._tokens.seal(f"token@{self.realm}", payload, now)

    def decode_token(self, sealed: str, now: float) -> SessionToken | None:
        payload = self._tokens.open(f"token@{self.realm}", sealed, now)
        if payload is None:
            return None
        try:
            data = orjson.loads(payload)
            token = SessionToken(id=str(data["i"]), sid=str(data["s"]), userid=str(data.get("u", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        return token if self.validate_session(token.id, token.sid) else None

    # Attestations: a signed session Id (the `A` of relayed frames), 5 minutes.
    def attest(self, session_id: str, now: float) -> str:
        return self._attestations.seal("attestation", session_id.encode(), now)

    def verify_attestation(self, attestation: str, now: float) -> str | None:
        payload = self._attestations.open("attestation", attestation, now)
        return payload.decode(errors="replace") if payload is not None else None

    # Nonces: bound to the session's Sid and the user id, 60 seconds. The random salt makes every nonce
    # unique, so one issued later supersedes an earlier one even within the same second.
    def issue_nonce(self, sid: str, userid: str, now: float) -> str:
        return self._nonces.seal(f"{sid}@{self.realm}", os.urandom(_NONCE_SALT) + userid.encode(), now)

    def nonce_userid(self, sid: str, nonce: str, now: float) -> str | None:
        payload = self._nonces.open(f"{sid}@{self.realm}", nonce, now)
        if payload is None or len(payload) < _NONCE_SALT:
            return None
        return payload[_NONCE_SALT:].decode(errors="replace")

    # Contact tokens: encrypted pair of user ids, no expiry.
    def encode_contact(self, a: str, b: str, now: float) -> str:
        return self._contacts.seal("contact", orjson.dumps({"A": a, "B": b}), now)

    def decode_contact(self, sealed: str, now: float) -> tuple[str, str] | None:
        payload = self._contacts.open("contact", sealed, now)
        if payload is None:
            return None
        try:
            data = orjson.loads(payload)
            return str(data["A"]), str(data["B"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None

    def suserid(self, userid: str) -> str:
        """`Suserid`: base64(HMAC-SHA256(encryption secret, user id)); empty when anonymous."""
        return hmac_b64(self._encryption_secret, userid) if userid else ""


# sharedsecret users mode: the exact algorithm an external system uses to mint logins.
def combo_secret(key: bytes, combo: str) -> str:
    """base64(HMAC-SHA256(shared secret, "<expiry>:<userid>[:<extra>]"))."""
    return hmac_b64(key, combo)


def make_combo(key: bytes, userid: str, now: float) -> tuple[int, str, str]:
    """(expiry, combo, secret) for a newly registered user id."""
    expiry = int(now) + COMBO_LIFETIME
    combo = f"{expiry}:{userid}"
    return expiry, combo, combo_secret(key, combo)


def parse_int64(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64), as the original reads a combo's expiry: an optional sign and
    ASCII digits only (no "_", spaces or other scripts' digits), within int64; None otherwise."""
    if not _DECIMAL.fullmatch(text) or len(text.lstrip("+-").lstrip("0")) > 19:
        return None  # more significant digits are out of range (and may exceed what int() converts)
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def validate_combo(key: bytes, combo: str, secret: str, now: float) -> str:
    """The user id of a valid, unexpired combo whose secret matches; Forbidden otherwise."""
    parts = combo.split(":", 2)
    if len(parts) < 2:
        raise InvalidInput("invalid useridcombo", reason="invalid_combo")
    expiry_text, userid = parts[0], parts[1]
    expiry = parse_int64(expiry_text)
    if expiry is None:
        raise InvalidInput("invalid useridcombo expiry", reason="invalid_combo")
    expected = combo_secret(key, combo)
    if not constant_time_equals(secret, expected):
        raise Forbidden("invalid secret", reason="invalid_secret")
    if expiry < now:
        raise Forbidden("expired secret", reason="expired_combo")
    return userid


def turn_credentials(turn_secret: bytes, session_id: str, now: float, urls: list[str]) -> dict[str, object]:
    """TURN REST credentials: user "<expiry>:<b64(sha256(Id))>", password b64(HMAC-SHA1(secret, user))."""
    if not turn_secret:
        return {"username": "", "password": "", "ttl": 0, "urls": None}
    hashed_id = base64.b64encode(hashlib.sha256(session_id.encode()).digest()).decode()
    username = f"{int(now) + TURN_TTL}:{hashed_id}"
    return {"username": username, "password": hmac_b64(turn_secret, username, "sha1"), "ttl": TURN_TTL,
            "urls": urls}
