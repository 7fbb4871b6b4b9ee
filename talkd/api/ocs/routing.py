"""The OCS dispatcher: every route is declared once and served under /ocs/v1.php and /ocs/v2.php.

A handler receives an OcsRequest (parameters, identity, services) and returns data, or an OcsResult
when it chooses a status or headers. Errors from the domain are mapped by api/errors.py, and the
envelope is rendered by protocol/ocs.py in the format the client asked for.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from talkd.api.errors import ErrorMap, OcsError, ocs_status
from talkd.api.identify import identify, set_session_cookie
from talkd.api.params import Params, read_params
from talkd.domain.auth import Identity
from talkd.domain.model import User, WebSession
from talkd.domain.throttle import ThrottleAction
from talkd.errors import InvalidInput, NotAuthenticated, RoomNotFound, TalkdError, Throttled
from talkd.protocol.ocs import (
    INVALID_QUERY_MESSAGE,
    RESPOND_NOT_FOUND,
    RESPOND_SERVER_ERROR,
    RESPOND_UNAUTHORISED,
    ApiVersion,
    Format,
    OcsResult,
    choose_format,
    render,
)
from talkd.services import SERVICES, Services

log = logging.getLogger(__name__)


class Access(enum.Enum):
    PUBLIC = "public"  # anyone; guests are recognised by their session cookie
    USER = "user"      # a logged-in user
    ADMIN = "admin"    # a member of the admin group


@dataclass
class OcsRequest:
    http: web.Request
    ocs_version: ApiVersion
    params: Params
    identity: Identity
    services: Services
    new_session_token: str | None = field(default=None)

    def match(self, name: str) -> str:
        return self.http.match_info[name]

    @property
    def turns_on(self) -> bool:
        """For a switch that POST turns on and DELETE turns off (public, favorite, moderator): which one."""
        return self.http.method == "POST"

    @property
    def api_version(self) -> int:
        """The Talk API version of routes declared with `{apiVersion:v[1-4]}` (1 for others)."""
        raw = self.http.match_info.get("apiVersion", "v1")
        return int(raw[1:])

    @property
    def user(self) -> User:
        """The logged-in user (routes with Access.USER or ADMIN always have one)."""
        if self.identity.user is None:
            raise NotAuthenticated("Current user is not logged in")
        return self.identity.user

    async def web_session(self) -> WebSession:
        """The caller's cookie session, started now (and sent as a cookie) when it has none."""
        if self.identity.web_session is not None:
            return self.identity.web_session
        token, session = await self.services.web_sessions.create(self.identity.user_id)
        self.new_session_token = token
        self.identity = Identity(user=self.identity.user, is_admin=self.identity.is_admin,
                                 app_password_id=self.identity.app_password_id, web_session=session,
                                 remote=self.identity.remote)
        return session


Handler = Callable[[OcsRequest], Awaitable[Any]]
# A route's error overrides, fixed or chosen per request (Talk's API versions differ in a few codes).
RouteErrors = ErrorMap | Callable[[OcsRequest], ErrorMap]


@dataclass(frozen=True)
class OcsRoute:
    method: str
    path: str
    handler: Handler
    access: Access
    errors: RouteErrors | None
    # Talk's #[BruteForceProtection]: requests from an address that failed this action are delayed,
    # and a conversation token that names nothing the caller may see counts as a failure.
    bruteforce: ThrottleAction | None = None


