"""Reaction shapes that clients depend on (issue 11): `reactions` is an object, `{}` when empty, on
every message, its `parent` and a room's `lastMessage`, in JSON and XML; a reaction that is not one
emoji is refused with 400 and stores nothing (Nextcloud's single-emoji rule)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
import sqlalchemy as sa

from talkd.storage import tables
from tests.chat.helpers import V1, V4, group_room, history, send
from tests.helpers.client import TalkClient


async def _room_with_reply(talk: TalkClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
    await talk.make_user("alice")
    await talk.make_user("bob")
    token = await group_room(talk, "alice", "bob")
    first = await send(talk, token, "alice", "hello")
    reply = await send(talk, token, "bob", "hi", replyTo=first["id"])
    return token, first, reply


async def test_reactions_are_an_empty_object_on_messages_parents_and_last_message(talk: TalkClient) -> None:
    token, first, reply = await _room_with_reply(talk)
    assert first["reactions"] == {} and reply["reactions"] == {} and reply["parent"]["reactions"] == {}
    messages = (await history(talk, token, "alice", limit=200)).expect(200).data
    assert messages and all(m["reactions"] == {} for m in messages)
    assert all(m["parent"]["reactions"] == {} for m in messages if "parent" in m)
    room = (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(200).data
    assert room["lastMessage"]["reactions"] == {}
    listed = (await talk.ocs("GET", f"{V4}/room", user="alice")).expect(200).data
    assert listed[0]["lastMessage"]["reactions"] == {}
    path = f"{V1}/reaction/{token}/{first['id']}"
    assert (await talk.ocs("GET", path, user="alice")).expect(200).data == {}
    (await talk.ocs("POST", path, user="bob", json={"reaction": "👍"})).expect(201)
    assert (await talk.ocs("DELETE", path, user="bob", params={"reaction": "👍"})).expect(200).data == {}
    again = (await history(talk, token, "alice", limit=200)).expect(200).data
    assert all(m["reactions"] == {} for m in again)  # and after the last one was taken back


async def test_reactions_in_xml_are_an_empty_element(talk: TalkClient) -> None:
    token, first, _ = await _room_with_reply(talk)
    reply = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice", params={"lookIntoFuture": 0}, fmt="xml")
    assert reply.http_status == 200
    root = ET.fromstring(reply.body)
    elements = root.findall("./data/element")
    assert elements and all(e.find("reactions") is not None and len(e.find("reactions")) == 0  # type: ignore[arg-type]
                            for e in elements)
    listed = ET.fromstring((await talk.ocs("GET", f"{V1}/reaction/{token}/{first['id']}", user="alice",
                                           fmt="xml")).body)
    assert listed.find("./meta/statuscode").text == "200"  # type: ignore[union-attr]
    assert len(listed.find("./data")) == 0  # type: ignore[arg-type]


VALID = ["👍", "❤️", "👍🏽", "👨‍👩‍👧", "🇩🇪", "1️⃣", "‼️"]
INVALID = ["a", "ab", "hello", "👍👍", " 👍", "👍 ", "中", "<b>", "🇩🇪🇫🇷", "\x01"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_reaction_must_be_a_single_emoji(talk: TalkClient, fmt: str) -> None:
    token, first, _ = await _room_with_reply(talk)
    path = f"{V1}/reaction/{token}/{first['id']}"
    for reaction in INVALID:
        reply = await talk.ocs("POST", path, user="bob", json={"reaction": reaction}, fmt=fmt)
        assert reply.http_status == 400, reaction
        if fmt == "xml":
            assert ET.fromstring(reply.body).find("./meta/statuscode").text == "400"  # type: ignore[union-attr]
    async with talk.services.db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(tables.reactions))).scalar() == 0
    for reaction in VALID:
        assert (await talk.ocs("POST", path, user="bob", json={"reaction": reaction}, fmt=fmt)).http_status == 201
    counts = (await history(talk, token, "bob", limit=200)).expect(200).data
    assert next(m for m in counts if m["id"] == first["id"])["reactions"] == {r: 1 for r in VALID}
