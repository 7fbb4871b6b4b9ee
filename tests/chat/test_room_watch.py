"""The room watch under interleavings: a change that lands while a request reads its access must not be
undone by that request's (older) read, and requests that start watching a room at once share one watch.
Each race is forced with asyncio events, not timing."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from talkd.bus.nats import NatsBus
from talkd.domain import events
from talkd.domain.auth import Identity
from talkd.domain.conversation import Participant, Room
from talkd.domain.room_watch import RoomWatches, Watch
from tests.chat.helpers import V1, V4, group_room
from tests.helpers.client import TalkClient
from tests.helpers.cluster import NATS_URL, require_nats


async def _watched_by(talk: TalkClient, token: str) -> Watch:
    """The room's watch once a request waits on it (a hang guard, not a timing assertion)."""
    for _ in range(500):
        watch = talk.services.chat.watches.peek(token)
        if watch is not None and watch.waiters:
            return watch
        await asyncio.sleep(0.01)
    raise AssertionError("nobody ever waited in the room")


async def test_a_removal_during_a_cached_access_read_is_not_undone(talk: TalkClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """mallory's access read returns her attendee row; before her request stores it in the watch, she is
    removed and the watch empties its cache. The row read before the removal must not be cached after it."""
    for user in ("alice", "mallory"):
        await talk.make_user(user)
    token = await group_room(talk, "alice", "mallory")
    # alice waits in the room (for an id that never comes): the watch runs and caches her access.
    waiter = asyncio.create_task(talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                                          params={"lookIntoFuture": 1, "lastKnownMessageId": 10**9, "timeout": 30}))
    try:
        watch = await _watched_by(talk, token)
        # A late event of the room's creation may empty the cache once; alice's woken poll reads it again.
        for _ in range(1000):  # a hang guard, not a timing assertion
            if "alice" in watch.access:
                break
            await asyncio.sleep(0.01)
        assert "alice" in watch.access
        chat = talk.services.chat
        read_done, resume = asyncio.Event(), asyncio.Event()
        real_access = chat._chat_access

        async def held_access(*args: Any, **kwargs: Any) -> tuple[Room, Participant]:
            """The next access read, held between its SELECT and the caller's use of the row."""
            monkeypatch.setattr(chat, "_chat_access", real_access)
            found = await real_access(*args, **kwargs)
            read_done.set()
            await resume.wait()
            return found

        monkeypatch.setattr(chat, "_chat_access", held_access)
        mallory = await talk.services.accounts.find_user("mallory")
        assert mallory is not None
        reading = asyncio.create_task(chat.receive(Identity(user=mallory), token, look_into_future=True, limit=100,
                                                   timeout=0, last_known=10**9))
        await read_done.wait()
        participants = (await talk.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
        attendee_id = next(p["attendeeId"] for p in participants if p["actorId"] == "mallory")
        (await talk.ocs("DELETE", f"{V4}/room/{token}/attendees", user="alice",
                        json={"attendeeId": attendee_id})).expect(200)
        # The removal's room-changed empties the watch's cache, alice's entry with it.
        async with asyncio.timeout(10):
            while "alice" in watch.access:
                await watch.wait(10)
        resume.set()
        await reading  # read before the removal: allowed
        # Now mallory is out for every request, however the watch answers it.
        (await talk.ocs("POST", f"{V1}/chat/{token}", user="mallory", json={"message": "still in?"})).expect(404)
        (await talk.ocs("GET", f"{V1}/chat/{token}", user="mallory",
                        params={"lookIntoFuture": 1, "lastKnownMessageId": 0, "timeout": 0})).expect(404)
        assert "mallory" not in watch.access
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter


@pytest.fixture
async def nats_bus() -> AsyncIterator[NatsBus]:
    """A real NATS bus: subscribing there waits for the server, so other requests run meanwhile."""
    await require_nats()
    bus = await NatsBus.connect(NATS_URL, prefix=f"t{uuid.uuid4().hex[:12]}")
    yield bus
    await bus.close()


async def test_requests_that_start_watching_a_room_at_once_share_one_watch(nats_bus: NatsBus) -> None:
    watches = RoomWatches(nats_bus)
    topic = events.room_topic("abc")
    entered = asyncio.Event()
    seen: list[Watch] = []

    async def wait_in_room() -> None:
        async with watches.watching("abc") as watch:
            seen.append(watch)
            if len(seen) == 2:
                entered.set()
            await entered.wait()

    try:
        # Both start before either has subscribed (the first waits on the NATS server's answer).
        await asyncio.wait_for(asyncio.gather(wait_in_room(), wait_in_room()), 10)
        assert seen[0] is seen[1]
        assert nats_bus.subscriber_count(topic) == 1
    finally:
        await watches.close()
    assert nats_bus.subscriber_count(topic) == 0  # nothing left behind