class OcsRouter:
    """Collects routes; `install` adds each under both OCS versions."""

    def __init__(self) -> None:
        self.routes: list[OcsRoute] = []

    def route(self, method: str, path: str, *, access: Access = Access.USER,
              errors: RouteErrors | None = None, bruteforce: ThrottleAction | None = None
              ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(OcsRoute(method, path, handler, access, errors, bruteforce))
            return handler
        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            for version in (1, 2):
                app.router.add_route(route.method, f"/ocs/v{version}.php{route.path}",
                                     _endpoint(route, version))


def ocs_version_of(path: str) -> ApiVersion | None:
    if path.startswith("/ocs/v1.php"):
        return 1
    if path.startswith("/ocs/v2.php"):
        return 2
    return None


def request_format(request: web.Request) -> Format:
    return choose_format(request.query.get("format"), request.headers.get("Accept"))


def ocs_response(request: web.Request, result: OcsResult, version: ApiVersion) -> web.Response:
    rendered = render(result, version, request_format(request))
    response = web.Response(status=rendered.http_status, body=rendered.body)
    response.headers["Content-Type"] = rendered.content_type
    for name, value in result.headers.items():
        response.headers[name] = value
    if rendered.http_status == 401:
        realm = 'realm="Authorisation Required"'
        scheme = "DummyBasic" if request.headers.get("X-Requested-With") == "XMLHttpRequest" else "Basic"
        response.headers["WWW-Authenticate"] = f"{scheme} {realm}"
    return response


def _endpoint(route: OcsRoute, version: ApiVersion) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def endpoint(request: web.Request) -> web.Response:
        services = request.app[SERVICES]
        ocs_request: OcsRequest | None = None
        try:
            # Nextcloud's CSRF rule for OCS: a cookie session counts only with "OCS-APIRequest: true".
            use_cookie = request.headers.get("OCS-APIRequest", "").lower() == "true"
            identity = await identify(request, services, use_cookie=use_cookie)
            _check_access(route.access, identity)
            params = await _read_body(request)
            ocs_request = OcsRequest(request, version, params, identity, services)
            if route.bruteforce is None:
                outcome = await route.handler(ocs_request)
            else:
                outcome = await _throttled(route, route.bruteforce, ocs_request)
            result = outcome if isinstance(outcome, OcsResult) else OcsResult(data=outcome)
        except OcsError as exc:
            result = OcsResult(data=exc.data if exc.data is not None else [], status=exc.status,
                               message=exc.message)
        except NotAuthenticated as exc:
            result = OcsResult(status=RESPOND_UNAUTHORISED, message=exc.message or "Current user is not logged in")
        except Throttled as exc:
            # As ocs/v1.php answers MaxDelayReached through OC\OCS\ApiHelper::respond: statuscode 429,
            # with HTTP 200 under v1 (V1Response is 200 for all but 997) and HTTP 429 under v2.
            result = OcsResult(status=429, message=exc.message)
        except TalkdError as exc:
            overrides = route.errors(ocs_request) if callable(route.errors) and ocs_request else route.errors
            result = OcsResult(status=ocs_status(exc, overrides if not callable(overrides) else None),
                               message=exc.message)
        except Exception:
            # ocs/v1.php's last resort: logged here, an OCS 996 for the client (v2: HTTP 500).
            log.exception("unhandled error in %s %s", request.method, route.path)
            result = OcsResult(status=RESPOND_SERVER_ERROR, message="Internal Server Error\n")
        response = ocs_response(request, result, version)
        if ocs_request is not None and ocs_request.new_session_token is not None:
            set_session_cookie(response, ocs_request.new_session_token, secure=request.secure)
        return response

    endpoint.__name__ = f"ocs_{route.handler.__name__}"
    return endpoint


async def _throttled(route: OcsRoute, action: ThrottleAction, req: OcsRequest) -> Any:
    throttle = req.services.throttle
    await throttle.delay(action, req.identity.remote)
    try:
        return await route.handler(req)
    except RoomNotFound:
        token = req.http.match_info.get("token")
        if token is None:  # /signaling/settings names it as a parameter
            raw = req.params.raw("token")
            token = raw if isinstance(raw, str) else ""
        await throttle.record(action, req.identity.remote, token)
        raise


async def _read_body(request: web.Request) -> Params:
    """The request's parameters; an unreadable or oversized body is 400/413 on every route, whatever
    the route maps InvalidInput to (POST /cloud/users answers a bad value with 101, not a bad body)."""
    try:
        return await read_params(request, request.match_info)
    except InvalidInput as exc:
        raise OcsError(ocs_status(exc), exc.message) from None


def _check_access(access: Access, identity: Identity) -> None:
    if access is Access.PUBLIC:
        return
    if identity.user is None:
        raise NotAuthenticated("Current user is not logged in")
    if access is Access.ADMIN and not identity.is_admin:
        # SecurityMiddleware's NotAdminException: always 403, whatever the route maps Forbidden to.
        raise OcsError(403, "Logged in account must be an admin")


@web.middleware
async def unknown_ocs_route(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> web.StreamResponse:
    """An OCS path no route matches gets Nextcloud's "invalid query" answer (998) in the OCS format;
    a path that exists under another method gets a bare 405, as ocs/v1.php answers it."""
    version = ocs_version_of(request.path)
    unmatched = request.match_info.http_exception
    if version is None or unmatched is None:
        return await handler(request)
    if isinstance(unmatched, web.HTTPMethodNotAllowed):
        return web.Response(status=405, headers={"Allow": ",".join(sorted(unmatched.allowed_methods))})
    return ocs_response(request, OcsResult(status=RESPOND_NOT_FOUND, message=INVALID_QUERY_MESSAGE), version)
