"""The room directory's replica when the bus loses announcements: an overflow makes it start over from
snapshots, so a lost `gone` cannot leave a ghost member, even when every node overflows at once (as after
a NATS reconnect). Two directories (two nodes) on one in-process bus with small inboxes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from talkd.bus.memory import MemoryBus
from talkd.clock import SystemClock
from talkd.spreed.directory import RoomDirectory
from talkd.spreed.model import Session
from tests.helpers.spreed import eventually


@contextlib.asynccontextmanager
async def following(*directories: RoomDirectory) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(directory.follow()) for directory in directories]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

PENDING = 3  # events an inbox holds


def remote_ids(directory: RoomDirectory) -> set[str]:
    room = directory.get("Room:r")
    return set(room.remote) if room is not None else set()


async def test_after_an_overflow_on_every_node_the_replica_has_the_remaining_members_and_no_ghost() -> None:
    bus = MemoryBus(max_pending=PENDING)
    one, two = RoomDirectory(bus, SystemClock()), RoomDirectory(bus, SystemClock())
    async with following(one, two):
        await eventually(lambda: one.has_peers() and two.has_peers(), "the nodes hear of each other")
        room = await one.create("Room:r", "r", "Room", None)
        leaving, staying = (Session(id=f"s{n}", sid=str(n), connection=f"c{n}", index=n, stamp=0.0) for n in (1, 2))
        for session in (leaving, staying):
            await one.add(room, session)
            await asyncio.sleep(0)  # node two takes each announcement before the next
        await eventually(lambda: remote_ids(two) == {"s1", "s2"}, "node two sees both members")

        # Without yielding to the followers both inboxes fill (a node hears its own announcements too), so
        # the `gone` is lost. Node two recovers first: its sync reaches node one while node one still drops
        # everything, so node two learns node one's members only from the snapshot node one offers unasked.
        for _ in range(PENDING):
            await one._announce("alive")
        await one.remove(room, leaving)

        await eventually(lambda: remote_ids(two) == {"s2"}, "node two re-syncs: the member that left is gone")
    await bus.close()
