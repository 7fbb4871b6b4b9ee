"""The NATS bus across a lost connection: subscribers learn they may have missed events (overflow).

Runs its own nats-server on a free loopback port, since the test stops and restarts it. Locally a
missing nats-server skips; with CI=true it fails."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.errors import SlowConsumerError

from talkd.bus.base import topic
from talkd.bus.memory import OVERFLOW
from talkd.bus.nats import NatsBus
from tests.helpers.binaries import require_binaries, wait_listening
from tests.helpers.server import free_tcp_port

START_TIMEOUT = 5.0


@dataclass
class NatsServer:
    binary: str
    port: int
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary, "-a", "127.0.0.1", "-p", str(self.port),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_listening(self.process, self.port, name="nats-server", timeout=START_TIMEOUT)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def nats_server() -> AsyncIterator[NatsServer]:
    [binary] = require_binaries("nats-server", package="nats-server")
    server = NatsServer(binary, free_tcp_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_every_subscriber_gets_overflow_after_a_reconnect_and_events_flow_again() -> None:
    room, user = topic("room", "r"), topic("user", "u")
    async with nats_server() as server:
        bus = await NatsBus.connect(server.url, prefix="t", reconnect_time_wait=0.1)
        try:
            async with bus.subscribe(room) as in_room, bus.subscribe(room, user) as both:
                await bus.publish(room, {"type": "message", "n": 1})
                assert (await in_room.get(3) or {}).get("n") == 1
                assert (await both.get(3) or {}).get("n") == 1

                await server.stop()  # what is published elsewhere now never reaches this node
                await server.start()

                assert await in_room.get(5) == OVERFLOW
                assert await both.get(5) == OVERFLOW  # one marker, though it follows two topics
                await bus.publish(user, {"type": "x"})
                await bus.publish(room, {"type": "message", "n": 2})
                assert (await both.get(3) or {}).get("type") == "x"
                assert (await both.get(3) or {}).get("n") == 2
                assert (await in_room.get(3) or {}).get("n") == 2
                assert await in_room.get(0.2) is None
        finally:
            await bus.close()


async def test_a_message_the_client_drops_for_a_slow_subscription_gives_its_subscribers_overflow() -> None:
    room, other = topic("room", "slow"), topic("room", "fine")
    async with nats_server() as server:
        bus = await NatsBus.connect(server.url, prefix="t")
        try:
            async with bus.subscribe(room) as slow, bus.subscribe(other) as fine:
                await bus.publish(room, {"type": "message", "n": 1})
                assert (await slow.get(3) or {}).get("n") == 1
                # What nats-py reports through error_cb when a subscription's pending queue is full.
                remote = bus._remote[room]
                await bus._nc._error_cb(SlowConsumerError(subject=remote.subject, reply="", sid=0, sub=remote))
                assert await slow.get(1) == OVERFLOW
                assert await fine.get(0.2) is None
        finally:
            await bus.close()
