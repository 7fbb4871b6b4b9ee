"""Settings: one frozen dataclass per concern, loaded from flags > TALKD_* environment > TOML file > defaults.

Every option is declared once, as a dataclass field with `option(...)` metadata. From that single
declaration come the command-line flag, the environment variable, the TOML key, the parser and the
help text, so the three sources cannot drift apart. Errors name the key and where its value came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the key and its source."""


def option(help: str, *, env: str | None = None, flag: str | None = None, secret: bool = False) -> Any:
    return {"help": help, "env": env, "flag": flag, "secret": secret}


def _opt(default: Any, help: str, **kwargs: Any) -> Any:
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults")
    return field(default=default, metadata=option(help, **kwargs))


@dataclass(frozen=True)
class ServerSettings:
    host: str = _opt("127.0.0.1", "address to listen on", env="TALKD_HOST", flag="--host")
    port: int = _opt(8080, "TCP port to listen on", env="TALKD_PORT", flag="--port")
    base_url: str = _opt(
        "",
        "public base URL (e.g. https://talk.example.org); empty: derived from each request",
        env="TALKD_BASE_URL",
        flag="--base-url",
    )
    trusted_proxies: tuple[str, ...] = _opt(
        (), "comma-separated proxy addresses whose X-Forwarded-For is believed"
    )
    shutdown_timeout: float = _opt(10.0, "seconds to finish in-flight requests on shutdown")


@dataclass(frozen=True)
class StorageSettings:
    data_dir: Path = _opt(Path("data"), "directory for the database and secrets", env="TALKD_DATA_DIR",
                          flag="--data-dir")
    database_url: str = _opt(
        "",
        "database URL: postgresql://user@host/db or sqlite:///path; empty: SQLite file in the data dir",
        env="TALKD_DATABASE_URL",
        flag="--database-url",
    )


@dataclass(frozen=True)
class AdminSettings:
    user: str = _opt("admin", "user id of the first admin, created when no admin exists",
                     env="TALKD_ADMIN_USER")
    password: str = _opt("", "password of the first admin; empty: generated and printed once",
                         env="TALKD_ADMIN_PASSWORD", secret=True)


@dataclass(frozen=True)
class SecuritySettings:
    secret: str = _opt("", "server secret for keyed hashes; empty: generated once into the data dir",
                       env="TALKD_SECRET", secret=True)
    credential_cache_seconds: float = _opt(
        300.0, "how long a verified password is remembered (0 disables the cache)"
    )
    bruteforce_enabled: bool = _opt(True, "throttle failed logins (Nextcloud's auth.bruteforce.protection.enabled)")
    bruteforce_allowlist: tuple[str, ...] = _opt(
        (), "comma-separated addresses or CIDR ranges never throttled"
    )
    bruteforce_base_delay: float = _opt(0.1, "delay in seconds after the first failure; doubles with each")
    bruteforce_max_delay: float = _opt(25.0, "longest delay in seconds; past it requests get 429")
    bruteforce_window: float = _opt(43200.0, "seconds a failed attempt counts (12 hours)")
    login_flow_ttl: float = _opt(1200.0, "seconds a login flow v2 stays valid")
    web_session_ttl: float = _opt(86400.0, "seconds an idle browser or guest session stays valid")


@dataclass(frozen=True)
class LimitsSettings:
    max_body_bytes: int = _opt(1_048_576, "largest accepted request body in bytes (larger: 413)")
    body_timeout: float = _opt(60.0, "seconds a request body may take to arrive in full (slower: 408, "
                               "and the connection is closed)")
    chat_max_length: int = _opt(32000, "longest chat message in characters (capability chat.max-length)")
    max_display_name_length: int = _opt(64, "longest user or guest display name in characters")


@dataclass(frozen=True)
class LogSettings:
    level: str = _opt("info", "log level: debug, info, warning, error", env="TALKD_LOG_LEVEL",
                      flag="--log-level")
    format: str = _opt("text", "log format: text (key=value) or json")
    access_log: bool = _opt(False, "log every HTTP request")


@dataclass(frozen=True)
class BusSettings:
    url: str = _opt("", "event bus: empty for in-process, or nats://host:4222 to share events across a cluster",
                    env="TALKD_BUS_URL", flag="--bus-url")
    prefix: str = _opt("talkd", "NATS subject prefix (lets several installations share one NATS)")


