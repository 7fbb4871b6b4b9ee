"""Request parameters read alike from the query string, a form body or a JSON body (as Nextcloud does),
with typed readers that reject bad values as InvalidInput."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from talkd.errors import InvalidInput, TooLarge, TooSlow
from talkd.services import SERVICES

_MISSING = object()

# What storage columns hold: Integer is 32 bits on PostgreSQL, BigInteger (and every SQLite integer) 64.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# The integer forms accepted, as PHP's is_numeric reads an integer: ASCII digits with an optional sign,
# optional ASCII whitespace around. Talk gets fractions and exponents cast to int; talkd refuses them, and
# anything longer than this, so no text is ever handed to int() that it refuses or is slow to convert.
_INTEGER_TEXT = re.compile(r"[ \t\n\r\v\f]*[+-]?[0-9]+[ \t\n\r\v\f]*")
MAX_INTEGER_TEXT = 64


def parse_integer(value: Any) -> int | None:
    """The integer a query, form or JSON value carries (JSON numbers must be whole), else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) <= MAX_INTEGER_TEXT and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    return None


class Params:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def raw(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def string(self, name: str, default: str | None = None, *, max_length: int | None = None,
            required: bool = False) -> str:
        value = self._values.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required or default is None:
                raise InvalidInput(f"Missing parameter {name}", reason=f"missing-{name}")
            return default
        if isinstance(value, bool):
            value = "1" if value else "0"
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidInput(f"Parameter {name} must be a string", reason=f"invalid-{name}")
        if max_length is not None and len(value) > max_length:
            raise InvalidInput(f"Parameter {name} is too long", reason=f"too-long-{name}")
        if "\x00" in value:
            # No parameter has a use for NUL, and PostgreSQL refuses it in text columns.
            raise InvalidInput(f"Parameter {name} must not contain NUL characters", reason=f"invalid-{name}")
        return value

    def opt_string(self, name: str, *, max_length: int | None = None) -> str | None:
        if self._values.get(name) is None:
            return None
        return self.string(name, max_length=max_length)

    def integer(self, name: str, default: int | None = None, *, minimum: int = INT64_MIN,
            maximum: int = INT64_MAX, clamp: bool = False) -> int:
        """An integer within [minimum, maximum] (`clamp`: moved into it). `maximum` defaults to what a
        BigInteger column holds; parameters stored in or compared with an Integer column pass INT32_MAX.
        A value no column can hold is refused even where the route clamps."""
        value = self._values.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            if default is None:
                raise InvalidInput(f"Missing parameter {name}", reason=f"missing-{name}")
            return default
        number = parse_integer(value)
        if number is None:
            raise InvalidInput(f"Parameter {name} must be an integer", reason=f"invalid-{name}")
        if not INT64_MIN <= number <= INT64_MAX or (not clamp and number < minimum):
            raise InvalidInput(f"Parameter {name} is out of range", reason=f"invalid-{name}")
        if number > maximum and not clamp:
            raise InvalidInput(f"Parameter {name} is out of range", reason=f"invalid-{name}")
        return min(max(number, minimum), maximum)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise InvalidInput(f"Parameter {name} must be a boolean", reason=f"invalid-{name}")

    def strings(self, name: str, *, max_items: int = 1000) -> list[str]:
        value = self._values.get(name, _MISSING)
        if value is _MISSING or value is None or value == "":
            return []
        items = value if isinstance(value, list) else [value]
        if len(items) > max_items or not all(isinstance(i, (str, int)) for i in items):
            raise InvalidInput(f"Parameter {name} must be a list of strings", reason=f"invalid-{name}")
        if any(isinstance(i, str) and "\x00" in i for i in items):
            raise InvalidInput(f"Parameter {name} must not contain NUL characters", reason=f"invalid-{name}")
        return [str(i) for i in items]


def _add(target: dict[str, Any], key: str, value: Any) -> None:
    # PHP style: "groups[]=a&groups[]=b" is the list ["a", "b"].
    if key.endswith("[]"):
        target.setdefault(key[:-2], [])
        if isinstance(target[key[:-2]], list):
            target[key[:-2]].append(value)
        return
    target[key] = value


async def read_body(request: web.Request) -> bytes:
    """The whole body, decompressed, read once (request.post() reuses it). Over limits.max_body_bytes
    is TooLarge; one that does not decompress (Content-Encoding gzip/deflate) InvalidInput; one still
    incomplete after limits.body_timeout (shorter than its Content-Length, or trickled) TooSlow. aiohttp
    closes such a connection after the answer, once its lingering time has passed."""
    try:
        async with asyncio.timeout(request.app[SERVICES].settings.limits.body_timeout):
            return await request.read()
    except TimeoutError:
        raise TooSlow("Request body timed out") from None
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge("Request body is too large") from None
    except web.RequestPayloadError:
        raise InvalidInput("Malformed request body", reason="malformed-body") from None


async def read_params(request: web.Request, route_params: Mapping[str, str] | None = None) -> Params:
    """Query string first, then the body's values on top, then the route's own path parameters."""
    values: dict[str, Any] = {}
    for key, value in request.query.items():
        _add(values, key, value)
    if request.can_read_body:
        content_type = request.content_type
        body = await read_body(request)
        if body:
            if content_type == "application/json":
                try:
                    decoded = orjson.loads(body)
                except orjson.JSONDecodeError:
                    raise InvalidInput("Malformed JSON body", reason="malformed-body") from None
                if not isinstance(decoded, dict):
                    raise InvalidInput("JSON body must be an object", reason="malformed-body")
                values.update(decoded)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data", ""):
                try:
                    form = await request.post()
                except ValueError:
                    raise InvalidInput("Malformed form body", reason="malformed-body") from None
                for key, field_value in form.items():
                    if isinstance(field_value, str):
                        _add(values, key, field_value)
    values.update(route_params or {})
    return Params(values)
