"""Wait until storage has something past a position, waking on the bus (Synapse's notifier pattern).

The check runs once before waiting and again after every wake-up; the event itself is never trusted
as data. Subscribing happens before the first check, so a change between check and wait still wakes us.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from talkd.bus.base import EventBus
from talkd.clock import Clock

T = TypeVar("T")


async def wait_for(
    bus: EventBus,
    topics: Iterable[str],
    check: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    clock: Clock,
    wake: Callable[[dict[str, object]], bool] | None = None,
) -> T | None:
    """Return the first non-None result of `check`, or None when `timeout` seconds pass without one.
    `wake` may filter events (return False to keep sleeping without re-checking)."""
    async with bus.subscribe(*topics) as sub:
        result = await check()
        if result is not None or timeout <= 0:
            return result
        deadline = clock.monotonic() + timeout
        while True:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return None
            event = await sub.get(remaining)
            if event is None:
                return None
            if wake is not None and event.get("type") != "overflow" and not wake(event):
                continue
            result = await check()
            if result is not None:
                return result
