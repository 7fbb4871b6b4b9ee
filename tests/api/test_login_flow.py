"""Login flow v2 end to end, as ClientFlowLoginV2Controller answers it: start, the browser page and
its form, the one-time poll, and the app password it hands out (which then works, and stops working
the moment it is revoked)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from tests.api.conftest import AppFactory, ShiftedClock
from tests.helpers.client import TalkClient
from tests.helpers.state import account_state

_REQUEST_TOKEN = re.compile(r'name="requesttoken" value="([^"]+)"')


async def _start(client: TestClient) -> dict[str, Any]:
    async with client.post("/index.php/login/v2", headers={"User-Agent": "Talk Desktop/1.0"}) as response:
        assert response.status == 200
        flow: dict[str, Any] = await response.json()
    return flow


async def _poll(client: TestClient, token: str) -> tuple[int, Any]:
    async with client.post("/index.php/login/v2/poll", data={"token": token}) as response:
        return response.status, await response.json()


def _path(url: str) -> str:
    # The test client takes paths; the flow hands out absolute URLs on the same server.
    return URL(url).path


async def _open_page(client: TestClient, login_url: str) -> str:
    """GET the login page like a browser; returns the form's request token."""
    async with client.get(_path(login_url)) as response:
        assert response.status == 200
        assert "Talk Desktop/1.0" in await response.text()
        match = _REQUEST_TOKEN.search(await response.text())
    assert match is not None
    return match.group(1)


async def _submit(client: TestClient, login_url: str, fields: dict[str, str]) -> tuple[int, str]:
    async with client.post(_path(login_url), data=fields) as response:
        return response.status, await response.text()


async def test_login_flow_hands_out_a_working_app_password_once(talk: TalkClient) -> None:
    await talk.make_user("alice", "alice-secret")
    client = talk.client
    flow = await _start(client)
    root = str(client.make_url("")).rstrip("/")
    assert flow["poll"]["endpoint"] == f"{root}/index.php/login/v2/poll"
    assert flow["login"].startswith(f"{root}/index.php/login/v2/flow/")
    assert await _poll(client, flow["poll"]["token"]) == (404, [])  # not approved yet

    token = await _open_page(client, flow["login"])
    assert client.session.cookie_jar.filter_cookies(client.make_url("/"))  # the page started a session
    status, page = await _submit(client, flow["login"],
                                 {"requesttoken": token, "user": "alice", "password": "alice-secret"})
    assert status == 200 and "connected" in page

    status, credentials = await _poll(client, flow["poll"]["token"])
    assert status == 200
    assert credentials["server"] == root and credentials["loginName"] == "alice"
    app_password = credentials["appPassword"]
    assert len(app_password) == 72
    assert await _poll(client, flow["poll"]["token"]) == (404, [])  # handed out once only
    client.session.cookie_jar.clear()

    me = await talk.ocs("GET", "/cloud/user", user="alice", password=app_password)
    assert me.expect(200).data["id"] == "alice"
    stored = await talk.services.accounts.list_app_passwords("alice")
    assert [p.name for p in stored] == ["Talk Desktop/1.0"]


async def test_revoked_app_password_fails_at_once_although_cached(talk: TalkClient) -> None:
    await talk.make_user("alice")
    created = (await talk.ocs("GET", "/core/getapppassword", user="alice")).expect(200).data["apppassword"]
    for _ in range(3):
        (await talk.ocs("GET", "/cloud/user", user="alice", password=created)).expect(200)
    (await talk.ocs("DELETE", "/core/apppassword", user="alice", password=created)).expect(200)
    (await talk.ocs("GET", "/cloud/user", user="alice", password=created)).expect(997)
    assert await talk.services.accounts.list_app_passwords("alice") == []


async def test_wrong_password_on_the_page_is_403_and_grants_nothing(talk: TalkClient) -> None:
    await talk.make_user("alice", "alice-secret")
    flow = await _start(talk.client)
    token = await _open_page(talk.client, flow["login"])
    before = await account_state(talk.services.db)
    status, page = await _submit(talk.client, flow["login"],
                                 {"requesttoken": token, "user": "alice", "password": "wrong"})
    assert status == 403 and "Wrong login or password" in page
    assert await account_state(talk.services.db) == before
    assert await _poll(talk.client, flow["poll"]["token"]) == (404, [])
    # The flow is still pending: the right password then completes it.
    status, _ = await _submit(talk.client, flow["login"],
                              {"requesttoken": token, "user": "alice", "password": "alice-secret"})
    assert status == 200


