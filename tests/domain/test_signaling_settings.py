"""SignalingSettingsService on a fake clock: TURN REST credentials, ICE URLs, tickets, server choice."""

from __future__ import annotations

import base64
import hashlib
import hmac

from talkd.clock import FakeClock
from talkd.config import SignalingSettings, StunSettings, TurnSettings
from talkd.domain.signaling_settings import SignalingSettingsService
from talkd.ids import RoomToken, UserId


def service(clock: FakeClock, *, turn: TurnSettings | None = None,
            signaling: SignalingSettings | None = None) -> SignalingSettingsService:
    parts = iter(f"rnd{i:013d}" for i in range(1000))
    return SignalingSettingsService(signaling or SignalingSettings(), StunSettings(), turn or TurnSettings(),
                                    secret=b"server-secret", clock=clock, random_part=lambda: next(parts))


def test_turn_user_name_is_expiry_then_random_and_password_is_hmac_sha1() -> None:
    clock = FakeClock(start=1_700_000_000.75)
    turn = TurnSettings(servers=("turn.example.org:3478",), secret="s3cret", credential_ttl=600)
    username, password = service(clock, turn=turn).turn_credentials()
    assert username == "1700000600:rnd0000000000000"
    digest = hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    assert password == base64.b64encode(digest).decode()


def test_turn_urls_are_every_scheme_with_every_transport() -> None:
    turn = TurnSettings(servers=("a:1", "b:2"), secret="x", schemes=("turns",), protocols=("tcp",))
    servers = service(FakeClock(), turn=turn).turn_servers()
    assert [s.urls for s in servers] == [["turns:a:1?transport=tcp"], ["turns:b:2?transport=tcp"]]


def test_no_turn_servers_means_no_credentials_handed_out() -> None:
    assert service(FakeClock()).turn_servers() == ()


def test_ticket_binds_user_and_time_and_survives_only_unchanged() -> None:
    clock = FakeClock(start=1_700_000_123.0)
    svc = service(clock)
    ticket = svc.issue_ticket(UserId("alice"))
    assert ticket.startswith("rnd0000000000000:1700000123:alice:")
    assert svc.check_ticket(UserId("alice"), ticket)
    assert not svc.check_ticket(None, ticket)
    assert not svc.check_ticket(UserId("alice"), ticket.replace(":alice:", ":bob:"))
    assert not svc.check_ticket(UserId("alice"), "no-colons-at-all")
    guest = svc.issue_ticket(None)
    assert svc.check_ticket(None, guest) and not svc.check_ticket(UserId("alice"), guest)


def test_ticket_key_depends_on_the_server_secret() -> None:
    clock = FakeClock()
    ticket = service(clock).issue_ticket(UserId("alice"))
    other = SignalingSettingsService(SignalingSettings(), StunSettings(), TurnSettings(), secret=b"other",
                                     clock=clock)
    assert not other.check_ticket(UserId("alice"), ticket)


def test_external_server_is_stable_per_conversation() -> None:
    servers = tuple(f"https://hpb{i}.example.org" for i in range(3))
    svc = service(FakeClock(), signaling=SignalingSettings(mode="external", servers=servers, secret="x"))
    chosen = {svc.for_caller(None, RoomToken(f"room{i}")).server for i in range(30)}
    assert chosen == set(servers)
    for i in range(5):
        token = RoomToken(f"room{i}")
        assert len({svc.for_caller(UserId(f"u{n}"), token).server for n in range(4)}) == 1


def test_internal_mode_names_no_server_even_when_servers_are_listed() -> None:
    svc = service(FakeClock(), signaling=SignalingSettings(servers=("https://hpb.example.org",)))
    config = svc.for_caller(None, None)
    assert config.server == "" and config.hide_warning is False and config.mode == "internal"
