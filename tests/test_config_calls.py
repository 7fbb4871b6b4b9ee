"""Call settings (signaling, stun, turn sections): loaded from every source, bad values named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkd.config import ConfigError, load_settings


def test_call_settings_come_from_environment_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "talkd.toml"
    toml.write_text('[turn]\nservers = ["turn.example.org:3478"]\nsecret = "s"\nschemes = ["turn", "turns"]\n'
                    '[signaling]\nsip_dialin_info = "call us"\n')
    settings = load_settings(environ={"TALKD_STUN_SERVERS": "a.example.org:3478,b.example.org",
                                      "TALKD_TURN_CREDENTIAL_TTL": "600"}, config_file=toml)
    assert settings.stun.servers == ("a.example.org:3478", "b.example.org")
    assert settings.turn.servers == ("turn.example.org:3478",) and settings.turn.schemes == ("turn", "turns")
    assert settings.turn.credential_ttl == 600 and settings.signaling.sip_dialin_info == "call us"
    assert load_settings(environ={"TALKD_STUN_SERVERS": ""}).stun.servers == ()


@pytest.mark.parametrize(("environ", "key"), [
    ({"TALKD_STUN_SERVERS": "stun:stun.example.org:3478"}, "stun.servers"),
    ({"TALKD_STUN_SERVERS": "stun.example.org:70000"}, "stun.servers"),
    ({"TALKD_TURN_SERVERS": "turn.example.org/x", "TALKD_TURN_SECRET": "s"}, "turn.servers"),
    ({"TALKD_TURN_SERVERS": "turn.example.org:3478"}, "turn.secret"),
    ({"TALKD_TURN_PROTOCOLS": "udp,sctp"}, "turn.protocols"),
    ({"TALKD_TURN_SCHEMES": ""}, "turn.schemes"),
    ({"TALKD_TURN_CREDENTIAL_TTL": "5"}, "turn.credential_ttl"),
    ({"TALKD_SIGNALING_MODE": "conversation_cluster"}, "signaling.mode"),
    ({"TALKD_SIGNALING_MODE": "external"}, "signaling.mode"),
    ({"TALKD_SIGNALING_SERVERS": "hpb.example.org"}, "signaling.servers"),
])
def test_bad_call_settings_are_refused_naming_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(environ=environ)


def test_secrets_of_call_settings_stay_out_of_error_messages() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"TALKD_TURN_CREDENTIAL_TTL": "x", "TALKD_TURN_SECRET": "very-secret"})
    assert "very-secret" not in str(caught.value)
