"""NATS bus for clusters: the same contract as MemoryBus, across processes.

Each topic maps to the subject `<prefix>.<topic>`. A process holds at most one NATS subscription per
subject however many local waiters want it (1,000 long polls on one room cost one subscription), and
fans messages out locally; local queues are bounded exactly like MemoryBus's.

Messages published while the connection is down, or dropped by the client for a slow subscription,
are lost; the local subscribers concerned then get an overflow marker, as from a full inbox, and re-read.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub
from nats.errors import SlowConsumerError

from talkd.bus.base import Event
from talkd.bus.memory import BoundedInbox, Waits

log = logging.getLogger(__name__)


class NatsSubscription(BoundedInbox):
    def __init__(self, bus: NatsBus, topics: tuple[str, ...], max_pending: int) -> None:
        super().__init__(max_pending, bus.waits)
        self._bus = bus
        self.topics = topics
        self._started = False

    async def start(self) -> None:
        if not self._started:
            self._started = True
            await self._bus._attach(self)

    async def get(self, timeout: float | None = None) -> Event | None:
        await self.start()
        return await self._next(timeout)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._started:
                await self._bus._detach(self)

    async def __aenter__(self) -> NatsSubscription:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class NatsBus:
    def __init__(self, client: Client, *, prefix: str = "talkd", max_pending: int = 1000) -> None:
        self._nc = client
        self._prefix = prefix
        self._max_pending = max_pending
        self._local: dict[str, set[NatsSubscription]] = defaultdict(set)
        self._remote: dict[str, NatsSub] = {}
        self._lock = asyncio.Lock()
        self.published = 0
        self.waits = Waits()

    def release_waits(self) -> None:
        self.waits.released = True
        for sub in {s for subs in self._local.values() for s in subs}:
            sub.release()

    @classmethod
    async def connect(cls, url: str, *, prefix: str = "talkd", name: str = "talkd",
                      reconnect_time_wait: float = 0.5) -> NatsBus:
        bus = cls(Client(), prefix=prefix)
        # nats-py annotates reconnect_time_wait as int but only sleeps on it: fractions of a second work.
        await bus._nc.connect(url, name=name, error_cb=bus._on_error, reconnected_cb=bus._on_reconnected,
                              max_reconnect_attempts=-1,
                              reconnect_time_wait=reconnect_time_wait)  # type: ignore[arg-type]
        return bus

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats error", extra={"error": str(exc)})
        if isinstance(exc, SlowConsumerError):  # the client dropped a message of this subject
            topic = exc.subject.removeprefix(f"{self._prefix}.")
            for sub in tuple(self._local.get(topic, ())):
                sub.mark_gap()

    async def _on_reconnected(self) -> None:
        # Whatever was published while we were away is lost: every subscriber must re-read state.
        # Now, not on disconnect: the subscriptions are registered again, so what follows the re-read arrives.
        subs = {sub for subs in self._local.values() for sub in subs}
        log.warning("nats reconnected; subscribers re-read state", extra={"subscribers": len(subs)})
        for sub in subs:
            sub.mark_gap()

    def _subject(self, topic: str) -> str:
        return f"{self._prefix}.{topic}"

    async def publish(self, topic: str, event: Event) -> None:
        self.published += 1
        await self._nc.publish(self._subject(topic), orjson.dumps({**event, "topic": topic}))

    def subscribe(self, *topics: str) -> NatsSubscription:
        if not topics:
            raise ValueError("subscribe needs at least one topic")
        return NatsSubscription(self, tuple(topics), self._max_pending)

    async def _attach(self, sub: NatsSubscription) -> None:
        async with self._lock:
            new = []
            for topic in sub.topics:
                self._local[topic].add(sub)
                if topic not in self._remote:
                    self._remote[topic] = await self._nc.subscribe(self._subject(topic), cb=self._fan_out(topic))
                    new.append(topic)
            if new:
                # One round trip: the server has registered the subscriptions before we return.
                await self._nc.flush()

    def _fan_out(self, topic: str) -> Any:
        async def callback(msg: Msg) -> None:
            for sub in tuple(self._local.get(topic, ())):
                sub._deliver(msg.data)
        return callback

    async def _detach(self, sub: NatsSubscription) -> None:
        async with self._lock:
            for topic in sub.topics:
                subs = self._local.get(topic)
                if subs is None:
                    continue
                subs.discard(sub)
                if not subs:
                    del self._local[topic]
                    remote = self._remote.pop(topic, None)
                    if remote is not None and not self._nc.is_closed:
                        await remote.unsubscribe()

    def subscriber_count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._local.get(topic, ()))
        return len({id(s) for subs in self._local.values() for s in subs})

    async def close(self) -> None:
        for subs in list(self._local.values()):
            for sub in list(subs):
                await sub.close()
        if not self._nc.is_closed:
            await self._nc.drain()