DEFAULT_WEBRTC_MODULES = ("screensharing", "youtube", "presentation", "contacts")


@dataclass(frozen=True)
class WebRTCSettings:
    """Spreed WebRTC compatibility (REST API v1 and the channelling WebSocket)."""

    enabled: bool = _opt(True, "serve the Spreed WebRTC REST API and the /ws channelling socket")
    base_path: str = _opt("/", "path prefix of every Spreed WebRTC route (Spreed's http.basePath)")
    title: str = _opt("Spreed WebRTC", "title published in /api/v1/config")
    server_token: str = _opt("i-did-not-change-the-public-token-boo",
                             "public server token: published in the config and part of the token realm")
    realm: str = _opt("local", "server realm: suffix of registered user ids and part of the token realm")
    session_secret: str = _opt("", "signs session ids, tokens and attestations (>= 32 bytes, hex allowed); "
                               "empty: generated once into the data dir", secret=True)
    encryption_secret: str = _opt("", "encrypts session and contact tokens (16, 24 or 32 bytes, hex allowed); "
                                  "empty: generated once into the data dir", secret=True)
    users_mode: str = _opt("", "user authentication: sharedsecret, httpheader, or empty (users disabled)")
    allow_registration: bool = _opt(False, "let anonymous sessions register a user id (POST /api/v1/users)")
    sharedsecret: str = _opt("", "HMAC-SHA256 key of the sharedsecret users mode", secret=True)
    httpheader: str = _opt("x-users", "request header carrying a pre-authenticated user id (httpheader mode)")
    turnsecret: str = _opt("", "TURN REST shared secret; enables TURN credentials in the Self document",
                           secret=True)
    turn_uris: tuple[str, ...] = _opt((), "TURN server URIs, separated by spaces or commas")
    stun_uris: tuple[str, ...] = _opt((), "STUN server URIs, separated by spaces or commas")
    token_file: str = _opt("", "access token file (one token per line); enables POST /api/v1/tokens")
    stats: bool = _opt(False, "serve GET /api/v1/stats")
    default_room_enabled: bool = _opt(True, "allow joining the default room (empty room name)")
    global_room: str = _opt("", "secret name of a room whose members see and reach every room", secret=True)
    authorize_room_join: bool = _opt(False, "with users enabled, only authenticated sessions may join rooms")
    authorize_room_creation: bool = _opt(False, "with users enabled, only authenticated sessions may create rooms")
    renegotiation: bool = _opt(False, "published flag: clients may renegotiate peer connections")
    plugin: str = _opt("", "web client plugin published in the config")
    modules: tuple[str, ...] = _opt(DEFAULT_WEBRTC_MODULES, "enabled client modules "
                                    "(screensharing, youtube, presentation, contacts)")
    conference_rooms: tuple[str, ...] = _opt((), "regular expressions: matching room names are server-managed "
                                             "conferences")


@dataclass(frozen=True)
class SignalingSettings:
    mode: str = _opt("internal", "signaling mode: internal (talkd relays offers and answers itself) or external "
                     "(a High-Performance Backend from signaling.servers)")
    hide_warning: bool = _opt(False, "tell clients not to warn that internal signaling only suits small calls")
    servers: tuple[str, ...] = _opt((), "external signaling server URLs (https:// or wss://), for external mode")
    secret: str = _opt("", "secret shared with the external signaling servers", secret=True)
    sip_dialin_info: str = _opt("", "SIP dial-in information for conversations (free text: phone numbers, PIN use)")
    session_ping_timeout: int = _opt(60, "seconds a conversation session may go without a ping (a signaling or "
                                     "chat pull) before it leaves its call and the conversation")
    pull_timeout: float = _opt(30.0, "seconds GET /signaling/{token} waits for messages before answering "
                               "(Talk's 30)")
    max_payload_bytes: int = _opt(65536, "largest `messages` field of POST /signaling/{token} in bytes "
                                  "(larger: 413)")


@dataclass(frozen=True)
class StunSettings:
    servers: tuple[str, ...] = _opt(("stun.nextcloud.com:443",), "STUN servers as host:port, comma-separated")


