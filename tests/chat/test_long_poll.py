"""Waiting for new messages (lookIntoFuture=1): no message lost or given twice under concurrent posting,
no database query while a waiter sleeps on the bus, and a waiter released as soon as its client leaves.
Runs on SQLite and, with TALKD_TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import event

from talkd.app import create_app
from talkd.bus.memory import MemoryBus
from talkd.cli import make_runner
from talkd.config import Settings
from talkd.services import Services
from tests.chat.helpers import V1, all_messages, group_room, send
from tests.helpers.client import TalkClient

SENDERS = 20
PER_SENDER = 25
WAITERS = 5
# Each waiter asks for a different page size, so some see every message in its own answer and
# others get many at once and must page on with lastKnownMessageId.
WAITER_LIMITS = (1, 7, 50, 100, 200)
NEWER_QUERY = "messages.id >"  # a read of the room's messages after some id
ACCESS_QUERY = "FROM rooms"    # the waiter's access check, which also tells it the room's newest message id


def _bus(talk: TalkClient) -> MemoryBus:
    bus = talk.services.bus
    assert isinstance(bus, MemoryBus)
    return bus


def _waiting(talk: TalkClient, token: str) -> int:
    """Requests waiting in the room: they share one watch, which holds the room's one subscription."""
    watch = talk.services.chat.watches.peek(token)
    return watch.waiters if watch is not None else 0


