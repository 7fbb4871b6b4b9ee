"""What probing talkd from outside found (issue 11, "Wrong answers"): inputs that used to get a 500, a 996 or
an unparseable answer. Each now gets an error in the API's own format, changes nothing, and logs no
traceback; every case runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import logging
from typing import Any

import orjson
import pytest

from talkd.storage.tables import metadata
from tests.chat.helpers import V1, V4, group_room, send
from tests.helpers.client import TalkClient, basic

ADMIN = {"Authorization": basic("admin", "admin-password"), "OCS-APIRequest": "true", "Accept": "application/json"}
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


async def _room_with_message(talk: TalkClient) -> tuple[str, int]:
    await talk.make_user("bob")
    token = await group_room(talk, "admin", "bob")
    message = await send(talk, token, "admin", "hello")
    return token, int(message["id"])


async def _snapshot(talk: TalkClient) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (small in these tests), to prove a refusal changed nothing."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with talk.services.db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in ("auth_failures", "web_sessions"):
                continue  # what the requests themselves write (logins, cookies)
            result = await conn.execute(table.select())
            rows[table.name] = sorted((tuple(r) for r in result), key=repr)
    return rows


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


# Integer parameters ---------------------------------------------------------------------------------
# Every integer parameter of every route: (method, path, name, the largest value its storage holds, other
# parameters the route needs). {token} and {message} are filled in with a real room and message.

_INTEGERS: list[tuple[str, str, str, int, dict[str, Any]]] = [
    ("GET", "/cloud/users", "limit", 10_000, {}),
    ("GET", "/cloud/users", "offset", 10_000_000, {}),
    ("GET", "/cloud/groups", "limit", 10_000, {}),
    ("GET", "/cloud/groups", "offset", 10_000_000, {}),
    ("GET", "/cloud/groups/details", "limit", 10_000, {}),
    ("GET", f"{V4}/room", "modifiedSince", INT64_MAX, {}),
    ("POST", f"{V4}/room", "roomType", INT32_MAX, {"roomName": "x"}),
    ("PUT", f"{V4}/room/{{token}}/read-only", "state", INT32_MAX, {}),
    ("PUT", f"{V4}/room/{{token}}/webinar/lobby", "state", INT32_MAX, {}),
    ("PUT", f"{V4}/room/{{token}}/webinar/lobby", "timer", INT64_MAX, {"state": "1"}),
    ("POST", f"{V4}/room/{{token}}/notify", "level", INT32_MAX, {}),
    ("GET", f"{V1}/chat/{{token}}", "lookIntoFuture", 1, {"timeout": "0"}),
    ("GET", f"{V1}/chat/{{token}}", "limit", INT64_MAX, {"lookIntoFuture": "0"}),
    ("GET", f"{V1}/chat/{{token}}", "timeout", INT64_MAX, {"lookIntoFuture": "1", "lastKnownMessageId": "0"}),
    ("GET", f"{V1}/chat/{{token}}", "lastKnownMessageId", INT64_MAX, {"lookIntoFuture": "1", "timeout": "0"}),
    ("POST", f"{V1}/chat/{{token}}", "replyTo", INT64_MAX, {"message": "hi"}),
    ("POST", f"{V1}/chat/{{token}}/read", "lastReadMessage", INT64_MAX, {}),
    ("GET", f"{V1}/chat/{{token}}/mentions", "limit", INT64_MAX, {"search": "b"}),
    ("POST", f"{V4}/call/{{token}}", "flags", 15, {}),
    ("PUT", f"{V4}/call/{{token}}", "flags", 15, {}),
    ("DELETE", f"{V4}/room/{{token}}/attendees", "attendeeId", INT32_MAX, {}),
    ("POST", f"{V4}/room/{{token}}/moderators", "attendeeId", INT32_MAX, {}),
    ("DELETE", f"{V4}/room/{{token}}/moderators", "attendeeId", INT32_MAX, {}),
]
_IDS = [f"{m} {p} {n}" for m, p, n, _, _ in _INTEGERS]
_NOT_INTEGERS = ["\u00b2", "--5", "+-5", "5-", "1.5", "1e3", "0x10", "\u0665", "\uff15", "5\x00", "1_000",
                 "1" * 4301, "9" * 30]


@pytest.mark.parametrize(("method", "path", "name", "_maximum", "extra"), _INTEGERS, ids=_IDS)
async def test_an_integer_parameter_that_is_no_integer_is_400(
        talk: TalkClient, caplog: pytest.LogCaptureFixture, method: str, path: str, name: str, _maximum: int,
        extra: dict[str, Any]) -> None:
    token, _ = await _room_with_message(talk)
    path = path.replace("{token}", token)
    before = await _snapshot(talk)
    for value in _NOT_INTEGERS:
        for version in (1, 2):
            reply = await talk.ocs(method, path, user="admin", version=version, params={**extra, name: value})
            reply.expect(400)
        # JSON bodies: strings, floats, objects and booleans that are no integer
        for value_in_json in (value, 1.5, {"a": 1}, [1]):
            reply = await talk.ocs(method, path, user="admin", params=extra if method == "GET" else None,
                                   json=None if method == "GET" else {**extra, name: value_in_json})
            if method != "GET":
                reply.expect(400)
    assert await _snapshot(talk) == before
    _no_errors_logged(caplog)


@pytest.mark.parametrize(("method", "path", "name", "maximum", "extra"), _INTEGERS, ids=_IDS)
async def test_an_integer_beyond_what_storage_holds_is_400(
        talk: TalkClient, caplog: pytest.LogCaptureFixture, method: str, path: str, name: str, maximum: int,
        extra: dict[str, Any]) -> None:
    token, _ = await _room_with_message(talk)
    path = path.replace("{token}", token)
    before = await _snapshot(talk)
    for value in (maximum + 1, 2**31, 2**63, 2**64, -(2**63) - 1, -(2**31) - 1, 10**40):
        if value <= maximum and value >= 0:
            continue
        for version in (1, 2):
            reply = await talk.ocs(method, path, user="admin", version=version, params={**extra, name: str(value)})
            # Negative values some routes accept as "none" (limit=-1) or refuse as out of range: never a 5xx.
            if value > maximum:
                reply.expect(400)
            else:
                assert reply.http_status < 500 and reply.status_code != 996, (value, reply.message)
        if method != "GET" and -(2**63) <= value < 2**64:  # what a JSON number can carry into talkd
            reply = await talk.ocs(method, path, user="admin", json={**extra, name: value})
            if value > maximum:
                reply.expect(400)
            else:
                assert reply.http_status < 500, (value, reply.message)
    assert await _snapshot(talk) == before
    _no_errors_logged(caplog)


@pytest.mark.parametrize(("method", "path", "name", "maximum", "extra"), _INTEGERS, ids=_IDS)
async def test_the_largest_integer_storage_holds_is_no_server_error(
        talk: TalkClient, caplog: pytest.LogCaptureFixture, method: str, path: str, name: str, maximum: int,
        extra: dict[str, Any]) -> None:
    token, _ = await _room_with_message(talk)
    path = path.replace("{token}", token)
    for value in (str(maximum), f"+{maximum}", f" {maximum} ", "0" * 40 + "1"):
        reply = await talk.ocs(method, path, user="admin", params={**extra, name: value})
        assert reply.http_status < 500 and reply.status_code != 996, (value, reply.message)
    _no_errors_logged(caplog)


@pytest.mark.parametrize("route", ["chat/{token}/{message}", "reaction/{token}/{message}"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_message_ids_in_the_path_are_bounded(talk: TalkClient, caplog: pytest.LogCaptureFixture,
                                                   route: str, method: str) -> None:
    token, _ = await _room_with_message(talk)
    if route.startswith("chat") and method != "DELETE":
        return
    before = await _snapshot(talk)
    # The routes take 1 to 18 ASCII digits (every id a BigInteger holds up to 10**18); others match no route.
    for message_id, codes in (("9" * 18, {404}), ("0" * 18, {404}), (str(INT64_MAX), {998}),
                              ("%C2%B2", {998}), ("1" * 4301, {998})):
        path = f"{V1}/{route}".replace("{token}", token).replace("{message}", message_id)
        reply = await talk.ocs(method, path, user="admin", params={"reaction": "\U0001f44d"})
        assert reply.status_code in codes, (message_id, reply.http_status, reply.message)
    assert await _snapshot(talk) == before
    _no_errors_logged(caplog)


@pytest.mark.parametrize("version", [1, 2])
async def test_user_list_with_a_superscript_limit_is_400_not_996(talk: TalkClient, version: int,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    async with talk.client.get(f"/ocs/v{version}.php/cloud/users?limit=%C2%B2", headers=ADMIN) as response:
        body = orjson.loads(await response.read())
        assert (response.status, body["ocs"]["meta"]["statuscode"]) == (200 if version == 1 else 400, 400)
    _no_errors_logged(caplog)


# Raw HTTP ------------------------------------------------------------------------------------------------


async def _http(talk: TalkClient, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte (what aiohttp's client would refuse or re-encode), its answer."""
    host, port = talk.client.host, talk.client.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body
    finally:
        writer.close()
        await writer.wait_closed()