@dataclass(frozen=True)
class TurnSettings:
    servers: tuple[str, ...] = _opt((), "TURN servers as host:port, comma-separated; all share turn.secret")
    secret: str = _opt("", "the TURN servers' static-auth-secret (coturn use-auth-secret)", secret=True)
    schemes: tuple[str, ...] = _opt(("turn",), "URL schemes offered for each TURN server: turn, turns or both")
    protocols: tuple[str, ...] = _opt(("udp", "tcp"), "transports offered for each TURN server: udp, tcp or both")
    credential_ttl: int = _opt(86400, "seconds a TURN credential handed to a client stays valid")


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str = _opt("", "SMTP server for e-mail invitations; empty: no mail is sent")
    smtp_port: int = _opt(25, "SMTP server port")
    smtp_starttls: bool = _opt(False, "upgrade the SMTP connection with STARTTLS")
    smtp_user: str = _opt("", "SMTP user name; empty: no SMTP authentication")
    smtp_password: str = _opt("", "SMTP password", secret=True)
    sender: str = _opt("talkd@localhost", "From address of the mail talkd sends")
    timeout: float = _opt(10.0, "seconds to wait for the SMTP server")


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    log: LogSettings = field(default_factory=LogSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    webrtc: WebRTCSettings = field(default_factory=WebRTCSettings)
    signaling: SignalingSettings = field(default_factory=SignalingSettings)
    stun: StunSettings = field(default_factory=StunSettings)
    turn: TurnSettings = field(default_factory=TurnSettings)
    mail: MailSettings = field(default_factory=MailSettings)

    def replace(self, **sections: Any) -> Settings:
        """A copy with whole sections, or `section__field=value` entries, replaced (handy in tests)."""
        changes: dict[str, Any] = {}
        for key, value in sections.items():
            if "__" in key:
                section, name = key.split("__", 1)
                current = changes.get(section, getattr(self, section))
                changes[section] = dataclasses.replace(current, **{name: value})
            else:
                changes[key] = value
        return dataclasses.replace(self, **changes)

    @property
    def sqlite_path(self) -> Path:
        return self.storage.data_dir / "talkd.db"

    @property
    def database_url(self) -> str:
        return self.storage.database_url or f"sqlite:///{self.sqlite_path}"


@dataclass(frozen=True)
class OptionSpec:
    section: str
    name: str
    type: Any
    default: Any
    help: str
    env: str
    flag: str
    secret: bool

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def dest(self) -> str:
        return f"{self.section}__{self.name}"


def option_specs() -> list[OptionSpec]:
    """Every option, in declaration order."""
    specs: list[OptionSpec] = []
    for section_field in dataclasses.fields(Settings):
        section_cls = typing.get_type_hints(Settings)[section_field.name]
        hints = typing.get_type_hints(section_cls)
        for f in dataclasses.fields(section_cls):
            meta = f.metadata
            section, name = section_field.name, f.name
            specs.append(
                OptionSpec(
                    section=section,
                    name=name,
                    type=hints[name],
                    default=f.default,
                    help=meta.get("help", ""),
                    env=meta.get("env") or f"TALKD_{section}_{name}".upper(),
                    flag=meta.get("flag") or f"--{section}-{name}".replace("_", "-"),
                    secret=bool(meta.get("secret")),
                )
            )
    return specs


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(spec: OptionSpec, raw: Any, source: str) -> Any:
    def fail(expected: str) -> ConfigError:
        shown = "***" if spec.secret else repr(raw)
        return ConfigError(f"{spec.key}: expected {expected}, got {shown} (from {source})")

    target = spec.type
    if target is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise fail("a boolean (1/0, true/false, yes/no, on/off)")
    if target is int:
        if isinstance(raw, bool):
            raise fail("an integer")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise fail("an integer") from None
    if target is float:
        if isinstance(raw, bool):
            raise fail("a number")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise fail("a number") from None
    if target is Path:
        if not isinstance(raw, (str, Path)) or str(raw) == "":
            raise fail("a path")
        return Path(raw).expanduser()
    if target is str:
        if not isinstance(raw, str):
            raise fail("a string")
        return raw
    if typing.get_origin(target) is tuple:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, (list, tuple)) and all(isinstance(x, str) for x in raw):
            return tuple(raw)
        raise fail("a list of strings")
    raise ConfigError(f"{spec.key}: unsupported option type {target!r}")


