"""Nextcloud's non-OCS routes that clients call: status.php, the CSRF token, and login flow v2
(start, the browser page that approves it, and the poll that hands out an app password)."""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from talkd.api.identify import client_address, session_cookie, set_session_cookie
from talkd.api.params import read_body, read_params
from talkd.capabilities import NEXTCLOUD_VERSION, NEXTCLOUD_VERSION_STRING
from talkd.crypto import constant_time_equals
from talkd.domain.model import WebSession
from talkd.errors import InvalidInput, NotAuthenticated, NotFound, Throttled, TooLarge, TooSlow
from talkd.services import SERVICES, Services

routes = web.RouteTableDef()
MAX_FORM_FIELD = 1024


def base_url(request: web.Request, services: Services) -> str:
    configured = services.settings.server.base_url
    return configured.rstrip("/") if configured else str(request.url.origin())


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


@routes.get("/status.php")
async def status(request: web.Request) -> web.Response:
    return _json({
        "installed": True,
        "maintenance": False,
        "needsDbUpgrade": False,
        "version": ".".join(str(p) for p in NEXTCLOUD_VERSION),
        "versionstring": NEXTCLOUD_VERSION_STRING,
        "edition": "",
        "productname": "talkd",
        "extendedSupport": False,
    })


async def _existing_session(request: web.Request, services: Services) -> WebSession | None:
    token = session_cookie(request)
    return await services.web_sessions.resolve(token) if token else None


async def _browser_session(request: web.Request, services: Services) -> tuple[WebSession, str | None]:
    """The browser's cookie session, or a new one (then also its token, to be set as a cookie)."""
    session = await _existing_session(request, services)
    if session is not None:
        return session, None
    new_token, session = await services.web_sessions.create()
    return session, new_token


@routes.get("/index.php/csrftoken")
async def csrf_token(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    session, new_token = await _browser_session(request, services)
    response = _json({"token": session.csrf_token})
    if new_token:
        set_session_cookie(response, new_token, secure=request.secure)
    return response


# Login flow v2 ------------------------------------------------------------------------------------


@routes.post("/index.php/login/v2")
async def login_flow_start(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    flow = await services.login_flows.start(request.headers.get("User-Agent", ""))
    root = base_url(request, services)
    return _json({
        "poll": {"token": flow.poll_token, "endpoint": f"{root}/index.php/login/v2/poll"},
        "login": f"{root}/index.php/login/v2/flow/{flow.login_token}",
    })


@routes.post("/index.php/login/v2/poll")
async def login_flow_poll(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        token = (await read_params(request)).string("token", "", max_length=256)
        done = await services.login_flows.poll(token)
    except TooLarge:
        return _json([], status=413)
    except TooSlow:
        return _json([], status=408)
    except InvalidInput:
        return _json([], status=400)
    except NotFound:
        # Not approved yet, already collected, expired or unknown: Nextcloud does not tell them apart.
        return _json([], status=404)
    return _json({
        "server": base_url(request, services),
        "loginName": done.user.id,
        "appPassword": done.app_password.password,
    })


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>talkd - {title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}}
label,input,button{{display:block;width:100%;margin:.4rem 0}}input,button{{padding:.5rem;font-size:1rem}}
.error{{color:#b00020}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = _PAGE.format(title=html.escape(title), body=body)
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _login_form(client: str, csrf: str, error: str = "", logged_in_as: str | None = None) -> str:
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    intro = f"<p>{html.escape(client)} wants to connect to your account.</p>"
    if logged_in_as:
        fields = f"<p>Logged in as <b>{html.escape(logged_in_as)}</b>.</p>"
    else:
        fields = ('<label>Login <input name="user" autocomplete="username" required></label>'
                  '<label>Password <input name="password" type="password" '
                  'autocomplete="current-password" required></label>')
    return (f'{intro}{message}<form method="post">'
            f'<input type="hidden" name="requesttoken" value="{html.escape(csrf)}">'
            f'{fields}<button type="submit">Grant access</button></form>')


def _expired_page() -> web.Response:
    # core/Controller/ClientFlowLoginV2Controller.php answers an unknown or expired login token so.
    return _page("Link expired", "<p>Your login token is invalid or has expired.</p>", status=403)


@routes.get("/index.php/login/v2/flow/{token}")
async def login_flow_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        flow = await services.login_flows.pending(request.match_info["token"])
    except NotFound:
        return _expired_page()
    session, new_token = await _browser_session(request, services)
    response = _page("Connect to your account", _login_form(flow.client_name, session.csrf_token,
                                                             logged_in_as=session.user_id))
    if new_token:
        set_session_cookie(response, new_token, secure=request.secure)
    return response


@routes.post("/index.php/login/v2/flow/{token}")
async def login_flow_grant(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    login_token = request.match_info["token"]
    try:
        flow = await services.login_flows.pending(login_token)
    except NotFound:
        return _expired_page()
    try:
        await read_body(request)  # bounded in time; post() parses what it read
        form = await request.post()
    except TooLarge:
        return _page("Request too large", "<p>The form is too large.</p>", status=413)
    except TooSlow:
        return _page("Request timeout", "<p>The form did not arrive in time.</p>", status=408)
    except (InvalidInput, ValueError):
        return _page("Bad request", "<p>The form could not be read.</p>", status=400)
    fields = {k: v for k, v in form.items() if isinstance(v, str) and len(v) <= MAX_FORM_FIELD}
    # The form must come back with the token of the session that showed it (no session: no match).
    session = await _existing_session(request, services)
    if session is None or not constant_time_equals(fields.get("requesttoken", ""), session.csrf_token):
        return _page("Session expired", "<p>State token does not match. Reload the page and try again.</p>",
                     status=403)

    user_id = session.user_id
    if user_id is None:
        remote = client_address(request, services.settings.server.trusted_proxies)
        try:
            user = await services.auth.password_login(fields.get("user", ""), fields.get("password", ""), remote)
        except Throttled:
            return _page("Too many attempts", "<p>Too many failed logins. Try again later.</p>", status=429)
        except NotAuthenticated:
            body = _login_form(flow.client_name, session.csrf_token, "Wrong login or password.")
            return _page("Connect to your account", body, status=403)
        user_id = user.id
        await services.web_sessions.log_in(session, user_id)
    try:
        await services.login_flows.grant(login_token, user_id)
    except NotFound:
        return _expired_page()
    return _page("Account connected", f"<p>{html.escape(flow.client_name)} is now connected. "
                                      "You can close this window.</p>")
