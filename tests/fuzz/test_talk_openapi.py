"""Fuzzing a real talkd with Talk's own OpenAPI descriptions (schemathesis).

Every operation of Talk's description that talkd routes gets a fixed number of generated requests, sent
as a logged-in user (Basic auth, `OCS-APIRequest: true`, `format=json`) to a `python -m talkd serve`
process. Half the requests of an operation that takes a `{token}` name a real conversation, made fresh for
that operation, so the fuzzer gets past "room not found". Each answer must not be a 5xx, and an answer
whose status Talk documents must match Talk's schema for it; statuses Talk does not document are allowed
(talkd serves a subset). Generation is derandomized: the same requests every run.

Findings not fixed yet are listed in KNOWN with what they are; anything else fails the test. The
descriptions are `../shared/talk-openapi/` beside the checkout (TALKD_TEST_TALK_OPENAPI names another
folder): missing, the test skips, or fails under CI=true.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.generation.modes import GenerationMode
from schemathesis.openapi.checks import JsonSchemaError
from schemathesis.specs.openapi.checks import response_schema_conformance

from talkd.api import nextcloud
from talkd.api.ocs import calls, chat, core, participants, rooms, signaling
from tests.helpers.client import basic
from tests.helpers.server import REPO_ROOT, RunningTalkd, talkd_process

pytestmark = pytest.mark.interop

SPECS = ("openapi-full.json", "openapi-full-talk20.json")
EXAMPLES_PER_OPERATION = 20
# A safety net, not the budget: the examples above take well under this on a loaded 2-core machine.
SPEC_DEADLINE = 150.0
METHODS = ("get", "put", "post", "delete", "patch")
USER, PASSWORD = "fuzzer", "fuzzer long passphrase"
OCS = {"OCS-APIRequest": "true", "Accept": "application/json"}

# Known findings, each "METHOD path-after-apiVersion signature" (fnmatch patterns) -> what it is. Found by
# this test on 2026-12-03 and listed while they are fixed elsewhere; remove an entry when its fix lands.
_ERROR = "error answers carry data [] where Talk's description has an object ({'error': reason}) or a string"
_EMPTY = "a success without data answers [] where Talk's description has an object or null"
_MESSAGE = "a message (lastMessage, parent, a sent message) fails ChatMessage only by its messageParameters []"
_PARAMETERS = "messageParameters is [] when empty; Talk's description says object"
_ROOM = "Room lacks fields of this Talk version (main: liveTranscriptionLanguageId...; Talk 20: notificationCalls...)"
KNOWN: dict[str, str] = {
    "* * 4xx /ocs/data: type": _ERROR,
    "GET chat/{token} 2xx /ocs/data/*/messageParameters: type": _PARAMETERS,
    "* * 2xx /ocs/data*/lastMessage: anyOf": _MESSAGE,
    "* * 2xx /ocs/data*/parent: anyOf": _MESSAGE,
    "POST chat/{token} 2xx /ocs/data: anyOf": _MESSAGE,
    "GET room 2xx /ocs/data/*: required": _ROOM,
    "GET room/{token} 2xx /ocs/data: required": _ROOM,
    "POST room/{token}/participants/active 2xx /ocs/data: required": _ROOM,
    "PUT room/{token}/webinar/lobby 2xx /ocs/data: required": _ROOM,
    "GET room/{token}/participants 2xx /ocs/data/*: required": "participant entries lack roomToken",
    "GET signaling/settings 2xx /ocs/data: required": "signaling settings lack 'federation'",
    "DELETE chat/{token}/read 2xx /ocs/data: type": _EMPTY,
    "POST chat/{token}/read 2xx /ocs/data: type": _EMPTY,
    "POST room/{token}/favorite 2xx /ocs/data: type": _EMPTY,
    "DELETE room/{token}/favorite 2xx /ocs/data: type": _EMPTY,
    "DELETE room/{token}/public 2xx /ocs/data: type": _EMPTY,
    "POST room/{token}/notify 2xx /ocs/data: type": _EMPTY,
    "PUT room/{token} 2xx /ocs/data: type": _EMPTY,
    "PUT room/{token}/description 2xx /ocs/data: type": _EMPTY,
    "PUT room/{token}/password 2xx /ocs/data: type": _EMPTY,
    "PUT room/{token}/read-only 2xx /ocs/data: type": _EMPTY,
}


def known(finding: Finding) -> str | None:
    """Why a finding is expected, or None for a new one."""
    short = finding.path.split("/{apiVersion}/", 1)[-1]
    key = f"{finding.method} {short} {finding.title}"
    return next((why for pattern, why in KNOWN.items() if fnmatch.fnmatchcase(key, pattern)), None)


def openapi_dir() -> Path | None:
    configured = os.environ.get("TALKD_TEST_TALK_OPENAPI")
    folder = Path(configured) if configured else REPO_ROOT.parent / "shared" / "talk-openapi"
    return folder if all((folder / name).is_file() for name in SPECS) else None


def _served_resources() -> list[tuple[re.Pattern[str], set[str]]]:
    """talkd's own router (the same route tables the server installs): URL pattern and methods."""
    app = web.Application()
    app.add_routes(nextcloud.routes)
    for module in (core, signaling, rooms, participants, chat, calls):
        module.router.install(app)
    served = []
    for resource in app.router.resources():
        info = resource.get_info()
        pattern = info.get("pattern") or re.compile(re.escape(str(info.get("path", ""))))
        served.append((pattern, {route.method for route in resource}))
    return served


