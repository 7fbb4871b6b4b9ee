"""First contact as Nextcloud clients make it: status.php, capabilities, the current user."""

from __future__ import annotations

from tests.helpers.client import TalkClient


async def test_status_php_reports_an_installed_server(talk: TalkClient) -> None:
    async with talk.client.get("/status.php") as response:
        body = await response.json()
    assert response.status == 200
    assert body["installed"] is True and body["maintenance"] is False
    assert body["version"].startswith(body["versionstring"])


async def test_capabilities_list_chat_max_length(talk: TalkClient) -> None:
    for version in (1, 2):
        reply = await talk.ocs("GET", "/cloud/capabilities", version=version)
        assert reply.http_status == 200
        spreed = reply.data["capabilities"]["spreed"]
        assert spreed["config"]["chat"]["max-length"] == talk.services.settings.limits.chat_max_length


async def test_current_user_needs_credentials(talk: TalkClient) -> None:
    reply = await talk.ocs("GET", "/cloud/user")
    assert reply.http_status == 401 and reply.status_code == 997
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    ok = await talk.ocs("GET", "/cloud/user", user="admin")
    assert ok.http_status == 200 and ok.data["id"] == "admin" and ok.data["groups"] == ["admin"]
