"""Spreed WebRTC REST API v1 (seed 001) and the channelling socket's route, all under the base path.

Every answer is JSON, errors as `{"success": false, "code", "message"}` (a method a resource lacks
included); the buddy image route is not part of the API and answers 404 in plain text like the original.
Disabled features (users, registration, stats) have no route at all.
"""

from __future__ import annotations

import asyncio
import platform
import resource
import threading
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from talkd.api.errors import spreed_status
from talkd.api.params import read_body
from talkd.errors import TalkdError, TooLarge
from talkd.protocol.spreed import rest_error
from talkd.services import SERVICES
from talkd.spreed import channelling
from talkd.spreed.service import SpreedService

Endpoint = Callable[[web.Request, SpreedService], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024  # the requests here are a few short fields
IMAGE_CACHE_SECONDS = 86400
_STARTED = time.time()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        charset="utf-8")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json(rest_error(code, message), status)


def _origin(request: web.Request, service: SpreedService) -> str:
    configured = request.app[SERVICES].settings.server.base_url
    if configured:
        return configured.rstrip("/")
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    return f"{'https' if secure else 'http'}://{request.host}"


async def _body(request: web.Request) -> bytes | None:
    """The request body, or None when it is larger than any valid request here (one that does not
    decompress or arrive in time raises, as every API's body does: read_body)."""
    if (request.content_length or 0) > MAX_BODY:
        return None
    try:
        body = await read_body(request)
    except TooLarge:
        return None
    return body if len(body) <= MAX_BODY else None


async def well_known(request: web.Request, service: SpreedService) -> web.Response:
    return _json({"spreed-webrtc_endpoint": _origin(request, service) + service.base_path.rstrip("/")})


async def config(request: web.Request, service: SpreedService) -> web.Response:
    return _json(service.config_document())


async def tokens(request: web.Request, service: SpreedService) -> web.Response:
    form: dict[str, str] = dict(request.query)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        body = await _body(request)
        if body is None:
            return _error(413, "auth_too_large", "Auth too large")
        form.update(dict(_parse_form(body)))
    return _json({"success": True, "token": await service.check_access_token(form.get("a", ""))})


def _parse_form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode(errors="replace"), keep_blank_values=True)


async def rooms(request: web.Request, service: SpreedService) -> web.Response:
    name = service.new_room_name()
    return _json({"success": True, "name": name, "url": f"{_origin(request, service)}{service.base_path}{name}"})


async def patch_session(request: web.Request, service: SpreedService) -> web.Response:
    body = await _body(request)
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        decoded = None
    header = request.headers.get(service.settings.httpheader, "") if service.settings.users_mode == "httpheader" else ""
    userid, nonce = await service.patch_session(request.match_info["id"], decoded, header)
    return _json({"success": True, "userid": userid, "nonce": nonce})


async def register_user(request: web.Request, service: SpreedService) -> web.Response:
    content_type = request.content_type
    body = await _body(request)
    if content_type == "application/json":
        try:
            decoded = orjson.loads(body) if body is not None else None
        except orjson.JSONDecodeError:
            decoded = None
        if not isinstance(decoded, dict):
            return _error(400, "users_bad_request", "Failed to parse request")
        fields = decoded
    elif content_type == "application/x-www-form-urlencoded":
        if body is None:
            return _error(400, "users_bad_request", "Failed to parse request")
        fields = dict(_parse_form(body))
    else:
        return _error(400, "users_invalid_request", "Invalid request type")
    session_id, sid = fields.get("id"), fields.get("sid")
    return _json(await service.register_user(session_id if isinstance(session_id, str) else "",
                                       sid if isinstance(sid, str) else ""))


def _runtime() -> dict[str, Any]:
    """This process's numbers (the original publishes Go runtime figures here)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"tasks": len(asyncio.all_tasks()), "threads": threading.active_count(),
            "maxrss": usage.ru_maxrss * 1024, "cputime": round(usage.ru_utime + usage.ru_stime, 3),
            "uptime": round(time.time() - _STARTED), "python": platform.python_version()}


async def stats(request: web.Request, service: SpreedService) -> web.Response:
    response = _json({"runtime": _runtime(), "hub": service.stats(request.query.get("details") == "1")})
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def buddy_image(request: web.Request, service: SpreedService) -> web.StreamResponse:
    image = service.images.get(request.match_info["imageid"])
    if image is None:
        return web.Response(status=404, text="Unknown image")
    modified = int(image.changed_at)  # HTTP dates have whole seconds
    headers = {"ETag": image.change_id, "Cache-Control": f"public, no-transform, max-age={IMAGE_CACHE_SECONDS}",
               "Last-Modified": formatdate(modified, usegmt=True),
               "Expires": formatdate(service.clock.now() + IMAGE_CACHE_SECONDS, usegmt=True),
               "X-Content-Type-Options": "nosniff"}
    if "If-None-Match" in request.headers:
        if request.headers["If-None-Match"] == image.change_id:
            return web.Response(status=304, headers=headers)
    elif request.if_modified_since is not None and modified <= request.if_modified_since.timestamp():
        return web.Response(status=304, headers=headers)
    return web.Response(body=image.data, content_type=image.mime, headers=headers)


async def ws(request: web.Request, service: SpreedService) -> web.StreamResponse:
    return await channelling.websocket(request, service)


def _resource(methods: dict[str, Endpoint], *, api: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())

    async def handle(request: web.Request) -> web.StreamResponse:
        endpoint = methods.get("GET" if request.method == "HEAD" else request.method)
        if endpoint is None:
            response = _error(405, "method_not_allowed", "Method not allowed")
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        service = request.app[SERVICES].spreed
        try:
            return await endpoint(request, service)
        except TalkdError as exc:
            if not api:
                raise
            return _error(spreed_status(exc), exc.reason, exc.message)
    return handle


def install(app: web.Application, service: SpreedService) -> None:
    base = service.base_path
    api: list[tuple[str, dict[str, Endpoint]]] = [
        (".well-known/spreed-configuration", {"GET": well_known}),
        ("api/v1/config", {"GET": config}),
        ("api/v1/tokens", {"POST": tokens}),
        ("api/v1/rooms", {"POST": rooms}),
    ]
    if service.users_enabled:
        api.append(("api/v1/sessions/{id}/", {"PATCH": patch_session}))
        if service.settings.allow_registration:
            api.append(("api/v1/users", {"POST": register_user}))
    if service.settings.stats:
        api.append(("api/v1/stats", {"GET": stats}))
    for path, methods in api:
        app.router.add_route("*", base + path, _resource(methods, api=True))
    app.router.add_route("*", base + "static/img/buddy/{flags}/{imageid}/{rest:.*}",
                         _resource({"GET": buddy_image}, api=False))
    app.router.add_route("*", base + "ws", _resource({"GET": ws}, api=False))
