"""Spreed WebRTC REST API v1: every endpoint of the seed, its JSON, and its errors with codes and statuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from tests.helpers.spreed import SpreedSocket, wait_closed
from tests.spreed.conftest import SHARED_SECRET, MakeClient


def secret_for(combo: str, key: str = SHARED_SECRET) -> str:
    return base64.b64encode(hmac.new(key.encode(), combo.encode(), hashlib.sha256).digest()).decode()


async def call(client: TestClient, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with client.request(method, path, **kwargs) as response:
        body = await response.read()
        if response.content_type == "application/json":
            return response.status, orjson.loads(body), response.headers
        return response.status, body.decode(), response.headers


def rewrite(path: Path, text: str) -> None:
    """Replace a file and move its mtime on (a same-second rewrite must still be noticed here)."""
    path.write_text(text)
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))


def error(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "code": code, "message": message}


# --- discovery and config ---------------------------------------------------------------------------------

async def test_well_known_names_the_endpoint_from_the_host(client: TestClient) -> None:
    status, body, _ = await call(client, "GET", "/.well-known/spreed-configuration")
    assert status == 200 and body == {"spreed-webrtc_endpoint": f"http://{client.host}:{client.port}"}
    _, proxied, _ = await call(client, "GET", "/.well-known/spreed-configuration",
                               headers={"X-Forwarded-Proto": "https", "Host": "video.example.org"})
    assert proxied == {"spreed-webrtc_endpoint": "https://video.example.org"}


async def test_every_route_lives_under_the_base_path(make_client: MakeClient) -> None:
    client = await make_client(base_path="/video")
    status, body, _ = await call(client, "GET", "/video/.well-known/spreed-configuration", headers={"Host": "h"})
    assert status == 200 and body == {"spreed-webrtc_endpoint": "http://h/video"}
    _, config, _ = await call(client, "GET", "/video/api/v1/config")
    assert config["B"] == "/video/"
    assert (await call(client, "GET", "/api/v1/config"))[0] == 404
    socket = await SpreedSocket.open(client, path="/video/ws")
    assert socket.me["Type"] == "Self"
    await socket.close()


async def test_a_configured_base_url_replaces_the_host_header(make_client: MakeClient) -> None:
    client = await make_client(server__base_url="https://talk.example.org/")
    internal = {"Host": "10.0.0.5:8080"}
    _, body, _ = await call(client, "GET", "/.well-known/spreed-configuration", headers=internal)
    assert body == {"spreed-webrtc_endpoint": "https://talk.example.org"}
    _, room, _ = await call(client, "POST", "/api/v1/rooms", headers=internal)
    assert room["url"] == f"https://talk.example.org/{room['name']}"


async def test_head_on_a_get_endpoint_answers_200_without_a_body(client: TestClient) -> None:
    async with client.head("/api/v1/config") as response:
        assert response.status == 200 and response.content_type == "application/json"
        assert await response.read() == b""


async def test_realm_and_server_token_settings(make_client: MakeClient) -> None:
    client = await make_client(realm="video.example", server_token="our-public-token")
    assert (await call(client, "GET", "/api/v1/config"))[1]["Token"] == "our-public-token"
    socket = await SpreedSocket.open(client)
    _, registered, _ = await call(client, "POST", "/api/v1/users", json={"id": socket.id, "sid": socket.me["Sid"]})
    assert registered["userid"].endswith("@video.example")
    await socket.close()


async def test_config_publishes_the_client_settings_and_no_secret(client: TestClient) -> None:
    status, body, headers = await call(client, "GET", "/api/v1/config")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert body == {
        "Title": "Spreed WebRTC", "S": "static/ver=" + body["Version"], "B": "/",
        "Token": "i-did-not-change-the-public-token-boo", "Renegotiation": False,
        "StunURIs": ["stun:stun.example.org:3478"],
        "TurnURIs": ["turn:turn.example.org:443?transport=udp", "turn:turn.example.org:443?transport=tcp"],
        "Tokens": True, "Version": body["Version"], "UsersEnabled": True, "UsersAllowRegistration": True,
        "UsersMode": "sharedsecret", "DefaultRoomEnabled": True, "Plugin": "", "AuthorizeRoomCreation": False,
        "AuthorizeRoomJoin": False, "Modules": ["screensharing", "youtube", "presentation", "contacts"],
    }
    text = orjson.dumps(body).decode()
    assert SHARED_SECRET not in text and "turn-secret" not in text


async def test_config_hides_the_global_room_and_reflects_disabled_users(make_client: MakeClient) -> None:
    client = await make_client(users_mode="", global_room="secret-lobby", token_file="", title="Ours")
    _, body, _ = await call(client, "GET", "/api/v1/config")
    assert body["UsersEnabled"] is False and body["UsersAllowRegistration"] is False and body["UsersMode"] == ""
    assert body["Tokens"] is False and body["Title"] == "Ours"
    assert "secret-lobby" not in orjson.dumps(body).decode()


async def test_a_method_the_resource_lacks_gets_a_json_405(client: TestClient) -> None:
    status, body, headers = await call(client, "POST", "/api/v1/config")
    assert status == 405 and body == error("method_not_allowed", "Method not allowed")
    assert headers["Allow"] == "GET, HEAD"
    status, body, _ = await call(client, "GET", "/api/v1/rooms")
    assert status == 405 and body["code"] == "method_not_allowed"


# --- tokens ------------------------------------------------------------------------------------------------

async def test_token_from_the_file_is_accepted_case_insensitively(client: TestClient) -> None:
    status, body, _ = await call(client, "POST", "/api/v1/tokens", data={"a": "WELCOME-token"})
    assert status == 200 and body == {"success": True, "token": "welcome-token"}
    status, body, _ = await call(client, "POST", "/api/v1/tokens", data={"a": "second-token"})
    assert status == 200 and body["token"] == "second-token"


async def test_token_is_read_from_the_query_string_too(client: TestClient) -> None:
    status, body, _ = await call(client, "POST", "/api/v1/tokens", params={"a": "second-token"})
    assert status == 200 and body["token"] == "second-token"
    # Both given: the body's value counts, as Go's FormValue prefers it.
    status, _, _ = await call(client, "POST", "/api/v1/tokens", params={"a": "nope"}, data={"a": "second-token"})
    assert status == 200


async def test_unknown_token_comment_or_trailing_field_is_refused(client: TestClient) -> None:
    for guess in ("nope", "# access tokens", "for the lobby", "welcome-token:for the lobby", ""):
        status, body, _ = await call(client, "POST", "/api/v1/tokens", data={"a": guess})
        assert (status, body) == (403, error("invalid_token", "Invalid token")), guess


async def test_token_over_100_bytes_is_413_auth_too_large(client: TestClient) -> None:
    status, body, _ = await call(client, "POST", "/api/v1/tokens", data={"a": "welcome-token" + "x" * 88})
    assert (status, body) == (413, error("auth_too_large", "Auth too large"))
    # 100 bytes is still checked against the file; multi-byte characters count as bytes.
    assert (await call(client, "POST", "/api/v1/tokens", data={"a": "x" * 100}))[0] == 403
    assert (await call(client, "POST", "/api/v1/tokens", data={"a": "é" * 51}))[0] == 413


async def test_token_file_is_reloaded_when_it_changes(client: TestClient, token_file: Path) -> None:
    assert (await call(client, "POST", "/api/v1/tokens", data={"a": "late-token"}))[0] == 403
    rewrite(token_file, "late-token\n")
    assert (await call(client, "POST", "/api/v1/tokens", data={"a": "late-token"}))[0] == 200
    assert (await call(client, "POST", "/api/v1/tokens", data={"a": "second-token"}))[0] == 403


async def test_without_a_token_file_every_token_is_refused(make_client: MakeClient) -> None:
    client = await make_client(token_file="")
    status, body, _ = await call(client, "POST", "/api/v1/tokens", data={"a": "welcome-token"})
    assert (status, body["code"]) == (403, "invalid_token")


# --- rooms -------------------------------------------------------------------------------------------------

async def test_rooms_post_generates_a_random_11_character_name_and_its_url(client: TestClient) -> None:
    status, body, _ = await call(client, "POST", "/api/v1/rooms", headers={"Host": "video.example.org"})
    assert status == 200 and body["success"] is True
    assert re.fullmatch(r"[A-Za-z0-9]{11}", body["name"])
    assert body["url"] == f"http://video.example.org/{body['name']}"
    _, other, _ = await call(client, "POST", "/api/v1/rooms")
    assert other["name"] != body["name"]


async def test_rooms_url_includes_the_base_path(make_client: MakeClient) -> None:
    client = await make_client(base_path="/video")
    _, body, _ = await call(client, "POST", "/video/api/v1/rooms", headers={"Host": "h.example"})
    assert body["url"] == f"http://h.example/video/{body['name']}"


# --- users (registration) ---------------------------------------------------------------------------------

async def test_registration_returns_a_signed_combo_and_a_nonce(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    before = int(time.time())
    status, body, _ = await call(client, "POST", "/api/v1/users", json={"id": socket.id, "sid": socket.me["Sid"]})
    assert status == 200 and body["success"] is True
    uid, _, realm = body["userid"].partition("@")
    assert realm == "local" and uuid.UUID(uid).version == 4
    assert before + 372 * 86400 <= body["timestamp"] <= int(time.time()) + 372 * 86400
    assert body["useridcombo"] == f"{body['timestamp']}:{body['userid']}"
    assert body["secret"] == secret_for(body["useridcombo"])
    assert body["nonce"]
    await socket.close()


async def test_registration_accepts_a_form_body(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    status, body, _ = await call(client, "POST", "/api/v1/users", data={"id": socket.id, "sid": socket.me["Sid"]})
    assert status == 200 and body["secret"] == secret_for(body["useridcombo"])
    await socket.close()


async def test_registration_errors_have_their_codes(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    ids = {"id": socket.id, "sid": socket.me["Sid"]}
    cases: list[tuple[dict[str, Any], int, dict[str, Any]]] = [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
         error("users_bad_request", "Failed to parse request")),
        ({"data": b"id=x", "headers": {"Content-Type": "text/plain"}}, 400,
         error("users_invalid_request", "Invalid request type")),
        ({"json": {"id": socket.id}}, 400, error("users_bad_request", "Incomplete request")),
        ({"json": {"id": socket.id, "sid": "wrong-sid"}}, 403, error("users_invalid_session", "Invalid session")),
        ({"json": {"id": 5, "sid": ["x"]}}, 400, error("users_bad_request", "Incomplete request")),
    ]
    for kwargs, status, body in cases:
        assert (await call(client, "POST", "/api/v1/users", **kwargs))[:2] == (status, body), kwargs
    assert (await call(client, "POST", "/api/v1/users", json=ids))[0] == 200
    await socket.close()


async def test_registration_needs_a_connected_anonymous_session(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    ids = {"id": socket.id, "sid": socket.me["Sid"]}
    _, registered, _ = await call(client, "POST", "/api/v1/users", json=ids)
    await socket.request("Authentication", {"Type": "Authentication", "Authentication": {
        "Userid": registered["userid"], "Nonce": registered["nonce"]}})
    status, body, _ = await call(client, "POST", "/api/v1/users", json=ids)
    assert status == 400 and body["code"] == "users_request_failed"
    await socket.close()
    await wait_closed(client, socket.id)
    status, body, _ = await call(client, "POST", "/api/v1/users", json=ids)
    assert status == 400 and body["code"] == "users_request_failed"


async def test_httpheader_mode_cannot_create_users(make_client: MakeClient) -> None:
    client = await make_client(users_mode="httpheader")
    socket = await SpreedSocket.open(client)
    status, body, _ = await call(client, "POST", "/api/v1/users", json={"id": socket.id, "sid": socket.me["Sid"]})
    assert status == 400 and body["code"] == "users_create_failed"
    await socket.close()


async def test_users_route_is_absent_without_registration_or_users(make_client: MakeClient) -> None:
    for settings in ({"allow_registration": False}, {"users_mode": ""}):
        client = await make_client(**settings)
        assert (await call(client, "POST", "/api/v1/users", json={"id": "a", "sid": "b"}))[0] == 404


# --- sessions (login) ---------------------------------------------------------------------------------------

async def test_patch_session_with_an_external_combo_returns_a_nonce(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    combo = f"{int(time.time()) + 600}:alice@partner"
    body = {"id": socket.id, "sid": socket.me["Sid"], "useridcombo": combo, "secret": secret_for(combo)}
    status, reply, _ = await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=body)
    assert status == 200 and reply["success"] is True and reply["userid"] == "alice@partner" and reply["nonce"]
    await socket.close()


async def test_every_failed_patch_is_the_same_403(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    future = int(time.time()) + 600
    good_combo = f"{future}:alice"
    good = {"id": socket.id, "sid": socket.me["Sid"], "useridcombo": good_combo, "secret": secret_for(good_combo)}
    expired = f"{int(time.time()) - 1}:alice"
    empty_user = f"{future}:"
    variants: list[dict[str, Any]] = [
        {**good, "secret": secret_for(good_combo, "wrong-key")},
        {**good, "useridcombo": expired, "secret": secret_for(expired)},
        {**good, "useridcombo": empty_user, "secret": secret_for(empty_user)},
        {**good, "useridcombo": "garbage", "secret": secret_for("garbage")},
        {**good, "sid": "not-the-sid"},
        {**good, "sid": ""},
        {**good, "id": "another-id"},
    ]
    for variant in variants:
        status, reply, _ = await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=variant)
        assert (status, reply) == (403, error("session_patch_failed", "Failed to patch session")), variant
    status, reply, _ = await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", data=b"{oops",
                                  headers={"Content-Type": "application/json"})
    assert (status, reply["code"]) == (403, "session_patch_failed")
    # The refusals changed nothing: the good request still works.
    assert (await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=good))[0] == 200
    await socket.close()


async def test_patch_needs_a_connected_session_that_is_not_authenticated(client: TestClient) -> None:
    socket = await SpreedSocket.open(client)
    combo = f"{int(time.time()) + 600}:alice"
    body = {"id": socket.id, "sid": socket.me["Sid"], "useridcombo": combo, "secret": secret_for(combo)}
    _, reply, _ = await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=body)
    await socket.request("Authentication", {"Type": "Authentication", "Authentication": {
        "Userid": "alice", "Nonce": reply["nonce"]}})
    assert (await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=body))[0] == 403
    await socket.close()
    await wait_closed(client, socket.id)
    assert (await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=body))[0] == 403


async def test_sessions_route_is_absent_when_users_are_disabled(make_client: MakeClient) -> None:
    client = await make_client(users_mode="")
    assert (await call(client, "PATCH", "/api/v1/sessions/x/", json={}))[0] == 404


async def test_httpheader_mode_patch_takes_the_user_from_the_header(make_client: MakeClient) -> None:
    client = await make_client(users_mode="httpheader")
    socket = await SpreedSocket.open(client)
    body = {"id": socket.id, "sid": socket.me["Sid"]}
    assert (await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=body))[0] == 403
    status, reply, _ = await call(client, "PATCH", f"/api/v1/sessions/{socket.id}/", json=body,
                                  headers={"X-Users": "carol"})
    assert status == 200 and reply["userid"] == "carol"
    await socket.close()


# --- stats -------------------------------------------------------------------------------------------------

async def test_stats_count_rooms_connections_users_and_chats(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("stats-room")
    await b.hello("stats-room")
    await a.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "hi all", "NoEcho": True}})
    await b.next_of("Chat")
    await a.send("Chat", {"To": b.id, "Type": "Chat", "Chat": {"Message": "hi b", "NoEcho": True}})
    await b.next_of("Chat")
    status, body, headers = await call(client, "GET", "/api/v1/stats")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    hub = body["hub"]
    assert (hub["rooms"], hub["connections"], hub["sessions"], hub["users"], hub["count"]) == (1, 2, 2, 0, 2)
    assert (hub["broadcastchatmessages"], hub["unicastchatmessages"]) == (1, 1)
    assert "sessionsbyid" not in hub and body["runtime"]["tasks"] > 0
    await a.close()
    await b.close()


async def test_stats_do_not_count_a_private_chat_carrying_a_status(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.send("Chat", {"To": b.id, "Type": "Chat", "Chat": {"Message": "", "NoEcho": True,
                                                                "Status": {"Typing": "start"}}})
    await a.send("Chat", {"To": b.id, "Type": "Chat", "Chat": {"Message": "counted", "NoEcho": True}})
    assert (await b.next_of("Chat"))["Data"]["Chat"]["Status"] == {"Typing": "start"}
    await b.next_of("Chat")
    assert (await call(client, "GET", "/api/v1/stats"))[1]["hub"]["unicastchatmessages"] == 1


async def test_stats_details_fill_every_map(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    registered = (await call(client, "POST", "/api/v1/users", json={"id": a.id, "sid": a.me["Sid"]}))[1]
    await a.request("Authentication", {"Type": "Authentication", "Authentication": {
        "Userid": registered["userid"], "Nonce": registered["nonce"]}})
    await a.hello("details-room")
    _, body, _ = await call(client, "GET", "/api/v1/stats", params={"details": "1"})
    hub = body["hub"]
    assert hub["sessionsbyid"][a.id]["Userid"] == registered["userid"]
    assert list(hub["connectionsbyidx"].values()) == [a.id]
    assert hub["idsinroom"] == {"Room:details-room": [a.id]}
    assert hub["usersbyid"] == {registered["userid"]: {"Id": registered["userid"], "Sessions": 1}}
    await a.close()


async def test_stats_route_is_absent_unless_enabled(make_client: MakeClient) -> None:
    client = await make_client(stats=False)
    assert (await call(client, "GET", "/api/v1/stats"))[0] == 404