def add_arguments(parser: argparse.ArgumentParser, sections: tuple[str, ...] | None = None) -> None:
    """Add a flag for every option (or those of `sections`); unset flags leave lower sources in charge."""
    parser.add_argument("--config", dest="config_file", default=argparse.SUPPRESS,
                        help="TOML settings file (also TALKD_CONFIG)")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for spec in option_specs():
        if sections is not None and spec.section not in sections:
            continue
        group = groups.setdefault(spec.section, parser.add_argument_group(f"{spec.section} settings"))
        default_text = "" if spec.secret else f" (default: {_show_default(spec.default)})"
        group.add_argument(
            spec.flag,
            dest=spec.dest,
            default=argparse.SUPPRESS,
            metavar=spec.name.upper(),
            help=f"{spec.help}{default_text}; env {spec.env}",
        )


def _show_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value) if value != "" else "empty"


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build Settings from the three sources; `flags` are argparse dests (`section__name`)."""
    flags = dict(flags or {})
    environ = os.environ if environ is None else environ
    path = flags.pop("config_file", None) or config_file or environ.get("TALKD_CONFIG") or None
    toml_data: dict[str, Any] = {}
    if path:
        try:
            toml_data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None

    known_sections = {f.name for f in dataclasses.fields(Settings)}
    for section, body in toml_data.items():
        if section not in known_sections or not isinstance(body, dict):
            raise ConfigError(f"config file {path}: unknown section [{section}]")

    sections: dict[str, dict[str, Any]] = {}
    specs = option_specs()
    known_keys = {(s.section, s.name) for s in specs}
    for section, body in toml_data.items():
        for name in body:
            if (section, name) not in known_keys:
                raise ConfigError(f"config file {path}: unknown key {section}.{name}")

    for spec in specs:
        if spec.dest in flags and flags[spec.dest] is not None:
            value = _parse(spec, flags[spec.dest], f"flag {spec.flag}")
        elif spec.env in environ:
            value = _parse(spec, environ[spec.env], f"environment {spec.env}")
        elif spec.name in toml_data.get(spec.section, {}):
            value = _parse(spec, toml_data[spec.section][spec.name], f"config file {path}")
        else:
            continue
        sections.setdefault(spec.section, {})[spec.name] = value

    hints = typing.get_type_hints(Settings)
    built = {name: hints[name](**values) for name, values in sections.items()}
    settings = Settings(**built)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Checks that span a value's meaning rather than its type."""
    if not 0 < settings.server.port < 65536:
        raise ConfigError(f"server.port: {settings.server.port} is not a TCP port")
    if settings.log.level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"log.level: {settings.log.level!r} is not one of debug, info, warning, error")
    if settings.log.format not in {"text", "json"}:
        raise ConfigError(f"log.format: {settings.log.format!r} is not text or json")
    if settings.limits.max_body_bytes < 1024:
        raise ConfigError("limits.max_body_bytes: must be at least 1024")
    if not settings.limits.body_timeout > 0:
        raise ConfigError("limits.body_timeout: must be positive")
    if settings.limits.chat_max_length < 1:
        raise ConfigError("limits.chat_max_length: must be positive")
    url = settings.storage.database_url
    if url and not url.startswith(("sqlite", "postgresql", "postgres://")):
        raise ConfigError(f"storage.database_url: unsupported scheme in {url.split(':', 1)[0]!r}")
    for entry in settings.security.bruteforce_allowlist:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"security.bruteforce_allowlist: {entry!r} is not an address or range") from None
    if settings.bus.url and not settings.bus.url.startswith(("nats://", "tls://")):
        raise ConfigError(f"bus.url: expected nats://host:port or empty, got {settings.bus.url!r}")
    if settings.server.base_url and not settings.server.base_url.startswith(("http://", "https://")):
        raise ConfigError("server.base_url: must start with http:// or https://")
    _validate_webrtc(settings.webrtc)
    _validate_calls(settings)


