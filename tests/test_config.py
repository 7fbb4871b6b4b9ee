"""Settings precedence (flags > TALKD_* environment > TOML file > defaults) for the core settings, and
clear errors for bad values. Call settings (signaling/stun/turn) are covered in test_config_calls.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from talkd.cli import build_parser, main
from talkd.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TALKD_* setting from the developer's shell may decide a test."""
    for name in list(os.environ):
        if name.startswith("TALKD_") and name != "TALKD_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


def toml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "talkd.toml"
    path.write_text(text)
    return path


def flags_of(*argv: str) -> dict[str, Any]:
    """The flags exactly as `talkd.cli.main` hands them to load_settings."""
    args = build_parser().parse_args(["serve", *argv])
    return {k: v for k, v in vars(args).items() if "__" in k or k == "config_file"}


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.storage.data_dir == Path("data") and settings.storage.database_url == ""
    assert settings.database_url == f"sqlite:///{Path('data') / 'talkd.db'}"
    assert settings.security.bruteforce_enabled is True and settings.log.level == "info"


# (section, name, TOML literal, TOML value, environment variable, env value, flag, flag value, parsed flag value)
CASES = [
    ("server", "host", '"10.0.0.1"', "10.0.0.1", "TALKD_HOST", "10.0.0.2", "--host", "10.0.0.3", "10.0.0.3"),
    ("server", "port", "8001", 8001, "TALKD_PORT", "8002", "--port", "8003", 8003),
    ("storage", "data_dir", '"/srv/toml"', Path("/srv/toml"), "TALKD_DATA_DIR", "/srv/env", "--data-dir",
     "/srv/flag", Path("/srv/flag")),
    ("storage", "database_url", '"postgresql://toml@db/talkd"', "postgresql://toml@db/talkd",
     "TALKD_DATABASE_URL", "postgresql://env@db/talkd", "--database-url", "sqlite:///flag.db", "sqlite:///flag.db"),
    ("log", "level", '"debug"', "debug", "TALKD_LOG_LEVEL", "warning", "--log-level", "error", "error"),
    ("security", "bruteforce_enabled", "false", False, "TALKD_SECURITY_BRUTEFORCE_ENABLED", "yes",
     "--security-bruteforce-enabled", "off", False),
    ("security", "credential_cache_seconds", "12.5", 12.5, "TALKD_SECURITY_CREDENTIAL_CACHE_SECONDS", "0",
     "--security-credential-cache-seconds", "60", 60.0),
    ("server", "trusted_proxies", '["10.0.0.1", "10.0.0.2"]', ("10.0.0.1", "10.0.0.2"),
     "TALKD_SERVER_TRUSTED_PROXIES", "192.0.2.1, 192.0.2.2", "--server-trusted-proxies", "198.51.100.7",
     ("198.51.100.7",)),
]
ENV_PARSED = {"TALKD_PORT": 8002, "TALKD_DATA_DIR": Path("/srv/env"), "TALKD_SECURITY_BRUTEFORCE_ENABLED": True,
              "TALKD_SECURITY_CREDENTIAL_CACHE_SECONDS": 0.0,
              "TALKD_SERVER_TRUSTED_PROXIES": ("192.0.2.1", "192.0.2.2")}