async def test_form_with_a_bad_request_token_is_403(talk: TalkClient) -> None:
    await talk.make_user("alice", "alice-secret")
    flow = await _start(talk.client)
    await _open_page(talk.client, flow["login"])
    before = await account_state(talk.services.db)
    for token in ("forged", ""):
        status, _ = await _submit(talk.client, flow["login"],
                                  {"requesttoken": token, "user": "alice", "password": "alice-secret"})
        assert status == 403
    # A valid token of a session the browser does not hold proves nothing either.
    real = await _open_page(talk.client, flow["login"])
    talk.client.session.cookie_jar.clear()
    status, _ = await _submit(talk.client, flow["login"],
                              {"requesttoken": real, "user": "alice", "password": "alice-secret"})
    assert status == 403
    assert await account_state(talk.services.db) == before


async def test_expired_flow_is_gone_for_page_form_and_poll(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock)
    await talk.make_user("alice", "alice-secret")
    flow = await _start(talk.client)
    token = await _open_page(talk.client, flow["login"])
    clock.shift(talk.services.settings.security.login_flow_ttl + 1)
    async with talk.client.get(_path(flow["login"])) as response:
        assert response.status == 403 and "invalid or has expired" in await response.text()
    status, _ = await _submit(talk.client, flow["login"],
                              {"requesttoken": token, "user": "alice", "password": "alice-secret"})
    assert status == 403
    assert await _poll(talk.client, flow["poll"]["token"]) == (404, [])


async def test_approved_but_expired_flow_hands_out_nothing(app_factory: AppFactory) -> None:
    clock = ShiftedClock()
    talk = await app_factory(clock=clock)
    await talk.make_user("alice", "alice-secret")
    flow = await _start(talk.client)
    token = await _open_page(talk.client, flow["login"])
    status, _ = await _submit(talk.client, flow["login"],
                              {"requesttoken": token, "user": "alice", "password": "alice-secret"})
    assert status == 200
    clock.shift(talk.services.settings.security.login_flow_ttl + 1)
    assert await _poll(talk.client, flow["poll"]["token"]) == (404, [])
    assert await talk.services.accounts.list_app_passwords("alice") == []


async def test_unknown_tokens_and_bad_poll_bodies(talk: TalkClient) -> None:
    client = talk.client
    async with client.get("/index.php/login/v2/flow/" + "x" * 128) as response:
        assert response.status == 403
    assert await _poll(client, "y" * 128) == (404, [])
    async with client.post("/index.php/login/v2/poll") as response:
        assert response.status == 404
    async with client.post("/index.php/login/v2/poll", data=b"{not json",
                           headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400 and await response.json() == []
    async with client.post("/index.php/login/v2/poll", data=b"token=\xff\xfe",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
        assert response.status == 400


async def test_oversized_form_and_poll_bodies_are_413(app_factory: AppFactory) -> None:
    talk = await app_factory(limits__max_body_bytes=2048)
    await talk.make_user("alice", "alice-secret")
    flow = await _start(talk.client)
    token = await _open_page(talk.client, flow["login"])
    before = await account_state(talk.services.db)
    status, _ = await _submit(talk.client, flow["login"], {"requesttoken": token, "user": "alice",
                                                           "password": "alice-secret", "pad": "p" * 4096})
    assert status == 413
    async with talk.client.post("/index.php/login/v2/poll", data={"token": "t" * 4096}) as response:
        assert response.status == 413
    assert await account_state(talk.services.db) == before


async def test_app_password_rules_of_getapppassword_and_apppassword(talk: TalkClient) -> None:
    await talk.make_user("alice")
    # A password login may mint app passwords; the app password itself may not.
    created = await talk.ocs("GET", "/core/getapppassword", user="alice", headers={"User-Agent": "Phone"})
    app_password = created.expect(200).data["apppassword"]
    assert len(app_password) == 72
    before = await account_state(talk.services.db)
    for version in (1, 2):
        again = await talk.ocs("GET", "/core/getapppassword", user="alice", password=app_password, version=version)
        assert again.expect(403).message == "You cannot request an new apppassword with an apppassword"
        revoke = await talk.ocs("DELETE", "/core/apppassword", user="alice", version=version)
        assert revoke.expect(403).message == "no app password in use"
        (await talk.ocs("GET", "/core/getapppassword", version=version)).expect(997)
        (await talk.ocs("DELETE", "/core/apppassword", version=version)).expect(997)
    assert await account_state(talk.services.db) == before


async def test_csrftoken_keeps_one_session_per_browser(talk: TalkClient) -> None:
    async with talk.client.get("/index.php/csrftoken") as response:
        first = (await response.json())["token"]
        assert "talkd_session" in response.cookies
    async with talk.client.get("/index.php/csrftoken") as response:
        assert (await response.json())["token"] == first
        assert "talkd_session" not in response.cookies
    talk.client.session.cookie_jar.clear()
    async with talk.client.get("/index.php/csrftoken") as response:
        assert (await response.json())["token"] != first

