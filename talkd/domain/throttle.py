"""Brute-force protection as Nextcloud's Throttler does it: failed attempts are recorded per action
and client address (an IPv6 address as its /64) with what they named; each failure of that action from
that address in the last 12 hours doubles the delay before its next try (0.1 s, 0.2 s, 0.4 s...), and
past the maximum delay the address is refused (429) for that action. A success clears only the
failures that named the same thing from the same address (Nextcloud's resetDelay with metadata), so
an account is never locked by strangers and one's own login does not wipe an address's guesses.

Slow checks (passwords: `guard`) are exact under parallelism, within one process. An attempt being
checked is pending: it counts against nobody until it is known to fail. An attempt is admitted when
even the worst case, every pending attempt failing, leaves it below the refusal point; otherwise it
waits for a pending one to finish (a place in the queue, not a delay) and looks again. Parallel
attempts naming the same thing (different secrets for one account: guessing) are refused at once when
pending and failed ones reach the refusal point. After its check an attempt waits for the outcome of
those admitted before it and sleeps the delay their failures earned. So N parallel wrong guesses are
delayed and refused exactly as N sequential ones, while N parallel correct logins never delay or refuse
each other. Across processes only recorded failures are shared: each process admits at most the
refusal point's worth of pending checks.

Cheap lookups (unknown room tokens) are throttled as Nextcloud's middleware does: `delay` before the
request, `record` when it failed.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from talkd.clock import Clock
from talkd.config import SecuritySettings
from talkd.errors import Throttled
from talkd.storage.accounts import AuthFailureStore

log = logging.getLogger(__name__)


class ThrottleAction(enum.StrEnum):
    """Nextcloud's and Talk's action names; each is counted on its own."""

    LOGIN = "login"
    ROOM_PASSWORD = "talkRoomPassword"
    ROOM_TOKEN = "talkRoomToken"


@dataclass
class Attempt:
    """One guarded check; call `succeeded()` when it passed, else it counts as failed."""

    ok: bool = False

    def succeeded(self) -> None:
        self.ok = True


@dataclass
class _Pending:
    subject: str
    failed: asyncio.Future[bool]


@dataclass
class _Address:
    """The attempts of one (action, address) being checked in this process."""

    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    pending: list[_Pending] = field(default_factory=list)
    users: int = 0


class Throttle:
    def __init__(self, store: AuthFailureStore, settings: SecuritySettings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._allowlist = [ipaddress.ip_network(n, strict=False) for n in settings.bruteforce_allowlist]
        # The fewest earlier failures whose delay is past the maximum (delay_for stops growing at 60).
        self._refused_from = next((n for n in range(61) if self.delay_for(n) > settings.bruteforce_max_delay),
                                  sys.maxsize)
        self._addresses: dict[tuple[str, str], _Address] = {}

    def exempt(self, remote: str) -> bool:
        if not self.settings.bruteforce_enabled:
            return True
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        return any(address in network for network in self._allowlist)

    @staticmethod
    def address_key(remote: str) -> str:
        """What attempts are counted by: the address, an IPv6 one by its /64 (Nextcloud's getSubnet)."""
        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return remote[:64]
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    @staticmethod
    def subject_key(subject: str) -> str:
        # Names come from clients verbatim; NUL cannot be stored in PostgreSQL text.
        return subject.replace("\x00", "").lower()[:255]

    async def attempts(self, remote: str, action: ThrottleAction = ThrottleAction.LOGIN) -> int:
        return await self._failures(action, self.address_key(remote))

    async def _failures(self, action: ThrottleAction, address: str) -> int:
        return await self.store.count_since(action, address, self.clock.now() - self.settings.bruteforce_window)

    def delay_for(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return float(self.settings.bruteforce_base_delay * 2.0 ** min(attempts, 60))

    # Cheap lookups --------------------------------------------------------------------------------

    async def delay(self, action: ThrottleAction, remote: str) -> None:
        """Sleep what the address's failures of `action` earned, or raise Throttled past the maximum."""
        if self.exempt(remote):
            return
        failures = await self._failures(action, self.address_key(remote))
        if failures >= self._refused_from:
            raise Throttled("Reached maximum delay")
        if failures:
            await self.clock.sleep(self.delay_for(failures))

    async def record(self, action: ThrottleAction, remote: str, subject: str) -> None:
        if self.exempt(remote):
            return
        await self.store.record(action, self.address_key(remote), self.subject_key(subject), self.clock.now())

    # Slow checks ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def guard(self, action: ThrottleAction, remote: str, subject: str) -> AsyncIterator[Attempt]:
        """Admit one check of a secret naming `subject` (raises Throttled), run the block, and count it
        as failed unless it called `succeeded()`; the block's answer leaves after the delay the
        attempts before it earned."""
        attempt = Attempt()
        if self.exempt(remote):
            yield attempt
            return
        key = (str(action), self.address_key(remote))
        subject = self.subject_key(subject)
        state = self._addresses.setdefault(key, _Address())
        state.users += 1
        try:
            me, earlier, failures = await self._admit(action, key[1], subject, state)
            try:
                yield attempt
            except Exception:
                await asyncio.shield(self._resolve(action, key[1], state, me, failed=True))
                await self._settle(earlier, failures)
                raise
            except BaseException:
                # Cancelled mid-check: it still counts as failed (shielded, so the record is written).
                await asyncio.shield(self._resolve(action, key[1], state, me, failed=True))
                raise
            await asyncio.shield(self._resolve(action, key[1], state, me, failed=not attempt.ok))
            earned = await self._settle(earlier, failures)
            if attempt.ok and earned:
                await self.store.clear(action, key[1], subject)
        finally:
            state.users -= 1
            if state.users == 0:
                del self._addresses[key]

    async def _settle(self, earlier: list[_Pending], failures: int) -> int:
        """Wait for the outcome of the attempts admitted before this one and sleep what their and
        the recorded failures earned; returns that count."""
        earned = failures + sum([await p.failed for p in earlier])
        if earned:
            await self.clock.sleep(self.delay_for(earned))
        return earned

    async def _admit(self, action: ThrottleAction, address: str, subject: str, state: _Address
                     ) -> tuple[_Pending, list[_Pending], int]:
        async with state.changed:
            while True:
                failures = await self._failures(action, address)
                guessing = sum(p.subject == subject for p in state.pending)
                if failures + guessing >= self._refused_from:
                    raise Throttled("Reached maximum delay")
                if failures + len(state.pending) < self._refused_from:
                    break
                await state.changed.wait()
            me = _Pending(subject, asyncio.get_running_loop().create_future())
            earlier = list(state.pending)
            state.pending.append(me)
            return me, earlier, failures

    async def _resolve(self, action: ThrottleAction, address: str, state: _Address, me: _Pending, *,
                       failed: bool) -> None:
        async with state.changed:
            try:
                if failed:
                    # Recorded before it stops being pending: an attempt admitted meanwhile sees it
                    # in one of the two, never in neither.
                    await self.store.record(action, address, me.subject, self.clock.now())
            finally:
                state.pending.remove(me)
                me.failed.set_result(failed)
                state.changed.notify_all()
