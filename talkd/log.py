"""Structured logging: `key=value` text or JSON lines, quiet by default, secrets never written."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
QUIET_LIBRARIES = ("aiohttp.access", "sqlalchemy", "alembic", "asyncio", "aiosqlite", "asyncpg")
_SECRET_KEYS = {"password", "secret", "token", "authorization", "apppassword", "app_password", "cookie"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
    return {k: ("***" if k.lower() in _SECRET_KEYS else v) for k, v in extra.items()}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), record.levelname.lower(), record.name,
                 f"msg={record.getMessage()!r}"]
        parts += [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {"ts": record.created, "level": record.levelname.lower(), "logger": record.name,
                                "msg": record.getMessage(), **_fields(record)}
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


class _MalformedRequests(logging.Filter):
    """aiohttp's server logs every request it cannot parse (and every body that does not decompress)
    with a traceback at ERROR, though the client only sent garbage and got its 400: make that one line
    at INFO, dropped when INFO is off."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, (HttpProcessingError, RequestPayloadError)):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.INFO):
            return False
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg, record.args = "malformed HTTP request: %s", (" ".join(str(exc).split()),)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text = None, None
        if remote is not None:
            record.remote = remote
        return True


_MALFORMED = _MalformedRequests()


def quiet_malformed_requests() -> None:
    """Install the filter above on aiohttp's (process-wide) server logger, once."""
    logging.getLogger("aiohttp.server").addFilter(_MALFORMED)


def setup(level: str = "info", fmt: str = "text", access_log: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries are quiet unless something is wrong; the database drivers log every statement with
    # its parameters at debug level, and those include session and CSRF tokens.
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if access_log else logging.WARNING)