async def _until(predicate: Any, what: str, attempts: int = 500) -> None:
    """Poll a condition that must come true soon (a hang guard, not a timing assertion)."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@contextmanager
def recorded_statements(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the server sends to the database while the block runs."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append(statement)

    engines = {services.db.engine.sync_engine, services.db.write_engine.sync_engine}  # reads and the writer
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


# (a) Concurrency ----------------------------------------------------------------------------------


async def test_concurrent_posts_reach_every_waiter_exactly_once_in_order(talk: TalkClient) -> None:
    users = [f"user{i}" for i in range(4)]
    for user in users:
        await talk.make_user(user)
    token = await group_room(talk, users[0], *users[1:])
    start = (await all_messages(talk, token, users[0]))[-1]["id"]
    total = SENDERS * PER_SENDER

    async def waiter(user: str, limit: int) -> list[int]:
        collected: list[int] = []
        last = start
        while len(collected) < total:
            reply = await talk.ocs("GET", f"{V1}/chat/{token}", user=user,
                                   params={"lookIntoFuture": 1, "lastKnownMessageId": last, "limit": limit,
                                           "timeout": 10})
            if reply.http_status == 304:
                continue
            reply.expect(200)
            assert len(reply.data) <= limit
            collected += [m["id"] for m in reply.data]
            last = int(reply.headers["X-Chat-Last-Given"])
            assert last == collected[-1]
        return collected

    async def sender(n: int) -> list[int]:
        user = users[n % len(users)]
        return [(await send(talk, token, user, f"s{n}-{i}"))["id"] for i in range(PER_SENDER)]

    waiters = [asyncio.create_task(waiter(users[i % len(users)], WAITER_LIMITS[i])) for i in range(WAITERS)]
    await _until(lambda: _waiting(talk, token) == WAITERS, "all waiters wait")
    sent_lists = await asyncio.gather(*(sender(n) for n in range(SENDERS)))
    collected = await asyncio.wait_for(asyncio.gather(*waiters), 120)  # a lost message would hang: fail instead

    sent = sorted(i for ids in sent_lists for i in ids)
    assert len(set(sent)) == total
    for ids in collected:
        assert ids == sent  # every message, once, in increasing id order
    # Each sender's own messages got increasing ids, and the history agrees with what waiters saw.
    for ids in sent_lists:
        assert ids == sorted(ids)
    assert (await _whole_history(talk, token, users[0]))[-total:] == sent


async def _whole_history(talk: TalkClient, token: str, user: str) -> list[int]:
    """Every id of the room, oldest first, paged backwards with X-Chat-Last-Given."""
    ids: list[int] = []
    params: dict[str, Any] = {"lookIntoFuture": 0, "limit": 200}
    while True:
        page = await talk.ocs("GET", f"{V1}/chat/{token}", user=user, params=params)
        if page.http_status == 304:
            return ids[::-1]
        ids += [m["id"] for m in page.expect(200).data]
        params["lastKnownMessageId"] = int(page.headers["X-Chat-Last-Given"])


async def test_waiters_in_many_rooms_get_only_their_rooms(talk: TalkClient) -> None:
    await talk.make_user("alice")
    tokens = [await group_room(talk, "alice", name=f"R{i}") for i in range(3)]
    starts = {t: (await all_messages(talk, t, "alice"))[-1]["id"] for t in tokens}

    async def wait(token: str) -> list[str]:
        reply = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                               params={"lookIntoFuture": 1, "lastKnownMessageId": starts[token], "timeout": 10})
        return [m["message"] for m in reply.expect(200).data]

    waiters = {t: asyncio.create_task(wait(t)) for t in tokens}
    await _until(lambda: all(_waiting(talk, t) for t in tokens), "waiters wait")
    await asyncio.gather(*(send(talk, t, "alice", f"for {t}") for t in reversed(tokens)))
    for token, task in waiters.items():
        assert await task == [f"for {token}"]


# (b) No database work while waiting ---------------------------------------------------------------


async def test_a_waiting_request_costs_no_query_until_a_post(talk: TalkClient) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    token = await group_room(talk, "alice", "bob")
    elsewhere = await group_room(talk, "alice", name="Elsewhere")
    start = (await all_messages(talk, token, "bob"))[-1]["id"]
    with recorded_statements(talk.services) as statements:
        waiter = asyncio.create_task(talk.ocs(
            "GET", f"{V1}/chat/{token}", user="bob",
            params={"lookIntoFuture": 1, "lastKnownMessageId": start, "timeout": 30}))
        # Subscribed first, then one read of the room (its newest message id: nothing new, so no
        # message query at all): after that the waiter only sleeps.
        await _until(lambda: _bus(talk).subscriber_count(f"room.{token}") == 1, "the waiter subscribed")
        await _until(lambda: any(ACCESS_QUERY in s for s in statements), "the waiter's first check")
        await asyncio.sleep(0.05)
        assert not any(NEWER_QUERY in s for s in statements)
        # The request's ping is batched; write it now so the batch writer has nothing left to do.
        await talk.services.conversations.core.flush()
        statements.clear()
        await asyncio.sleep(1.0)
        assert statements == []
        # A post to another room wakes nobody here: the sender's statements only, no check by the waiter.
        await send(talk, elsewhere, "alice", "not for you")
        assert statements and not any(NEWER_QUERY in s for s in statements)
        assert not waiter.done()
        statements.clear()
        sent = await send(talk, token, "alice", "for you")
        got = (await waiter).expect(200)
        assert [m["id"] for m in got.data] == [sent["id"]]
        # Woken by the post, the waiter read exactly once more.
        assert sum(NEWER_QUERY in s for s in statements) == 1


# (c) A client that leaves releases its waiter -----------------------------------------------------


@pytest.fixture
async def real_server(services: Services, settings: Settings) -> AsyncIterator[str]:
    """talkd on a loopback port with the runner `talkd serve` uses (cli.make_runner)."""
    runner = make_runner(create_app(services), settings)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def _abandoned_wait(base: str, token: str, user: str, password: str, topic: str, bus: MemoryBus,
                          last: int) -> None:
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(session.get(
            f"{base}/ocs/v2.php{V1}/chat/{token}",
            params={"lookIntoFuture": "1", "lastKnownMessageId": str(last), "timeout": "60"},
            headers={"OCS-APIRequest": "true", "Accept": "application/json", "Authorization": auth}))
        await _until(lambda: bus.subscriber_count(topic) == 1, "the waiter subscribed")
        request.cancel()  # the client gives up: its connection closes
        with pytest.raises(asyncio.CancelledError):
            await request
    # Long before the 60 s timeout: the server cancelled the handler and the subscription is gone.
    await _until(lambda: bus.subscriber_count(topic) == 0, "the waiter released", attempts=200)


async def test_disconnect_releases_the_waiter_with_talkd_serves_runner(talk: TalkClient, real_server: str) -> None:
    await talk.make_user("alice")
    token = await group_room(talk, "alice")
    last = (await all_messages(talk, token, "alice"))[-1]["id"]
    await _abandoned_wait(real_server, token, "alice", talk.passwords["alice"], f"room.{token}", _bus(talk), last)
    # The server still serves the room normally afterwards.
    sent = await send(talk, token, "alice", "still here")
    assert (await all_messages(talk, token, "alice"))[-1]["id"] == sent["id"]


async def test_disconnect_releases_the_waiter_with_the_test_server(talk: TalkClient) -> None:
    await talk.make_user("alice")
    token = await group_room(talk, "alice")
    last = (await all_messages(talk, token, "alice"))[-1]["id"]
    base = str(talk.client.make_url("")).rstrip("/")
    await _abandoned_wait(base, token, "alice", talk.passwords["alice"], f"room.{token}", _bus(talk), last)
