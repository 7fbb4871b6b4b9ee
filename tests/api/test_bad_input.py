"""Bad input at the OCS door: unknown paths and methods, unreadable and oversized bodies, overlong or
NUL-laden values. Each gets a clear answer in the client's OCS version and format, and changes
nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson
import pytest

from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.protocol.ocs import INVALID_QUERY_MESSAGE
from tests.api.conftest import AppFactory
from tests.helpers.client import TalkClient, basic
from tests.helpers.state import account_state

ADMIN = {"Authorization": basic("admin", "admin-password"), "OCS-APIRequest": "true"}


async def _raw(talk: TalkClient, method: str, path: str, *, headers: dict[str, str] | None = None,
               data: Any = None, params: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    async with talk.client.request(method, path, headers={**ADMIN, **(headers or {})}, data=data,
                                   params=params or {}) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


def _xml_meta(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "ocs"
    return {child.tag: child.text or "" for child in root.find("meta")}  # type: ignore[union-attr]


# Unknown paths and methods ------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "http"), [(1, 200), (2, 404)])
async def test_unknown_ocs_path_is_998_in_xml_by_default(talk: TalkClient, version: int, http: int) -> None:
    status, content_type, body = await _raw(talk, "GET", f"/ocs/v{version}.php/cloud/nothing-here")
    assert status == http and content_type.startswith("application/xml")
    meta = _xml_meta(body)
    assert meta["status"] == "failure" and meta["statuscode"] == "998"
    assert meta["message"] == INVALID_QUERY_MESSAGE


@pytest.mark.parametrize(("version", "http"), [(1, 200), (2, 404)])
@pytest.mark.parametrize("ask", [{"params": {"format": "json"}}, {"headers": {"Accept": "application/json"}}],
                         ids=["format-param", "accept-header"])
async def test_unknown_ocs_path_is_998_in_json_when_asked(talk: TalkClient, version: int, http: int,
                                                          ask: dict[str, Any]) -> None:
    status, content_type, body = await _raw(talk, "GET", f"/ocs/v{version}.php/apps/nope/api/v1/x", **ask)
    assert status == http and content_type.startswith("application/json")
    ocs = orjson.loads(body)["ocs"]
    assert ocs["meta"]["statuscode"] == 998 and ocs["data"] == []


async def test_unknown_path_without_credentials_is_still_998(talk: TalkClient) -> None:
    async with talk.client.get("/ocs/v2.php/cloud/nothing", params={"format": "json"}) as response:
        assert response.status == 404


@pytest.mark.parametrize("version", [1, 2])
async def test_known_path_with_another_method_is_a_bare_405(talk: TalkClient, version: int) -> None:
    status, _, body = await _raw(talk, "PATCH", f"/ocs/v{version}.php/cloud/users")
    assert status == 405 and body == b""


# Formats --------------------------------------------------------------------------------------------


async def test_errors_and_data_render_in_xml(talk: TalkClient) -> None:
    status, _, body = await _raw(talk, "GET", "/ocs/v1.php/cloud/users/ghost")
    assert status == 200
    meta = _xml_meta(body)
    assert (meta["statuscode"], meta["message"]) == ("404", "User does not exist")
    assert meta["totalitems"] == "" and meta["itemsperpage"] == ""
    status, _, body = await _raw(talk, "GET", "/ocs/v2.php/cloud/user")
    assert status == 200 and _xml_meta(body)["statuscode"] == "200"
    data = ET.fromstring(body).find("data")
    assert data is not None and data.findtext("id") == "admin"
    assert [e.text for e in data.find("groups")] == ["admin"]  # type: ignore[union-attr]


async def test_unauthorised_renders_in_both_formats(talk: TalkClient) -> None:
    for headers in ({}, {"Accept": "application/json"}):
        async with talk.client.get("/ocs/v1.php/cloud/user", headers=headers) as response:
            body = await response.read()
            assert response.status == 401
        code = (_xml_meta(body)["statuscode"] if not headers
                else str(orjson.loads(body)["ocs"]["meta"]["statuscode"]))
        assert code == "997"


# Unreadable bodies ----------------------------------------------------------------------------------

_BAD_BODIES = [
    ("application/json", b'{"userid": "eve", "password": '),
    ("application/json", b'["userid", "eve"]'),
    ("application/json", b"\xff\xfe"),
    ("application/x-www-form-urlencoded", b"userid=eve&password=\xff"),
    ("multipart/form-data", b"no boundary at all"),
    ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="userid"\r\n\r\neve'),
]


@pytest.mark.parametrize(("content_type", "body"), _BAD_BODIES,
                         ids=["cut-json", "json-list", "json-bytes", "form-bytes", "multipart-no-boundary",
                              "multipart-cut"])
@pytest.mark.parametrize("version", [1, 2])
async def test_unreadable_body_is_400_and_changes_nothing(talk: TalkClient, content_type: str, body: bytes,
                                                         version: int) -> None:
    before = await account_state(talk.services.db)
    reply = await talk.ocs("POST", "/cloud/users", user="admin", version=version, data=body,
                           headers={"Content-Type": content_type})
    reply.expect(400)
    assert await account_state(talk.services.db) == before


@pytest.mark.parametrize("version", [1, 2])
async def test_body_over_the_limit_is_413_in_ocs_format(app_factory: AppFactory, version: int) -> None:
    talk = await app_factory(limits__max_body_bytes=2048)
    before = await account_state(talk.services.db)
    big = {"userid": "eve", "password": "eve-secret", "displayName": "x" * 4096}
    (await talk.ocs("POST", "/cloud/users", user="admin", version=version, json=big)).expect(413)
    (await talk.ocs("POST", "/cloud/groups", user="admin", version=version,
                    data={"groupid": "g", "pad": "p" * 4096})).expect(413)
    status, content_type, body = await _raw(talk, "POST", f"/ocs/v{version}.php/cloud/groups",
                                            data={"groupid": "g", "pad": "p" * 4096})
    assert status == (200 if version == 1 else 413)
    assert content_type.startswith("application/xml") and _xml_meta(body)["statuscode"] == "413"
    assert await account_state(talk.services.db) == before
    # Just under the limit is fine.
    small = await talk.ocs("POST", "/cloud/groups", user="admin", version=version, data={"groupid": f"g{version}"})
    small.expect(200)


# Overlong and hostile values ------------------------------------------------------------------------

_REFUSED_VALUES = [
    ("POST", "/cloud/users", {"userid": "u" * 256, "password": "x-secret"}, 101),
    ("POST", "/cloud/users", {"userid": "eve", "password": "p" * 1025}, 101),
    ("POST", "/cloud/users", {"userid": "eve", "password": "x-secret", "email": "e" * 1025}, 101),
    ("POST", "/cloud/users", {"userid": "eve", "password": "x-secret", "groups": ["g"] * 101}, 101),
    ("POST", "/cloud/users", {"userid": "e\x00ve", "password": "x-secret"}, 101),
    ("POST", "/cloud/users", {"userid": {"nested": "object"}, "password": "x-secret"}, 101),
    ("POST", "/cloud/groups", {"groupid": "g" * 256}, 101),
    ("POST", "/cloud/groups", {"groupid": "g\x00"}, 101),
    ("POST", "/cloud/groups", {"groupid": "staff", "displayname": "d" * 1025}, 101),
    ("PUT", "/cloud/users/admin", {"key": "k" * 65, "value": "v"}, 101),
    ("PUT", "/cloud/users/admin", {"key": "displayname", "value": "v" * 1025}, 101),
    ("PUT", "/cloud/users/admin", {"key": "displayname", "value": "a\x00b"}, 101),
    ("POST", "/cloud/users/admin/groups", {"groupid": "g" * 256}, 101),
    ("GET", "/cloud/users", {"search": "s" * 256}, 400),
    ("GET", "/cloud/users", {"search": "nul\x00"}, 400),
    ("GET", "/cloud/users", {"offset": "-1"}, 400),
    ("GET", "/cloud/groups", {"limit": "10001"}, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), _REFUSED_VALUES)
async def test_overlong_or_hostile_values_are_refused_and_change_nothing(
        talk: TalkClient, method: str, path: str, body: dict[str, Any], code: int) -> None:
    before = await account_state(talk.services.db)
    if method == "GET":
        reply = await talk.ocs(method, path, user="admin", params=body)
    else:
        reply = await talk.ocs(method, path, user="admin", json=body)
    reply.expect(code)
    assert await account_state(talk.services.db) == before


async def test_nul_in_path_ids_and_logins_is_not_found_not_a_crash(talk: TalkClient) -> None:
    (await talk.ocs("GET", "/cloud/users/a%00b", user="admin")).expect(404)
    (await talk.ocs("GET", "/cloud/groups/g%00", user="admin")).expect(404)
    (await talk.ocs("DELETE", "/cloud/users/a%00b", user="admin")).expect(998)
    (await talk.ocs("GET", "/cloud/user", headers={"Authorization": basic("ad\x00min", "x")})).expect(997)
    (await talk.ocs("GET", "/cloud/user", headers={"Authorization": basic("admin", "x\x00")})).expect(997)
    (await talk.ocs("GET", "/cloud/user", user="admin")).expect(200)  # and nothing got throttled for it


# Server errors ---------------------------------------------------------------------------------------

_broken = OcsRouter()


@_broken.get("/test/broken", access=Access.PUBLIC)
async def _fail(req: OcsRequest) -> Any:
    raise RuntimeError("a bug")


@pytest.mark.parametrize(("version", "http"), [(1, 200), (2, 500)])
async def test_a_bug_in_a_handler_is_996_in_the_ocs_envelope(app_factory: AppFactory, version: int, http: int,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    talk = await app_factory(routers=(_broken,))
    reply = await talk.ocs("GET", "/test/broken", version=version)
    assert (reply.http_status, reply.status_code) == (http, 996)
    assert reply.message == "Internal Server Error\n" and "a bug" not in reply.body.decode()
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)
