"""What a client needs before it can call: the signaling mode and server, STUN and TURN servers with
time-limited TURN credentials, a ticket for an external signaling server, the SIP dial-in text.

TURN credentials follow the TURN REST API scheme that coturn checks under `use-auth-secret`: the user
name is "<expiry unix time>:<random>", the password base64(HMAC-SHA1(static-auth-secret, user name)).
The TURN server recomputes the password and refuses the pair once the expiry has passed, so talkd
stores nothing and has nothing to revoke. The random part (not the user id, as in Talk) keeps account
names out of the TURN server's logs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from talkd.clock import Clock
from talkd.config import SignalingSettings, StunSettings, TurnSettings
from talkd.crypto import constant_time_equals, hmac_sha256_hex, keyed_hash, random_token, turn_rest_password
from talkd.ids import RoomToken, UserId

INTERNAL = "internal"
EXTERNAL = "external"


@dataclass(frozen=True)
class TurnServer:
    server: str  # host:port
    schemes: tuple[str, ...]
    protocols: tuple[str, ...]
    username: str
    credential: str

    @property
    def urls(self) -> list[str]:
        """Every scheme with every transport, as Talk lists them: `turn:host:port?transport=udp`..."""
        return [f"{scheme}:{self.server}?transport={protocol}"
                for scheme in self.schemes for protocol in self.protocols]


@dataclass(frozen=True)
class SignalingConfiguration:
    """The answer to GET /signaling/settings before any API version shapes it."""

    mode: str
    user_id: UserId | None
    hide_warning: bool
    server: str  # the external signaling server's URL; empty in internal mode
    ticket: str
    stun_servers: tuple[str, ...]  # host:port
    turn_servers: tuple[TurnServer, ...]
    sip_dialin_info: str

    @property
    def stun_urls(self) -> list[str]:
        return [f"stun:{server}" for server in self.stun_servers]


class SignalingSettingsService:
    RANDOM_LENGTH = 16  # as Talk's user name suffix

    def __init__(self, signaling: SignalingSettings, stun: StunSettings, turn: TurnSettings, *, secret: bytes,
                 clock: Clock, random_part: Callable[[], str] | None = None) -> None:
        self.signaling = signaling
        self.stun = stun
        self.turn = turn
        self.clock = clock
        self._random_part = random_part or (lambda: random_token(self.RANDOM_LENGTH))
        # Derived, so a leaked ticket key says nothing about the server secret or other derived keys.
        self._ticket_key = keyed_hash(secret, "signaling-ticket").encode()

    def for_caller(self, user_id: UserId | None, room: RoomToken | None) -> SignalingConfiguration:
        server = self._external_server(room)
        return SignalingConfiguration(
            mode=self.signaling.mode,
            user_id=user_id,
            # With an external server there is nothing to warn about (Talk answers true then too).
            hide_warning=bool(server) or self.signaling.hide_warning,
            server=server,
            ticket=self.issue_ticket(user_id),
            stun_servers=self.stun.servers,
            turn_servers=self.turn_servers(),
            sip_dialin_info=self.signaling.sip_dialin_info,
        )

    def turn_credentials(self) -> tuple[str, str]:
        """A fresh (username, password) pair valid for turn.credential_ttl seconds from now."""
        expires = int(self.clock.now()) + self.turn.credential_ttl
        username = f"{expires}:{self._random_part()}"
        return username, turn_rest_password(self.turn.secret, username)

    def turn_servers(self) -> tuple[TurnServer, ...]:
        if not self.turn.servers:
            return ()
        username, password = self.turn_credentials()  # one pair for all servers: they share the secret
        return tuple(TurnServer(server, self.turn.schemes, self.turn.protocols, username, password)
                     for server in self.turn.servers)

    def issue_ticket(self, user_id: UserId | None) -> str:
        """Talk's v1 ticket, "random:timestamp:userid:checksum", checksum being the HMAC-SHA256 (hex)
        of the rest; an external signaling server hands it back to talkd to authenticate the caller."""
        data = f"{self._random_part()}:{int(self.clock.now())}:{user_id or ''}"
        return f"{data}:{hmac_sha256_hex(self._ticket_key, data)}"

    def check_ticket(self, user_id: UserId | None, ticket: str) -> bool:
        data, sep, checksum = ticket.rpartition(":")
        if not sep or len(ticket) > 1024 or data.rpartition(":")[2] != (user_id or ""):
            return False
        return constant_time_equals(checksum, hmac_sha256_hex(self._ticket_key, data))

    def _external_server(self, room: RoomToken | None) -> str:
        servers = self.signaling.servers
        if self.signaling.mode != EXTERNAL or not servers:
            return ""
        # Stable per conversation, so its participants meet on one server even without clustering.
        index = zlib.crc32(room.encode()) % len(servers) if room else 0
        return servers[index]
