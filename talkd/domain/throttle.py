"""Brute-force protection as Nextcloud does it: each failed attempt in the last 12 hours doubles the
delay before the next try (0.1 s, 0.2 s, 0.4 s...); past the maximum delay the request is refused.
Attempts count per client address and per account name; a successful login clears both.

An attempt is recorded as a failure before its (slow) check, in the same step that counts the ones
before it, and a success clears it again: guesses sent in parallel are delayed and refused as if
they had come one after another, and a request that dies mid-check still counts.
"""

from __future__ import annotations

import ipaddress
import logging
import sys

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
        # The fewest earlier failures whose delay is past the maximum (delay_for stops growing at 60).
        self._refused_from = next((n for n in range(61) if self.delay_for(n) > settings.bruteforce_max_delay),
                                  sys.maxsize)

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
        """Count this attempt, then sleep the delay the ones before it earned, or raise Throttled
        (without counting it) when that delay is past the maximum."""
        if self.exempt(remote):
            return
        now = self.clock.now()
        attempts = await self.store.record_unless(self.subjects(remote, login), now - self.settings.bruteforce_window,
                                                  now, self._refused_from)
        if attempts >= self._refused_from:
            raise Throttled("Reached maximum delay")
        delay = self.delay_for(attempts)
        if delay > 0:
            await self.clock.sleep(delay)

    async def failed(self, remote: str, login: str) -> None:
        """The attempt failed; before_attempt has already counted it."""
        if self.exempt(remote):
            return
        # Log the address, never the password; the login name helps an admin see an attack.
        log.warning("failed login", extra={"remote": remote, "login": login[:64]})

    async def succeeded(self, remote: str, login: str) -> None:
        if self.exempt(remote):
            return
        await self.store.clear(self.subjects(remote, login))
