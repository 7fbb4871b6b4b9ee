"""The OCS envelope: v1 and v2 status rules, formats, and empty bodies."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import orjson
import pytest

from talkd.protocol.ocs import (
    RESPOND_NOT_FOUND,
    RESPOND_UNAUTHORISED,
    OcsResult,
    choose_format,
    http_status,
    render,
)


def test_v1_success_is_http_200_with_statuscode_100() -> None:
    out = render(OcsResult(data={"a": 1}), 1, "json")
    meta = orjson.loads(out.body)["ocs"]["meta"]
    assert out.http_status == 200
    assert meta == {"status": "ok", "statuscode": 100, "message": "OK", "totalitems": "", "itemsperpage": ""}


def test_v1_failure_keeps_http_200_and_reports_status_in_meta() -> None:
    out = render(OcsResult(status=404, message="gone"), 1, "json")
    meta = orjson.loads(out.body)["ocs"]["meta"]
    assert out.http_status == 200
    assert (meta["status"], meta["statuscode"], meta["message"]) == ("failure", 404, "gone")


def test_v1_unauthorised_is_http_401() -> None:
    assert render(OcsResult(status=RESPOND_UNAUTHORISED), 1, "json").http_status == 401


@pytest.mark.parametrize(("status", "expected"), [
    (200, 200), (201, 201), (403, 403), (RESPOND_UNAUTHORISED, 401), (RESPOND_NOT_FOUND, 404),
    (996, 500), (999, 500), (102, 400), (101, 400),
])
def test_v2_http_status_mapping(status: int, expected: int) -> None:
    assert http_status(status, 2) == expected


def test_v2_meta_keeps_the_raw_code() -> None:
    out = render(OcsResult(status=102, message="User already exists"), 2, "json")
    meta = orjson.loads(out.body)["ocs"]["meta"]
    assert out.http_status == 400
    assert meta == {"status": "failure", "statuscode": 102, "message": "User already exists"}


def test_not_modified_has_no_body() -> None:
    assert render(OcsResult(status=304), 2, "json").body == b""


def test_json_escapes_angle_brackets() -> None:
    out = render(OcsResult(data={"m": "<script>"}), 2, "json")
    assert b"<script>" not in out.body
    assert orjson.loads(out.body)["ocs"]["data"]["m"] == "<script>"


def test_xml_lists_become_element_and_booleans_php_strings() -> None:
    out = render(OcsResult(data={"users": ["a", "b"], "t": True, "f": False, "n": None}), 1, "xml")
    root = ET.fromstring(out.body)
    assert [e.text for e in root.findall("./data/users/element")] == ["a", "b"]
    assert root.findtext("./data/t") == "1"
    assert root.findtext("./data/f") in (None, "")
    assert root.findtext("./meta/statuscode") == "100"


@pytest.mark.parametrize(("param", "accept", "expected"), [
    ("json", None, "json"), ("xml", "application/json", "xml"), (None, "application/json, */*", "json"),
    (None, None, "xml"), (None, "text/html", "xml"),
])
def test_format_choice(param: str | None, accept: str | None, expected: str) -> None:
    assert choose_format(param, accept) == expected