def _get(path: bytes, *headers: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: talkd\r\nConnection: close\r\n" + b"".join(
        h + b"\r\n" for h in headers) + b"\r\n"


def _ocs_code(body: bytes) -> int:
    return int(orjson.loads(body)["ocs"]["meta"]["statuscode"])


# Session cookies that are no text ---------------------------------------------------------------------


@pytest.mark.parametrize("cookie", [b"\xff\xfe", b"abc\xc3", b"\xed\xa0\x80", b"tok\x80en", "\u00e9".encode()],
                         ids=["ff-fe", "cut-sequence", "surrogate", "continuation", "latin-1-e-acute"])
async def test_a_session_cookie_that_is_no_utf8_is_no_session(talk: TalkClient, caplog: pytest.LogCaptureFixture,
                                                              cookie: bytes) -> None:
    token, _ = await _room_with_message(talk)
    cookie_header = b"Cookie: talkd_session=" + cookie
    for path, expected in ((b"/ocs/v2.php/cloud/user?format=json", 401),
                           (f"/ocs/v2.php{V4}/room/{token}?format=json".encode(), 404)):
        status, _, body = await _http(talk, _get(path, b"OCS-APIRequest: true", cookie_header))
        assert status == expected and _ocs_code(body) in (997, 404), body
    # with Basic credentials, the cookie is not even looked at
    status, _, _ = await _http(talk, _get(b"/ocs/v2.php/cloud/user?format=json", b"OCS-APIRequest: true",
                                          cookie_header, f"Authorization: {basic('admin', 'admin-password')}".encode()))
    assert status == 200
    # the browser routes start a new session instead
    status, headers, body = await _http(talk, _get(b"/index.php/csrftoken", cookie_header))
    assert status == 200 and "token" in orjson.loads(body) and "talkd_session=" in headers.get("set-cookie", "")
    _no_errors_logged(caplog)


