from __future__ import annotations

import asyncio

from tests.helpers.client import TalkClient

V1 = "/apps/spreed/api/v1"
V4 = "/apps/spreed/api/v4"


async def test_send_history_wait(talk: TalkClient) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    created = await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 1, "invite": "bob"})
    token = created.expect(201).data["token"]
    sent = (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice", json={"message": "hi @bob"})).expect(201)
    assert sent.data["message"] == "hi {mention-user1}"
    history = (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob", params={"lookIntoFuture": 0})).expect(200)
    assert next(m["message"] for m in history.data) == "hi {mention-user1}"
    last = int(history.headers["X-Chat-Last-Given"])
    rooms = (await talk.ocs("GET", f"{V4}/room", user="bob")).expect(200)
    assert rooms.data[0]["unreadMention"] is True

    async def later() -> None:
        await asyncio.sleep(0.2)
        await talk.ocs("POST", f"{V1}/chat/{token}", user="alice", json={"message": "second"})

    task = asyncio.create_task(later())
    newest = sent.data["id"]
    waited = (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob",
                             params={"lookIntoFuture": 1, "lastKnownMessageId": newest, "timeout": 5})).expect(200)
    await task
    assert [m["message"] for m in waited.data] == ["second"]
    assert last > 0


async def test_nothing_newer_is_304(talk: TalkClient) -> None:
    await talk.make_user("alice")
    created = await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 2, "roomName": "x"})
    token = created.expect(201).data["token"]
    history = (await talk.ocs("GET", f"{V1}/chat/{token}", user="alice", params={"lookIntoFuture": 0})).expect(200)
    newest = int(history.headers["X-Chat-Last-Given"])
    reply = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                           params={"lookIntoFuture": 1, "lastKnownMessageId": history.data[0]["id"], "timeout": 0})
    assert reply.http_status == 304 and reply.body == b""
    assert newest == history.data[-1]["id"]
