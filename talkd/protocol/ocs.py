"""The OCS envelope as Nextcloud renders it, for /ocs/v1.php and /ocs/v2.php, in JSON or XML.

v1: HTTP 200 for everything except "unauthorised" (401); meta.statuscode is 100 on success and
    otherwise the status the controller chose (404, 403, 102...), with totalitems/itemsperpage.
v2: HTTP status = the chosen status, with OCS-only codes mapped (997→401, 998→404, 996/999→500,
    anything outside 200..600 → 400); meta.statuscode keeps the raw code.
Bodies of 204, 304 and 1xx responses are empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from talkd.protocol.xml import render_document

RESPOND_SERVER_ERROR = 996
RESPOND_UNAUTHORISED = 997
RESPOND_NOT_FOUND = 998
RESPOND_UNKNOWN_ERROR = 999

INVALID_QUERY_MESSAGE = (
    "Invalid query, please check the syntax. API specifications are here: "
    "http://www.freedesktop.org/wiki/Specifications/open-collaboration-services.\n"
)

ApiVersion = Literal[1, 2]
Format = Literal["json", "xml"]


@dataclass
class OcsResult:
    """What a handler answers: data plus the status it chose (an HTTP status or an OCS code)."""

    data: Any = field(default_factory=list)
    status: int = 200
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    items_count: int | None = None
    items_per_page: int | None = None


@dataclass(frozen=True)
class Rendered:
    http_status: int
    body: bytes
    content_type: str


def http_status(status: int, version: ApiVersion) -> int:
    if version == 1:
        return 401 if status == RESPOND_UNAUTHORISED else 200
    if status == RESPOND_UNAUTHORISED:
        return 401
    if status == RESPOND_NOT_FOUND:
        return 404
    if status in (RESPOND_SERVER_ERROR, RESPOND_UNKNOWN_ERROR):
        return 500
    if status < 200 or status > 600:
        return 400
    return status


def meta(result: OcsResult, version: ApiVersion) -> dict[str, Any]:
    status = result.status
    if version == 1:
        code = 100 if status == 200 else status
        ok = code == 100
        return {
            "status": "ok" if ok else "failure",
            "statuscode": code,
            "message": "OK" if ok else (result.message or ""),
            "totalitems": "" if result.items_count is None else str(result.items_count),
            "itemsperpage": "" if result.items_per_page is None else str(result.items_per_page),
        }
    ok = 200 <= status < 300
    out: dict[str, Any] = {
        "status": "ok" if ok else "failure",
        "statuscode": status,
        "message": "OK" if ok else (result.message or ""),
    }
    if result.items_count is not None:
        out["totalitems"] = result.items_count
    if result.items_per_page is not None:
        out["itemsperpage"] = result.items_per_page
    return out


def _json(value: Any) -> bytes:
    # Like PHP's JSON_HEX_TAG: no raw < or > in the body, so no browser can sniff it as HTML.
    return orjson.dumps(value).replace(b"<", b"\\u003C").replace(b">", b"\\u003E")


def render(result: OcsResult, version: ApiVersion, fmt: Format) -> Rendered:
    status = http_status(result.status, version)
    content_type = "application/json; charset=utf-8" if fmt == "json" else "application/xml; charset=utf-8"
    if status in (204, 304) or 100 <= status < 200:
        return Rendered(status, b"", content_type)
    envelope = {"ocs": {"meta": meta(result, version), "data": result.data}}
    body = _json(envelope) if fmt == "json" else render_document("ocs", envelope["ocs"])
    return Rendered(status, body, content_type)


def choose_format(format_param: str | None, accept: str | None) -> Format:
    """`format=json|xml` wins; otherwise JSON when Accept names it; otherwise XML (Nextcloud's default)."""
    if format_param in ("json", "xml"):
        return format_param  # type: ignore[return-value]
    if accept and "application/json" in accept.lower():
        return "json"
    return "xml"


def parse(body: bytes) -> Mapping[str, Any]:
    """Decode a JSON OCS response into its `ocs` object (used by tests and bench clients)."""
    decoded = orjson.loads(body)
    ocs = decoded["ocs"]
    if not isinstance(ocs, dict):
        raise ValueError("not an OCS envelope")
    return ocs
