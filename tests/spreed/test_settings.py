"""The webrtc settings section: environment names of the issue, flags and TOML from one declaration,
checks that name the key, and secrets generated into the data dir when not given."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from talkd.app import build_spreed
from talkd.bus.memory import MemoryBus
from talkd.clock import SystemClock
from talkd.config import ConfigError, Settings, add_arguments, load_settings

ENVIRONMENT = {
    "TALKD_WEBRTC_USERS_MODE": "sharedsecret",
    "TALKD_WEBRTC_ALLOW_REGISTRATION": "1",
    "TALKD_WEBRTC_SHAREDSECRET": "s3cret",
    "TALKD_WEBRTC_TURNSECRET": "turn",
    "TALKD_WEBRTC_TURN_URIS": "turn:a:443?transport=udp turn:a:443?transport=tcp",
    "TALKD_WEBRTC_STUN_URIS": "stun:a:3478",
    "TALKD_WEBRTC_TOKEN_FILE": "/etc/talkd/tokens.txt",
    "TALKD_WEBRTC_STATS": "1",
    "TALKD_WEBRTC_SERVER_TOKEN": "public-token",
    "TALKD_WEBRTC_REALM": "example.org",
    "TALKD_WEBRTC_TITLE": "Our Video",
}


def test_every_issue_environment_name_sets_its_option() -> None:
    webrtc = load_settings(environ=ENVIRONMENT).webrtc
    assert webrtc.users_mode == "sharedsecret" and webrtc.allow_registration is True
    assert webrtc.sharedsecret == "s3cret" and webrtc.turnsecret == "turn"
    assert webrtc.turn_uris == ("turn:a:443?transport=udp turn:a:443?transport=tcp",)
    assert webrtc.stun_uris == ("stun:a:3478",)
    assert webrtc.token_file == "/etc/talkd/tokens.txt" and webrtc.stats is True
    assert (webrtc.server_token, webrtc.realm, webrtc.title) == ("public-token", "example.org", "Our Video")


def test_flags_and_toml_set_the_same_options(tmp_path: Path) -> None:
    toml = tmp_path / "talkd.toml"
    toml.write_text('[webrtc]\nusers_mode = "httpheader"\nstats = true\nturn_uris = ["turn:x", "turn:y"]\n')
    from_file = load_settings(environ={}, config_file=toml).webrtc
    assert from_file.users_mode == "httpheader" and from_file.stats and from_file.turn_uris == ("turn:x", "turn:y")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = vars(parser.parse_args(["--webrtc-title", "Flag Title", "--webrtc-realm", "r"]))
    from_flags = load_settings(flags, environ={"TALKD_WEBRTC_TITLE": "env title"}).webrtc
    assert from_flags.title == "Flag Title" and from_flags.realm == "r"


@pytest.mark.parametrize(("environ", "key"), [
    ({"TALKD_WEBRTC_USERS_MODE": "certificate"}, "webrtc.users_mode"),
    ({"TALKD_WEBRTC_USERS_MODE": "sharedsecret"}, "webrtc.sharedsecret"),
    ({"TALKD_WEBRTC_STATS": "maybe"}, "webrtc.stats"),
    ({"TALKD_WEBRTC_SESSION_SECRET": "short"}, "webrtc.session_secret"),
    ({"TALKD_WEBRTC_ENCRYPTION_SECRET": "ab" * 20}, "webrtc.encryption_secret"),
    ({"TALKD_WEBRTC_BASE_PATH": "no-slash"}, "webrtc.base_path"),
    ({"TALKD_WEBRTC_CONFERENCE_ROOMS": "("}, "webrtc.conference_rooms"),
    ({"TALKD_WEBRTC_MODULES": "teleport"}, "webrtc.modules"),
])
def test_bad_values_are_refused_naming_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(environ=environ)


def test_hex_secrets_are_accepted_at_their_decoded_length() -> None:
    webrtc = load_settings(environ={"TALKD_WEBRTC_ENCRYPTION_SECRET": "ab" * 16,
                                    "TALKD_WEBRTC_SESSION_SECRET": "cd" * 32}).webrtc
    assert webrtc.encryption_secret == "ab" * 16


def test_missing_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    settings = Settings().replace(storage__data_dir=tmp_path)
    first = build_spreed(settings, SystemClock(), MemoryBus())
    session_file, encryption_file = tmp_path / "webrtc-session-secret", tmp_path / "webrtc-encryption-secret"
    assert len(bytes.fromhex(session_file.read_text().strip())) == 32
    assert len(bytes.fromhex(encryption_file.read_text().strip())) == 32
    assert session_file.stat().st_mode & 0o777 == 0o600
    st = first.tickets.new_session()
    token = first.tickets.encode_token(st, 1_700_000_000)
    # A restart reads the same secrets: tokens minted before it still resume.
    second = build_spreed(settings, SystemClock(), MemoryBus())
    assert second.tickets.decode_token(token, 1_700_000_000) == st
    configured = build_spreed(settings.replace(webrtc__session_secret="x" * 32), SystemClock(), MemoryBus())
    assert configured.tickets.decode_token(token, 1_700_000_000) is None