def _validate_webrtc(webrtc: WebRTCSettings) -> None:
    if webrtc.users_mode not in {"", "sharedsecret", "httpheader"}:
        raise ConfigError(f"webrtc.users_mode: {webrtc.users_mode!r} is not sharedsecret, httpheader or empty")
    if webrtc.users_mode == "sharedsecret" and not webrtc.sharedsecret:
        raise ConfigError("webrtc.sharedsecret: required when webrtc.users_mode is sharedsecret")
    if webrtc.users_mode == "httpheader" and not webrtc.httpheader:
        raise ConfigError("webrtc.httpheader: required when webrtc.users_mode is httpheader")
    if not webrtc.base_path.startswith("/"):
        raise ConfigError(f"webrtc.base_path: {webrtc.base_path!r} must start with /")
    if webrtc.session_secret and len(secret_bytes(webrtc.session_secret)) < 32:
        raise ConfigError("webrtc.session_secret: must be at least 32 bytes")
    if webrtc.encryption_secret and len(secret_bytes(webrtc.encryption_secret)) not in (16, 24, 32):
        raise ConfigError("webrtc.encryption_secret: must be exactly 16, 24 or 32 bytes")
    unknown = set(webrtc.modules) - set(DEFAULT_WEBRTC_MODULES)
    if unknown:
        raise ConfigError(f"webrtc.modules: unknown module(s) {', '.join(sorted(unknown))}")
    for pattern in webrtc.conference_rooms:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"webrtc.conference_rooms: {pattern!r} is not a regular expression: {exc}") from None


def secret_bytes(value: str) -> bytes:
    """A configured secret as key bytes: hex-decoded when it is valid hex (as Spreed WebRTC reads them)."""
    try:
        return bytes.fromhex(value)
    except ValueError:
        return value.encode()


_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?")


def _validate_calls(settings: Settings) -> None:
    signaling, turn = settings.signaling, settings.turn
    if signaling.mode not in {"internal", "external"}:
        raise ConfigError(f"signaling.mode: {signaling.mode!r} is not internal or external")
    if signaling.mode == "external" and not (signaling.servers and signaling.secret):
        raise ConfigError("signaling.mode: external needs signaling.servers and signaling.secret")
    for url in signaling.servers:
        if not url.startswith(("https://", "http://", "wss://", "ws://")) or any(c.isspace() for c in url):
            raise ConfigError(f"signaling.servers: {url!r} is not an http(s):// or ws(s):// URL")
    for key, entries in (("stun.servers", settings.stun.servers), ("turn.servers", turn.servers)):
        for entry in entries:
            _check_host_port(key, entry)
    if turn.servers and not turn.secret:
        raise ConfigError("turn.secret: required when turn.servers is set (credentials are HMACs with it)")
    for key, values, allowed in (("turn.schemes", turn.schemes, {"turn", "turns"}),
                                 ("turn.protocols", turn.protocols, {"udp", "tcp"})):
        if not values or not set(values) <= allowed:
            raise ConfigError(f"{key}: expected one or both of {', '.join(sorted(allowed))}, got {list(values)}")
    if signaling.session_ping_timeout < 2:
        raise ConfigError("signaling.session_ping_timeout: must be at least 2 seconds")
    if not 0 <= signaling.pull_timeout < signaling.session_ping_timeout:
        raise ConfigError("signaling.pull_timeout: must be between 0 and signaling.session_ping_timeout "
                          "(a waiting client must ping again before its session expires)")
    if signaling.max_payload_bytes < 1024:
        raise ConfigError("signaling.max_payload_bytes: must be at least 1024")
    if not 60 <= turn.credential_ttl <= 30 * 86400:
        raise ConfigError("turn.credential_ttl: must be between 60 seconds and 30 days")


def _check_host_port(key: str, entry: str) -> None:
    """`host`, `host:port` or `[v6]:port`: what Talk writes after `stun:` / `turn:` in an ICE URL."""
    match = _HOST_PORT.fullmatch(entry)
    if match is None or (match.group(1) is not None and not 0 < int(match.group(1)) < 65536):
        raise ConfigError(f"{key}: {entry!r} is not host:port (write it without a scheme)")


def describe(settings: Settings) -> dict[str, Any]:
    """Effective settings as nested plain values, secrets masked (for `talkd config show`)."""
    result: dict[str, Any] = {}
    for spec in option_specs():
        value = getattr(getattr(settings, spec.section), spec.name)
        if spec.secret and value:
            value = "***"
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        result.setdefault(spec.section, {})[spec.name] = value
    return result


def reference_markdown() -> str:
    """The configuration reference table (README), generated from the option declarations."""
    lines = ["| TOML key | flag | environment | default | meaning |", "|---|---|---|---|---|"]
    for spec in option_specs():
        default = "" if spec.secret else _show_default(spec.default)
        lines.append(f"| `{spec.section}.{spec.name}` | `{spec.flag}` | `{spec.env}` | {default} | {spec.help} |")
    return "\n".join(lines)