@pytest.mark.parametrize(("section", "name", "toml", "toml_value", "env", "env_value", "flag", "flag_value",
                          "flag_parsed"), CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_each_source_overrides_the_ones_below(tmp_path: Path, section: str, name: str, toml: str,
                                              toml_value: Any, env: str, env_value: str, flag: str,
                                              flag_value: str, flag_parsed: Any) -> None:
    def value(settings: Settings) -> Any:
        return getattr(getattr(settings, section), name)

    default = value(Settings())
    path = toml_file(tmp_path, f"[{section}]\n{name} = {toml}\n")
    env_parsed = ENV_PARSED.get(env, env_value)
    # Each layer's value differs from the one below it, so every assertion shows which source won.
    assert default != toml_value and toml_value != env_parsed and env_parsed != flag_parsed

    assert value(load_settings(environ={})) == default
    assert value(load_settings(environ={}, config_file=path)) == toml_value
    assert value(load_settings(environ={env: env_value}, config_file=path)) == env_parsed
    assert value(load_settings(flags_of(flag, flag_value), environ={env: env_value}, config_file=path)) \
        == flag_parsed
    # The environment alone, and a flag alone, beat the defaults too.
    assert value(load_settings(environ={env: env_value})) == env_parsed
    assert value(load_settings(flags_of(flag, flag_value), environ={})) == flag_parsed


def test_sources_mix_per_setting(tmp_path: Path) -> None:
    """Precedence is decided per setting, not per source: each keeps the highest source that sets it."""
    path = toml_file(tmp_path, '[server]\nhost = "0.0.0.0"\nport = 9001\n[storage]\ndata_dir = "/var/lib/talkd"\n')
    settings = load_settings(flags_of("--port", "9003"), environ={"TALKD_DATA_DIR": "/srv/talkd"}, config_file=path)
    assert (settings.server.host, settings.server.port, settings.storage.data_dir) == \
        ("0.0.0.0", 9003, Path("/srv/talkd"))
    assert settings.database_url == "sqlite:////srv/talkd/talkd.db"


def test_config_file_from_environment_or_flag(tmp_path: Path) -> None:
    by_env = toml_file(tmp_path, "[server]\nport = 9100\n")
    by_flag = tmp_path / "other.toml"
    by_flag.write_text("[server]\nport = 9200\n")
    assert load_settings(environ={"TALKD_CONFIG": str(by_env)}).server.port == 9100
    assert load_settings(flags_of("--config", str(by_flag)), environ={"TALKD_CONFIG": str(by_env)}).server.port \
        == 9200


def test_config_show_prints_the_merged_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """End to end through the command line: `talkd config show` with all three sources."""
    path = toml_file(tmp_path, '[server]\nhost = "0.0.0.0"\nport = 9001\n[security]\nsecret = "toml-secret"\n')
    monkeypatch.setenv("TALKD_PORT", "9002")
    monkeypatch.setenv("TALKD_DATABASE_URL", "postgresql://env@db/talkd")
    assert main(["config", "show", "--config", str(path), "--database-url", "sqlite:////tmp/flag.db"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["server"]["host"] == "0.0.0.0" and shown["server"]["port"] == 9002
    assert shown["storage"]["database_url"] == "sqlite:////tmp/flag.db"
    assert shown["security"]["secret"] == "***"


@pytest.mark.parametrize(("flags", "environ", "toml", "expected"), [
    ((), {"TALKD_PORT": "eighty"}, None,
     "server.port: expected an integer, got 'eighty' (from environment TALKD_PORT)"),
    (("--port", "8o8o"), {}, None, "server.port: expected an integer, got '8o8o' (from flag --port)"),
    ((), {}, '[server]\nport = "http"\n', "server.port: expected an integer, got 'http' (from config file"),
    ((), {"TALKD_PORT": "70000"}, None, "server.port: 70000 is not a TCP port"),
    ((), {"TALKD_PORT": "0"}, None, "server.port: 0 is not a TCP port"),
    ((), {"TALKD_SECURITY_BRUTEFORCE_ENABLED": "maybe"}, None,
     "security.bruteforce_enabled: expected a boolean (1/0, true/false, yes/no, on/off), got 'maybe'"),
    ((), {"TALKD_DATABASE_URL": "mysql://db/talkd"}, None, "storage.database_url: unsupported scheme in 'mysql'"),
    ((), {}, "[storage]\ndata_dir = 5\n", "storage.data_dir: expected a path, got 5"),
    ((), {}, '[server]\nhost = ["a", "b"]\n', "server.host: expected a string"),
    ((), {"TALKD_LOG_LEVEL": "loud"}, None, "log.level: 'loud' is not one of debug, info, warning, error"),
    ((), {}, "[server]\nprot = 8080\n", "unknown key server.prot"),
    ((), {}, "[servre]\nport = 8080\n", "unknown section [servre]"),
    ((), {}, "[server\nport = 8080\n", "config file"),
    ((), {"TALKD_BASE_URL": "talk.example.org"}, None, "server.base_url: must start with http:// or https://"),
])
def test_bad_values_are_refused_naming_key_and_source(tmp_path: Path, flags: tuple[str, ...],
                                                     environ: dict[str, str], toml: str | None,
                                                     expected: str) -> None:
    path = toml_file(tmp_path, toml) if toml is not None else None
    with pytest.raises(ConfigError) as caught:
        load_settings(flags_of(*flags), environ=environ, config_file=path)
    assert expected in str(caught.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"TALKD_CONFIG": str(tmp_path / "nowhere.toml")})


def test_the_command_line_reports_a_bad_setting_and_exits_2(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TALKD_PORT", "eighty")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("talkd: configuration error: server.port: expected an integer")
    assert "Traceback" not in err


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"TALKD_WEBRTC_SESSION_SECRET": "short-and-secret"})
    assert "webrtc.session_secret" in str(caught.value) and "short-and-secret" not in str(caught.value)
