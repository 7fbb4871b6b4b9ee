"""What probing talkd from outside found (issue 11, "Wrong answers"): inputs that used to get a 500, a 996 or
an unparseable answer. Each now gets an error in the API's own format, changes nothing, and logs no
traceback; every case runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import sqlalchemy as sa

from talkd.protocol.xml import render_document as render
from talkd.storage.tables import metadata
from tests.chat.helpers import V1, V4, group_room, send
from tests.helpers.client import TalkClient, basic
from tests.helpers.server import running_talkd

ADMIN = {"Authorization": basic("admin", "admin-password"), "OCS-APIRequest": "true", "Accept": "application/json"}
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


async def _room_with_message(talk: TalkClient) -> tuple[str, int]:
    await talk.make_user("bob")
    token = await group_room(talk, "admin", "bob")
    message = await send(talk, token, "admin", "hello")
    await talk.services.conversations.core.flush()  # the read marker sending batched, before any snapshot
    return token, int(message["id"])


async def _snapshot(talk: TalkClient) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (small in these tests), to prove a refusal changed nothing."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with talk.services.db.read() as conn:
        for table in metadata.sorted_tables:
            if table.name in ("auth_failures", "web_sessions"):
                continue  # what the requests themselves write (logins, cookies)
            # not when someone last logged in or used a session: the requests themselves change that
            columns = [c for c in table.c if c.name not in ("last_login", "last_used", "last_seen")]
            result = await conn.execute(sa.select(*columns))
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
    for body in (b"garbage, not compressed", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", b"x\x9c\xff\xff"):
        reply = await talk.ocs("POST", "/cloud/groups", user="admin", version=version, data=body,
                               headers={"Content-Encoding": encoding, "Connection": "close",
                                        "Content-Type": "application/x-www-form-urlencoded"})
        assert reply.http_status < 500 and reply.status_code != 996, (encoding, body, reply.message)
        assert reply.status_code == 400, (encoding, body, reply.message)
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


# A real server: bodies that never arrive, requests that are no HTTP ---------------------------------------

HANG_GUARD = 60.0  # far beyond the 0.5 s body timeout below: only a server that never answers reaches it


async def _exchange(port: int, request: bytes) -> tuple[bytes, bytes]:
    """Send `request` (and nothing more) and read until the server closes: (the status line, all of it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), HANG_GUARD)
        return answer.split(b"\r\n", 1)[0], answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def _post(path: str, content_length: int, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: talkd", f"Content-Length: {content_length}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_a_body_shorter_than_its_length_gets_408_and_frees_the_handler(tmp_path: Path) -> None:
    env = {"TALKD_LIMITS_BODY_TIMEOUT": "0.5"}
    async with running_talkd(tmp_path / "data", extra_env=env) as server:
        auth = f"Authorization: {basic(server.admin_user, server.admin_password)}"
        form = "Content-Type: application/x-www-form-urlencoded"
        cases = [  # (request, the status it must get, what the body must say)
            (_post("/ocs/v2.php/cloud/groups", 100, b"groupid=x", auth, form, "OCS-APIRequest: true",
                   "Accept: application/json"), 408, b'"statuscode":408'),
            (_post("/ocs/v1.php/cloud/groups", 100, b"groupid=x", auth, form, "OCS-APIRequest: true"),
             200, b"<statuscode>408</statuscode>"),
            (_post("/ocs/v2.php/apps/spreed/api/v4/room", 50, b"{", auth, "Content-Type: application/json",
                   "OCS-APIRequest: true", "Accept: application/json"), 408, b'"statuscode":408'),
            (_post("/index.php/login/v2/poll", 40, b"token=", form), 408, b"[]"),
            (_post("/index.php/login/v2/flow/unknown", 40, b"user=", form), 403, b"expired"),
            (_post("/api/v1/tokens", 40, b"a=", form), 408, b'"success":false'),
        ]
        answers = await asyncio.gather(*(_exchange(server.port, request) for request, _, _ in cases))
        for (_, status, needle), (status_line, answer) in zip(cases, answers, strict=True):
            assert int(status_line.split()[1]) == status and needle in answer, answer
        # and the server still serves
        async with aiohttp.ClientSession() as session, session.get(f"{server.base_url}/status.php") as response:
            assert response.status == 200
    assert "Traceback" not in server.output()


_MALFORMED = [
    b"GET /status.php HTTP/1.1\r\nHost: talkd\r\nno colon in this header\r\n\r\n",
    b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: talkd\r\n\r\n",
    b"GET /status.php HTTP/1.1\r\nHost: talkd\r\nX-Long: " + b"b" * 10_000 + b"\r\n\r\n",
    b"GET /status.php HTTP/1.1\r\nHost: talkd\r\nContent-Length: abc\r\n\r\n",
    b"GET /status.php HTTP/1.1\r\nHost: talkd\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"POST /ocs/v2.php/cloud/groups HTTP/1.1\r\nHost: talkd\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /status.php HTTP/9.9\r\nHost: talkd\r\n\r\n",
    b"GET /status.php HTTP/1.1\r\nHost: talkd\r\n\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello\r\n\r\n",
    b"POST /ocs/v2.php/cloud/groups HTTP/1.1\r\nHost: talkd\r\nContent-Encoding: gzip\r\nContent-Length: 8\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nOCS-APIRequest: true\r\n\r\nnot gzip",
]


async def test_malformed_requests_get_400_without_a_traceback_in_the_log(tmp_path: Path) -> None:
    async with running_talkd(tmp_path / "data") as server:
        for request in _MALFORMED:
            status_line, answer = await _exchange(server.port, request)
            assert status_line.startswith(b"HTTP/1.") and int(status_line.split()[1]) < 500, answer
    output = server.output()
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if re.match(r"\S+ (error|critical) ", line)]
    assert not errors, errors
    # at most one quiet line each
    assert output.count("malformed HTTP request") <= len(_MALFORMED)