# Compressed bodies that do not decompress -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("version", [1, 2])
async def test_a_body_that_does_not_decompress_is_400_in_ocs_format(
        talk: TalkClient, caplog: pytest.LogCaptureFixture, encoding: str, version: int) -> None:
    before = await _snapshot(talk)
    for body in (b"garbage, not compressed", b"\x1f\x8b\x08\x00garbage", b"x\x9c\xff\xff"):
        reply = await talk.ocs("POST", "/cloud/groups", user="admin", version=version, data=body,
                               headers={"Content-Encoding": encoding,
                                        "Content-Type": "application/x-www-form-urlencoded"})
        assert reply.http_status < 500 and reply.status_code != 996, (encoding, body, reply.message)
        reply.expect(400)
    assert await _snapshot(talk) == before
    # A body that does decompress still works.
    packed = gzip.compress(b"groupid=packed")
    (await talk.ocs("POST", "/cloud/groups", user="admin", version=version, data=packed,
                    headers={"Content-Encoding": "gzip", "Content-Type": "application/x-www-form-urlencoded"})
     ).expect(200)
    _no_errors_logged(caplog)


# Room tokens PostgreSQL text cannot hold ----------------------------------------------------------------

_TOKEN_ROUTES = [
    ("GET", f"{V4}/room/{{token}}"),
    ("PUT", f"{V4}/room/{{token}}"),
    ("DELETE", f"{V4}/room/{{token}}"),
    ("GET", f"{V4}/room/{{token}}/participants"),
    ("POST", f"{V4}/room/{{token}}/participants/active"),
    ("DELETE", f"{V4}/room/{{token}}/participants/self"),
    ("PUT", f"{V4}/room/{{token}}/webinar/lobby"),
    ("POST", f"{V4}/room/{{token}}/favorite"),
    ("GET", f"{V1}/chat/{{token}}"),
    ("POST", f"{V1}/chat/{{token}}"),
    ("POST", f"{V1}/chat/{{token}}/read"),
    ("GET", f"{V1}/chat/{{token}}/mentions"),
    ("GET", f"{V1}/reaction/{{token}}/1"),
    ("GET", f"{V4}/call/{{token}}"),
    ("POST", f"{V4}/call/{{token}}"),
    ("GET", "/apps/spreed/api/v3/signaling/{token}"),
    ("POST", "/apps/spreed/api/v1/guest/{token}/name"),
]


@pytest.mark.parametrize("bad", ["ab%00cd", "%00", "ab%FFcd", "ab%ED%A0%80cd", "%C0%80"],
                         ids=["nul", "only-nul", "invalid-utf8", "surrogate", "overlong-nul"])
@pytest.mark.parametrize("as_guest", [False, True], ids=["user", "guest"])
async def test_a_room_token_no_database_can_hold_is_an_unknown_room(
        talk: TalkClient, caplog: pytest.LogCaptureFixture, bad: str, as_guest: bool) -> None:
    await _room_with_message(talk)
    before = await _snapshot(talk)
    for method, route in _TOKEN_ROUTES:
        path = f"/ocs/v2.php{route}".replace("{token}", bad) + "?format=json&message=x&state=0&search=a&displayName=g"
        auth = [] if as_guest else [f"Authorization: {basic('admin', 'admin-password')}".encode()]
        status, _, body = await _http(talk, method.encode() + _get(path.encode(), b"OCS-APIRequest: true",
                                                                  b"Content-Length: 0", *auth)[3:])
        # 401/403: routes that refuse the caller before looking at the room (a user setting a guest name)
        assert status in (401, 403, 404) and _ocs_code(body) in (997, 403, 404), (method, route, status, body)
    assert await _snapshot(talk) == before
    _no_errors_logged(caplog)
