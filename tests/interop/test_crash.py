"""Acknowledged chat messages survive `kill -9` under load.

Several senders post messages to one conversation of a real talkd process without pause; the server is
killed with SIGKILL while their requests are in flight, a few times, and started again on the same data
dir (and database). Afterwards every message that got HTTP 201 is in the conversation exactly once, with
the id its answer named, in the order each sender got its answers. A message whose request failed may be
there or not, but never twice. The rounds move on when enough messages were acknowledged, not after a
sleep, so a slow machine only makes the test slower.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers.client import basic
from tests.helpers.server import RunningTalkd, running_talkd

pytestmark = pytest.mark.interop

SENDERS = 4
KILLS = 3
ACKS_PER_ROUND = 25  # acknowledged messages between two kills (and after the last start)
ROUND_TIMEOUT = 20.0
OCS = {"OCS-APIRequest": "true", "Accept": "application/json"}


@dataclass
class Load:
    """What the senders saw: acknowledged (text, id) per sender, in answer order, and texts not acknowledged."""

    acked: dict[int, list[tuple[str, int]]] = field(default_factory=lambda: collections.defaultdict(list))
    unacked: set[str] = field(default_factory=set)
    since_start: int = 0
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    up: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False

    def acknowledged(self, sender: int, text: str, message_id: int) -> None:
        self.acked[sender].append((text, message_id))
        self.since_start += 1
        if self.since_start >= ACKS_PER_ROUND:
            self.enough.set()


async def sender(number: int, server: RunningTalkd, token: str, auth: dict[str, str], load: Load) -> None:
    url = f"{server.base_url}/ocs/v2.php/apps/spreed/api/v1/chat/{token}?format=json"
    sent = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        while not load.stop:
            await load.up.wait()
            sent += 1
            text = f"crash {number}-{sent}"  # never sent twice: a retry would make a real duplicate
            try:
                async with session.post(url, headers={**OCS, **auth}, data={"message": text}) as response:
                    body: Any = await response.json(content_type=None)
                    if response.status == 201:
                        load.acknowledged(number, text, int(body["ocs"]["data"]["id"]))
                        continue
            except (TimeoutError, aiohttp.ClientError, ValueError):
                pass
            load.unacked.add(text)


async def chat_history(server: RunningTalkd, token: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    """Every message of the conversation, oldest first (paging backwards from the newest)."""
    url = f"{server.base_url}/ocs/v2.php/apps/spreed/api/v1/chat/{token}"
    found: list[dict[str, Any]] = []
    query = {"format": "json", "lookIntoFuture": "0", "limit": "200"}
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url, headers={**OCS, **auth}, params=query) as response:
                if response.status == 304:
                    break
                assert response.status == 200, await response.text()
                page = (await response.json())["ocs"]["data"]
            if not page:
                break
            found += page
            query["lastKnownMessageId"] = str(min(int(m["id"]) for m in page))
    return sorted(found, key=lambda m: int(m["id"]))


async def wait_for_acks(load: Load) -> None:
    await asyncio.wait_for(load.enough.wait(), ROUND_TIMEOUT)


async def test_acknowledged_messages_survive_sigkill_under_load(tmp_path: Path) -> None:
    args = ("--log-level", "warning", "--security-bruteforce-enabled", "false")
    async with running_talkd(tmp_path / "data", extra_args=args) as server:
        auth = {"Authorization": basic(server.admin_user, server.admin_password)}
        async with aiohttp.ClientSession() as session, session.post(
                f"{server.base_url}/ocs/v2.php/apps/spreed/api/v4/room?format=json", headers={**OCS, **auth},
                data={"roomType": 2, "roomName": "crash"}) as response:
            assert response.status in (200, 201), await response.text()
            token = (await response.json())["ocs"]["data"]["token"]

        load = Load()
        load.up.set()
        started = time.monotonic()
        senders = [asyncio.create_task(sender(n, server, token, auth, load)) for n in range(SENDERS)]
        try:
            for _ in range(KILLS):
                await wait_for_acks(load)
                load.up.clear()  # senders whose request fails wait for the restart
                assert await asyncio.to_thread(server.kill) == -9
                load.since_start = 0
                load.enough.clear()
                restart = time.monotonic()
                await asyncio.to_thread(server.start)
                print(f"restarted in {time.monotonic() - restart:.1f}s")
                load.up.set()
            await wait_for_acks(load)
        finally:
            load.stop = True
            load.up.set()
            await asyncio.gather(*senders)

        print(f"{sum(map(len, load.acked.values()))} acknowledged, {len(load.unacked)} failed,"
              f" {time.monotonic() - started:.1f}s of load")
        messages = [m for m in await chat_history(server, token, auth) if m["messageType"] == "comment"]

    texts = collections.Counter(m["message"] for m in messages)
    duplicated = sorted(text for text, count in texts.items() if count > 1)
    assert not duplicated, f"stored more than once: {duplicated}"
    ids_by_text = {m["message"]: int(m["id"]) for m in messages}
    acked = [entry for entries in load.acked.values() for entry in entries]
    assert len(acked) >= ACKS_PER_ROUND * (KILLS + 1)
    lost = [text for text, _ in acked if text not in ids_by_text]
    assert not lost, f"acknowledged but missing after the restarts: {lost}"
    assert all(ids_by_text[text] == message_id for text, message_id in acked), "a message changed its id"
    for number, entries in load.acked.items():
        ids = [message_id for _, message_id in entries]
        assert ids == sorted(ids), f"sender {number}: answered in an order the chat does not have"
    # Nothing appeared that nobody sent.
    assert set(texts) <= {text for text, _ in acked} | load.unacked