# XML answers whatever was stored ------------------------------------------------------------------------

_HOSTILE_TEXT = "bell\x07 nul-ish\x01 vt\x0b ff\x0c esc\x1b cr\r nl\n tab\t nonchars\ufffe\uffff end"


@pytest.mark.parametrize("version", [1, 2])
async def test_xml_answers_stay_well_formed_whatever_a_message_holds(
        talk: TalkClient, caplog: pytest.LogCaptureFixture, version: int) -> None:
    token, _ = await _room_with_message(talk)
    sent = await send(talk, token, "bob", _HOSTILE_TEXT)
    (await talk.ocs("PUT", f"{V4}/room/{token}", user="admin", json={"roomName": "team\x02room"})).expect(200)
    paths = [f"{V1}/chat/{token}?lookIntoFuture=0", f"{V4}/room", f"{V4}/room/{token}",
             f"{V4}/room/{token}/participants", f"{V1}/chat/{token}/mentions?search=b"]
    for path in paths:
        async with talk.client.get(f"/ocs/v{version}.php{path}", headers={**ADMIN, "Accept": "application/xml"}
                                   ) as response:
            body = await response.read()
            assert response.status == 200 and response.content_type == "application/xml"
        root = ET.fromstring(body)  # expat: a real XML 1.0 parser
        assert root.findtext("meta/statuscode") in ("100", "200")
        if path.startswith(f"{V1}/chat/{token}?"):
            texts = [e.findtext("message") for e in root.findall("data/element")]
            expected = _HOSTILE_TEXT
            for forbidden in "\x07\x01\x0b\x0c\x1b\ufffe\uffff":
                expected = expected.replace(forbidden, "\ufffd")
            assert expected in texts, texts  # \r, \n and \t survive as they were
        if path == f"{V4}/room/{token}":
            assert root.findtext("data/name") == "team\ufffdroom"
    # JSON still gives the message exactly as stored
    history = (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob", params={"lookIntoFuture": 0})).expect(200)
    assert any(m["id"] == sent["id"] and m["message"] == _HOSTILE_TEXT for m in history.data)
    _no_errors_logged(caplog)


def test_xml_element_names_are_safe_whatever_a_key_holds() -> None:
    keys = ["a\x01", "a\u00b2", "\u00fc", "1x", "\U0001f44d", "", "a b", "<tag>", "ok-name_1.x", "\ud800"]
    data = {key: f"value of {key!r}" for key in keys}
    root = ET.fromstring(render("ocs", {"data": data}))
    names = [e.tag for e in root.find("data")]  # type: ignore[union-attr]
    assert names[-2] == "ok-name_1.x" and len(names) == len(keys)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name) for name in names), names
