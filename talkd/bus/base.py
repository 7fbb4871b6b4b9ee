"""The bus interface. Implementations: memory.MemoryBus (one process) and, later, a NATS bus (cluster).

Events are JSON-safe dicts with a "type" key. They are hints, not state: a waiter that wakes re-reads
storage, so a lost or duplicated event can delay an answer but never make it wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

Event = dict[str, Any]

# Topic scopes: every "something changed" names one of these.
ROOM = "room"          # room.<token>: messages, participants, call state of one conversation
USER = "user"          # user.<id>: room list changes, credential changes of one account
SESSION = "session"    # session.<id>: messages addressed to one signaling session
ACCOUNTS = "accounts"  # accounts: credential changes (cache invalidation on every node)
ROOMS = "rooms"        # rooms: conversations deleted (cache invalidation on every node)


def topic(scope: str, key: str = "") -> str:
    """`room.<token>`, `user.<id>`...; the key is escaped so it cannot inject another level."""
    if not key:
        return scope
    return f"{scope}.{key.replace('%', '%25').replace('.', '%2E').replace('*', '%2A').replace('>', '%3E')}"


class Subscription(Protocol):
    """Events for the subscribed topics, in publish order per topic, from subscription time on."""

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when the timeout passes first."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Subscription: ...

    async def __aexit__(self, *exc: object) -> None: ...


class EventBus(Protocol):
    async def publish(self, topic: str, event: Event) -> None: ...

    def subscribe(self, *topics: str) -> Subscription:
        """A subscription that receives everything published after it is entered (`async with`): the
        waiter enters before it first reads storage, so no change can fall between read and wait."""

    def release_waits(self) -> None:
        """Shutdown: every bounded `get(timeout)`, waiting now or later, returns None at once (as on its
        timeout), so long polls answer before the server stops; unbounded followers go on."""

    async def close(self) -> None: ...
