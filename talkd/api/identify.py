"""Turn a request's credentials into an Identity: Basic auth, else (where allowed) the session cookie."""

from __future__ import annotations

import base64
import binascii
import ipaddress

from aiohttp import web

from talkd.domain.auth import Identity
from talkd.errors import NotAuthenticated
from talkd.services import Services

SESSION_COOKIE = "talkd_session"
MAX_CREDENTIAL_LENGTH = 1024


def client_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The peer address, or the last untrusted hop of X-Forwarded-For when the peer is a trusted proxy."""
    peer = request.remote or ""
    if not trusted_proxies or not _in(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted_proxies):
            return hop
    return peer


def _in(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise NotAuthenticated("Credentials too long")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("Malformed Basic credentials") from None
    login, sep, secret = decoded.partition(":")
    if not sep or "\x00" in decoded:
        raise NotAuthenticated("Malformed Basic credentials")
    return login, secret


def session_cookie(request: web.Request) -> str:
    """The session token the cookie carries, or "" when it carries none that could be one: our tokens
    are short printable ASCII, and bytes that are no UTF-8 arrive here as surrogates no hash accepts."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if len(token) > MAX_CREDENTIAL_LENGTH or not token.isascii() or not token.isprintable():
        return ""
    return token


async def identify(request: web.Request, services: Services, *, use_cookie: bool) -> Identity:
    """Basic credentials, else (where allowed) the session cookie, else anonymous. Wrong or malformed
    credentials count as a failed login (throttled) and leave the caller anonymous, as Nextcloud's
    tryBasicAuthLogin does: a public route still answers, a user route answers 401."""
    remote = client_address(request, services.settings.server.trusted_proxies)
    try:
        credentials = basic_credentials(request)
        if credentials is not None:
            login, secret = credentials
            return await services.auth.basic(login, secret, remote)
    except NotAuthenticated:
        pass
    if use_cookie:
        token = session_cookie(request)
        session = await services.web_sessions.resolve(token) if token else None
        if session is not None:
            if session.user_id is not None:
                user = await services.accounts.find_user(session.user_id)
                if user is not None and user.enabled:
                    return Identity(user=user, is_admin=await services.accounts.is_admin(user.id),
                                    web_session=session, remote=remote)
            return Identity(web_session=session, remote=remote)
    return Identity(remote=remote)


def set_session_cookie(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=secure, path="/")
