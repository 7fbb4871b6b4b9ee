"""Brute-force protection as Nextcloud does it: each failed attempt in the last 12 hours doubles the
delay before the next try (0.1 s, 0.2 s, 0.4 s...); past the maximum delay the request is refused.
Attempts count per client address and per account name; a successful login clears both."""

from __future__ import annotations

import ipaddress
import logging

from talkd.clock import Clock
from talkd.config import SecuritySettings
from talkd.errors import Throttled
from talkd.storage.accounts import AuthFailureStore

log = logging.getLogger(__name__)


class Throttle:
    def __init__(self, store: AuthFailureStore, settings: SecuritySettings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._allowlist = [ipaddress.ip_network(n, strict=False) for n in settings.bruteforce_allowlist]

    def exempt(self, remote: str) -> bool:
        if not self.settings.bruteforce_enabled:
            return True
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        return any(address in network for network in self._allowlist)

    @staticmethod
    def subjects(remote: str, login: str) -> list[str]:
        # Logins come from clients verbatim; NUL cannot be stored in PostgreSQL text.
        subjects = [f"ip:{remote}"]
        login = login.replace("\x00", "").lower()[:255]
        if login:
            subjects.append(f"user:{login}")
        return subjects

    async def attempts(self, remote: str, login: str) -> int:
        since = self.clock.now() - self.settings.bruteforce_window
        counts = await self.store.count_since(self.subjects(remote, login), since)
        return max(counts.values(), default=0)

    def delay_for(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return float(self.settings.bruteforce_base_delay * 2.0 ** min(attempts, 60))

    async def before_attempt(self, remote: str, login: str) -> None:
        """Sleep the delay this client has earned, or raise Throttled when it is past the maximum."""
        if self.exempt(remote):
            return
        delay = self.delay_for(await self.attempts(remote, login))
        if delay > self.settings.bruteforce_max_delay:
            raise Throttled("Reached maximum delay")
        if delay > 0:
            await self.clock.sleep(delay)

    async def failed(self, remote: str, login: str) -> None:
        if self.exempt(remote):
            return
        # Log the address, never the password; the login name helps an admin see an attack.
        log.warning("failed login", extra={"remote": remote, "login": login[:64]})
        await self.store.record(self.subjects(remote, login), self.clock.now())

    async def succeeded(self, remote: str, login: str) -> None:
        if self.exempt(remote):
            return
        await self.store.clear(self.subjects(remote, login))