def _example_paths(path: str, parameters: list[dict[str, Any]]) -> list[str]:
    """Concrete URLs for a templated path: each allowed `apiVersion`, a plausible value for the rest."""
    schemas = {p["name"]: p.get("schema", {}) for p in parameters if p.get("in") == "path"}
    versions = schemas.get("apiVersion", {}).get("enum") or ["v1"]

    def value(name: str, version: str) -> str:
        if name == "apiVersion":
            return version
        return "1" if schemas.get(name, {}).get("type") == "integer" else "abcd1234"

    return [re.sub(r"\{(\w+)\}", lambda m, v=version: value(m.group(1), v), path) for version in versions]


def served_subset(spec: dict[str, Any]) -> dict[str, Any]:
    """The description with only the operations talkd routes (the others would all be 'unknown route')."""
    served = _served_resources()
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        kept = {}
        for method, operation in item.items():
            if method not in METHODS:
                continue
            parameters = item.get("parameters", []) + operation.get("parameters", [])
            if any(pattern.fullmatch(url) and (method.upper() in methods or "*" in methods)
                   for url in _example_paths(path, parameters) for pattern, methods in served):
                kept[method] = operation
        if kept:
            paths[path] = {**{k: v for k, v in item.items() if k not in METHODS}, **kept}
    return {**spec, "paths": paths}


@dataclass
class Finding:
    method: str
    path: str
    title: str
    request: str
    status: int
    answer: str
    detail: str = ""

    def describe(self) -> str:
        return (f"{self.method} {self.path}: {self.title} ({self.detail})\n  {self.request}\n"
                f"  -> {self.answer[:300]}")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTalkd]:
    args = ("--log-level", "warning", "--security-bruteforce-enabled", "false")
    with talkd_process(tmp_path_factory.mktemp("fuzz") / "data", extra_args=args) as server:
        created = requests.post(f"{server.base_url}/ocs/v2.php/cloud/users", params={"format": "json"},
                                headers={**OCS, "Authorization": basic(server.admin_user, server.admin_password)},
                                data={"userid": USER, "password": PASSWORD}, timeout=30)
        assert created.status_code == 200, created.text
        yield server


def fresh_room(session: requests.Session, base_url: str) -> tuple[str, int]:
    """A public conversation of the fuzz user with one message: its token and the message's id."""
    made = session.post(f"{base_url}/ocs/v2.php/apps/spreed/api/v4/room",
                        data={"roomType": 3, "roomName": "fuzz"}, timeout=30)
    assert made.status_code in (200, 201), made.text
    token = made.json()["ocs"]["data"]["token"]
    sent = session.post(f"{base_url}/ocs/v2.php/apps/spreed/api/v1/chat/{token}",
                        data={"message": "hello"}, timeout=30)
    assert sent.status_code == 201, sent.text
    return token, int(sent.json()["ocs"]["data"]["id"])


def body_properties(definition: dict[str, Any]) -> set[str]:
    content = definition.get("requestBody", {}).get("content", {})
    return {name for media in content.values() for name in media.get("schema", {}).get("properties", {})}


def signature(failure: Failure, status: int) -> str:
    """What went wrong, the same for every input that shows it: for a schema violation, where in the
    answer (array indices as *) and which rule, e.g. `2xx /ocs/data/*/reactions: type`."""
    if isinstance(failure, JsonSchemaError):
        where = "/".join("*" if isinstance(part, int) else str(part) for part in failure.instance_path)
        return f"{status // 100}xx /{where}: {failure.schema_path[-1] if failure.schema_path else '?'}"
    return f"{status // 100}xx {failure.title}"


