"""Who is asking: Basic credentials (password or app password), or a cookie session (browser or guest).

Clients send Basic credentials with every request, so a verified credential is remembered for a while
under an HMAC of login and secret (never the secret itself): one slow argon2 check per client, not per
request. Password changes, disabling, deletion, leaving the admin group and app-password revocation are
announced on the bus and drop the remembered entries on every node.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from talkd.bus.base import EventBus
from talkd.clock import Clock
from talkd.crypto import keyed_hash, random_token, sha256_hex
from talkd.domain import events
from talkd.domain.accounts import AccountService, NewAppPassword
from talkd.domain.model import User, WebSession
from talkd.domain.throttle import Throttle, ThrottleAction
from talkd.errors import Forbidden, NotAuthenticated, NotFound, Throttled
from talkd.ids import AppPasswordId, UserId
from talkd.storage.accounts import WebSessionStore

log = logging.getLogger(__name__)

# A precomputed hash to verify against when the login names nobody, so a missing account takes as
# long to reject as a wrong password.
_DUMMY_PASSWORD = "talkd-timing-equaliser"


def _log_failure(remote: str, login: str) -> None:
    # The address, never the password; the login name helps an admin see an attack.
    log.warning("failed login", extra={"remote": remote, "login": login[:64]})


class _CheckAbandoned(Exception):
    """The request checking shared credentials ended without an answer (cancelled, failed)."""


@dataclass(frozen=True)
class Identity:
    """The caller of one request. A user, a guest with a cookie session, or nobody."""

    user: User | None = None
    is_admin: bool = False
    app_password_id: AppPasswordId | None = None
    web_session: WebSession | None = None
    remote: str = ""

    @property
    def user_id(self) -> UserId | None:
        return self.user.id if self.user else None

    @property
    def is_guest(self) -> bool:
        return self.user is None


@dataclass
class _Verified:
    user_id: UserId
    app_password_id: AppPasswordId | None
    # The stored hash the password was checked against: a changed password no longer matches, so
    # the entry is void at once on every node, before any bus event arrives.
    password_hash: str | None
    expires: float
    # The identity last confirmed against storage, trusted as is until `recheck_at`: a client sending
    # Basic credentials on every request costs no query at all for a few seconds. Changes reach the
    # cache through bus events at once; the recheck bounds what an event lost on the way could leave.
    user: User | None = None
    is_admin: bool = False
    recheck_at: float = 0.0


class CredentialCache:
    def __init__(self, secret: bytes, ttl: float, clock: Clock, max_entries: int = 10_000,
                 recheck: float = 5.0) -> None:
        self._secret = secret
        self._ttl = ttl
        self.recheck = recheck
        self._clock = clock
        self._max = max_entries
        self._entries: dict[str, _Verified] = {}

    def key(self, login: str, secret: str) -> str:
        return keyed_hash(self._secret, "basic", login, secret)

    def get(self, key: str) -> _Verified | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < self._clock.monotonic():
            del self._entries[key]
            return None
        return entry

    def put(self, key: str, user: User, app_password_id: AppPasswordId | None) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))
        password_hash = None if app_password_id is not None else user.password_hash
        self._entries[key] = _Verified(user.id, app_password_id, password_hash, self._clock.monotonic() + self._ttl)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def now(self) -> float:
        return self._clock.monotonic()

    def forget_user(self, user_id: str) -> None:
        for k in [k for k, v in self._entries.items() if v.user_id == user_id]:
            del self._entries[k]

    def forget_app_password(self, app_password_id: int) -> None:
        for k in [k for k, v in self._entries.items() if v.app_password_id == app_password_id]:
            del self._entries[k]

    def __len__(self) -> int:
        return len(self._entries)


class Authenticator:
    def __init__(self, *, accounts: AccountService, throttle: Throttle, cache: CredentialCache) -> None:
        self.accounts = accounts
        self.throttle = throttle
        self.cache = cache
        self._dummy_hash: str | None = None
        self._checking: dict[tuple[str, str], asyncio.Future[tuple[User, AppPasswordId | None]]] = {}
        self.shared_checks = 0  # requests that waited for another's check of the same credentials

    async def basic(self, login: str, secret: str, remote: str) -> Identity:
        """Verify Basic credentials; raises NotAuthenticated, or Throttled after too many failures."""
        key = self.cache.key(login, secret)
        cached = self.cache.get(key)
        if cached is not None:
            now = self.cache.now()
            if cached.user is not None and now < cached.recheck_at:
                return Identity(user=cached.user, is_admin=cached.is_admin, app_password_id=cached.app_password_id,
                                remote=remote)
            if cached.user is not None:
                # One request re-checks; the others meanwhile keep trusting the entry.
                cached.recheck_at = now + self.cache.recheck
            user = await self._still_valid(cached, secret)
            if user is not None:
                cached.user, cached.is_admin = user, await self.accounts.is_admin(user.id)
                cached.recheck_at = now + self.cache.recheck
                return Identity(user=user, is_admin=cached.is_admin, app_password_id=cached.app_password_id,
                                remote=remote)
            self.cache.forget(key)

        user, app_password_id = await self._checked_once(key, login, secret, remote)
        return Identity(user=user, is_admin=await self.accounts.is_admin(user.id),
                        app_password_id=app_password_id, remote=remote)

    async def _checked_once(self, key: str, login: str, secret: str, remote: str) -> tuple[User, AppPasswordId | None]:
        """The slow check of credentials the cache does not know. Requests carrying the same credentials
        from the same address at the same time (a client's first burst) share one check: one slow hash
        and one throttled attempt for the burst, and the burst is not taken for parallel guesses at one
        account."""
        while (shared := self._checking.get((key, remote))) is not None:
            self.shared_checks += 1
            try:
                return await asyncio.shield(shared)
            except _CheckAbandoned:
                continue  # the request doing the check went away: check anew
        check: asyncio.Future[tuple[User, AppPasswordId | None]] = asyncio.get_running_loop().create_future()
        check.add_done_callback(lambda done: done.cancelled() or done.exception())  # no "never retrieved"
        self._checking[key, remote] = check
        try:
            async with self.throttle.guard(ThrottleAction.LOGIN, remote, login) as attempt:
                user, app_password_id = await self._verify(login, secret)
                if user is None:
                    _log_failure(remote, login)
                    raise NotAuthenticated("Invalid credentials")
                attempt.succeeded()
            await self.accounts.record_login(user.id)
            self.cache.put(key, user, app_password_id)
        except (NotAuthenticated, Throttled) as refused:
            check.set_exception(refused)
            raise
        except BaseException:
            check.set_exception(_CheckAbandoned())
            raise
        else:
            check.set_result((user, app_password_id))
            return user, app_password_id
        finally:
            del self._checking[key, remote]

    async def _still_valid(self, cached: _Verified, secret: str) -> User | None:
        """The cached credential's user, if nothing changed since it was verified: the account
        exists and is enabled, and its password hash or app password is still the same. Cheap
        reads only; the slow hash is what the cache saves."""
        user = await self.accounts.find_user(cached.user_id)
        if user is None or not user.enabled:
            return None
        if cached.app_password_id is None:
            return user if user.password_hash == cached.password_hash else None
        app_password = await self.accounts.find_app_password(secret)
        return user if app_password is not None and app_password.id == cached.app_password_id else None

    async def password_login(self, login: str, password: str, remote: str) -> User:
        """A login form's check: the account password only (never an app password), throttled."""
        async with self.throttle.guard(ThrottleAction.LOGIN, remote, login) as attempt:
            user = await self.accounts.find_user(login)
            ok = user is not None and user.enabled and await self.accounts.hashing.verify(user.password_hash, password)
            if not ok:
                if user is None:
                    await self._equalise_timing(password)
                _log_failure(remote, login)
                raise NotAuthenticated("Wrong login or password")
            attempt.succeeded()
        assert user is not None
        await self.accounts.record_login(user.id)
        return user

    # App passwords of the caller (core/Controller/AppPasswordController.php) --------------------

    async def new_app_password(self, identity: Identity, name: str) -> NewAppPassword:
        """A fresh app password for the caller; one signed in with an app password may not mint more."""
        if identity.user is None:
            raise NotAuthenticated("Current user is not logged in")
        if identity.app_password_id is not None:
            raise Forbidden("You cannot request an new apppassword with an apppassword",
                            reason="app-password-in-use")
        return await self.accounts.create_app_password(identity.user.id, name)

    async def revoke_own_app_password(self, identity: Identity) -> None:
        """Revoke the app password this request was made with; it stops working at once."""
        if identity.user is None or identity.app_password_id is None:
            raise Forbidden("no app password in use", reason="no-app-password")
        try:
            await self.accounts.revoke_app_password(identity.user.id, identity.app_password_id)
        except NotFound:
            raise Forbidden("could not remove apptoken", reason="no-app-password") from None
        self.cache.forget_app_password(identity.app_password_id)

    async def _verify(self, login: str, secret: str) -> tuple[User | None, AppPasswordId | None]:
        app_password = await self.accounts.find_app_password(secret)
        if app_password is not None:
            user = await self.accounts.find_user(app_password.user_id)
            if user is not None and user.enabled and user.id.lower() == login.lower():
                return user, app_password.id
            return None, None
        user = await self.accounts.find_user(login)
        if user is None:
            await self._equalise_timing(secret)
            return None, None
        if user.enabled and await self.accounts.hashing.verify(user.password_hash, secret):
            return user, None
        return None, None

    async def _equalise_timing(self, secret: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = await self.accounts.hashing.hash(_DUMMY_PASSWORD)
        await self.accounts.hashing.verify(self._dummy_hash, secret)

    async def follow_invalidations(self, bus: EventBus) -> None:
        """Run for the server's lifetime: drop cached credentials when accounts announce a change."""
        async with bus.subscribe(events.ACCOUNTS_TOPIC) as sub:
            async for event in sub:
                kind = event.get("type")
                if kind == "credentials-changed":
                    self.cache.forget_user(str(event.get("userId")))
                elif kind == "app-password-revoked":
                    self.cache.forget_app_password(int(event.get("appPasswordId", -1)))
                elif kind == "overflow":
                    self.cache._entries.clear()


class WebSessions:
    """Cookie sessions: a guest's identity across requests, and a browser login (login flow page)."""

    TOUCH_EVERY = 60  # seconds; refreshing last_seen on every request would write on every request

    def __init__(self, store: WebSessionStore, clock: Clock, ttl: float) -> None:
        self.store = store
        self.clock = clock
        self.ttl = ttl

    async def create(self, user_id: UserId | None = None) -> tuple[str, WebSession]:
        token = random_token(64)
        session = await self.store.create(token_hash=sha256_hex(token), csrf_token=random_token(43),
                                          user_id=user_id, now=int(self.clock.now()))
        return token, session

    async def resolve(self, token: str) -> WebSession | None:
        if not token or len(token) > 128:
            return None
        session = await self.store.find(sha256_hex(token))
        if session is None:
            return None
        now = int(self.clock.now())
        if session.last_seen + self.ttl < now:
            await self.store.delete(session.id)
            return None
        if now - session.last_seen >= self.TOUCH_EVERY:
            await self.store.touch(session.id, now)
        return session

    async def log_in(self, session: WebSession, user_id: UserId) -> None:
        await self.store.set_user(session.id, user_id)

    async def end(self, session: WebSession) -> None:
        await self.store.delete(session.id)

    async def expire(self) -> int:
        return await self.store.delete_idle(int(self.clock.now() - self.ttl))