def detail(failure: Failure) -> str:
    if isinstance(failure, JsonSchemaError):
        return " ".join(str(failure._raw_message).split())[:200]
    return failure.title


def fuzz_operation(operation: Any, session: requests.Session, base_url: str,
                   deadline: float) -> list[Finding]:
    findings: dict[str, Finding] = {}
    path_names = {p.name for p in operation.path_parameters}
    query_names = {p.name for p in operation.query}
    body_names = body_properties(operation.definition.raw)
    real = fresh_room(session, base_url) if "token" in path_names else None
    # Valid requests (answers checked against the schema), then invalid ones (only: no 5xx).
    strategy = st.one_of(
        st.tuples(operation.as_strategy(GenerationMode.POSITIVE), st.booleans(), st.just(True)),
        st.tuples(operation.as_strategy(GenerationMode.NEGATIVE), st.booleans(), st.just(False)))

    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(drawn: tuple[Any, bool, bool]) -> None:
        case, use_real_room, valid = drawn
        if time.monotonic() > deadline:
            return
        if real is not None and use_real_room:
            case.path_parameters = {**(case.path_parameters or {}), "token": real[0]}
            if "messageId" in path_names:
                case.path_parameters["messageId"] = real[1]
        case.headers = {**(case.headers or {}), **OCS, "Authorization": basic(USER, PASSWORD)}
        case.query = {**(case.query or {}), "format": "json"}
        # A long poll would wait its full timeout for nothing (Talk 20 puts GET parameters in a body).
        if "timeout" in query_names:
            case.query["timeout"] = 0
        elif "timeout" in body_names and isinstance(case.body, dict):
            case.body["timeout"] = 0
        try:
            # Sent by this module's session, not schemathesis' transport: no retries that would hide a
            # dropped connection (and its connection counting breaks beside nc-py-api's urllib3-future).
            response = session.request(**case.as_transport_kwargs(base_url=base_url), timeout=60)
        except requests.RequestException as exc:
            findings.setdefault("no answer", Finding(operation.method.upper(), operation.path, "no answer",
                                                     case.as_curl_command(base_url=base_url), 0, repr(exc)))
            return
        try:
            checks = [not_a_server_error, response_schema_conformance] if valid else [not_a_server_error]
            case.validate_response(response, checks=checks)
        except* Failure as group:
            for failure in group.exceptions:
                assert isinstance(failure, Failure)
                what = signature(failure, response.status_code)
                findings.setdefault(what, Finding(
                    operation.method.upper(), operation.path, what,
                    case.as_curl_command(base_url=base_url), response.status_code, response.text,
                    detail(failure)))

    run()
    return list(findings.values())


@pytest.mark.parametrize("spec_name", SPECS)
def test_talk_openapi_fuzz(spec_name: str, request: pytest.FixtureRequest) -> None:
    folder = openapi_dir()
    if folder is None:
        message = "Talk's OpenAPI descriptions not found (../shared/talk-openapi beside the checkout)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server: RunningTalkd = request.getfixturevalue("fuzz_server")
    spec = served_subset(json.loads((folder / spec_name).read_text()))
    schema = schemathesis.openapi.from_dict(spec)
    deadline = time.monotonic() + SPEC_DEADLINE
    session = requests.Session()
    session.headers.update({**OCS, "Authorization": basic(USER, PASSWORD)})
    session.params = {"format": "json"}  # type: ignore[assignment]
    found: list[Finding] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        started = time.monotonic()
        found += fuzz_operation(operation, session, server.base_url, deadline)
        print(f"{time.monotonic() - started:6.1f}s {operation.method.upper()} {operation.path}")
    assert operations > 30, f"only {operations} operations of {spec_name} are served"
    new = [f for f in found if known(f) is None]
    print(f"{spec_name}: {operations} operations, {len(found)} findings, {len(new)} new")
    problems = [f.describe() for f in new]
    if time.monotonic() > deadline:
        problems.append(f"the run did not finish within {SPEC_DEADLINE}s (later examples were not sent)")
    report = os.environ.get("TALKD_TEST_FUZZ_REPORT")
    if report:
        with open(report, "a") as out:
            out.writelines(json.dumps({"spec": spec_name, **vars(f)}) + "\n" for f in found)
    assert not problems, f"{spec_name}:\n" + "\n".join(problems)
