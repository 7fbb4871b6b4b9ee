"""Mentions: the parser and renderer (talkd/domain/mentions.py), then what they do through the API:
rich parameters, `unreadMention`/`unreadMentionDirect` per participant, and `/chat/{token}/mentions`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from talkd.domain.mentions import find_mentions, render_mentions
from tests.chat.helpers import V1, V4, all_messages, group_room, guest_client, join_as_guest, room_of, send
from tests.helpers.client import TalkClient


def _user(uid: str, name: str = "") -> dict[str, str]:
    return {"type": "user", "id": uid, "name": name or uid}


# Parsing ------------------------------------------------------------------------------------------


def test_finds_bare_quoted_guest_and_all_mentions() -> None:
    text = 'hi @alice, @"bob smith" and @"guest/abc123" and @all'
    assert [(t.text, t.target) for t in find_mentions(text)] == [
        ("@alice", "alice"), ('@"bob smith"', "bob smith"), ('@"guest/abc123"', "guest/abc123"), ("@all", "all")]
    for token in find_mentions(text):
        assert text[token.start:token.end] == token.text


def test_mentions_start_the_text_or_follow_whitespace() -> None:
    assert [t.target for t in find_mentions("@alice first")] == ["alice"]
    assert [t.target for t in find_mentions("line\n@alice")] == ["alice"]
    assert find_mentions("mail me at me@alice.com") == []
    assert find_mentions("x@alice") == []
    assert find_mentions("just an @ sign") == []
    assert find_mentions('@"" empty quotes') == []


def test_trailing_dot_or_quote_ends_a_bare_mention() -> None:
    (token,) = find_mentions("thanks @alice.")
    assert (token.text, token.target) == ("@alice", "alice")
    (token,) = find_mentions("see @first.last's note")
    assert token.target == "first.last's"  # an apostrophe inside an id is part of it
    assert [t.target for t in find_mentions("@a.b.c")] == ["a.b.c"]


def test_ids_with_allowed_characters() -> None:
    assert [t.target for t in find_mentions("@user_name-1@example.org")] == ["user_name-1@example.org"]


# Rendering ----------------------------------------------------------------------------------------


def test_render_replaces_known_mentions_with_placeholders() -> None:
    text, params = render_mentions("hi @alice and @bob, bye @alice", {"alice": _user("alice", "Alice"),
                                                                      "bob": _user("bob")})
    assert text == "hi {mention-user1} and {mention-user2}, bye {mention-user1}"
    assert params == {
        "mention-user1": {"type": "user", "id": "alice", "name": "Alice", "mention-id": "alice"},
        "mention-user2": {"type": "user", "id": "bob", "name": "bob", "mention-id": "bob"},
    }


def test_render_numbers_each_kind_separately() -> None:
    resolved = {"all": {"type": "call", "id": "tok", "name": "Room"},
                "guest/g1": {"type": "guest", "id": "guest/g1", "name": "Gus"},
                "alice": _user("alice")}
    text, params = render_mentions('@all @"guest/g1" @alice', resolved)
    assert text == "{mention-call1} {mention-guest1} {mention-user1}"
    assert params["mention-call1"]["type"] == "call" and params["mention-guest1"]["id"] == "guest/g1"


def test_render_keeps_unknown_mentions_as_written() -> None:
    assert render_mentions("hi @nobody and @alice", {"alice": _user("alice")}) == (
        "hi @nobody and {mention-user1}", {"mention-user1": {**_user("alice"), "mention-id": "alice"}})
    assert render_mentions("hi @nobody", {}) == ("hi @nobody", {})


def test_quoted_and_bare_forms_of_one_id_share_a_placeholder() -> None:
    text, params = render_mentions('@alice @"alice"', {"alice": _user("alice")})
    assert text == "{mention-user1} {mention-user1}" and list(params) == ["mention-user1"]


# Properties ---------------------------------------------------------------------------------------

IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
# Plain text: anything without '@' (so it holds no mention of its own); may be empty.
PLAIN = st.text(st.characters(blacklist_characters="@", blacklist_categories=("Cs",)), max_size=20)


@st.composite
def messages_with_mentions(draw: st.DrawFn) -> tuple[list[str], list[str | None], list[bool]]:
    """Plain segments, and between them a mentioned id (or None for no mention) written bare or quoted."""
    count = draw(st.integers(0, 6))
    plains = [draw(PLAIN) for _ in range(count + 1)]
    targets = [draw(st.one_of(st.none(), IDS)) for _ in range(count)]
    quoted = [draw(st.booleans()) for _ in range(count)]
    return plains, targets, quoted


def _assemble(plains: list[str], targets: list[str | None], quoted: list[bool], placeholder: dict[str, str] | None
              ) -> str:
    out = [plains[0]]
    for plain, target, q in zip(plains[1:], targets, quoted, strict=True):
        if target is not None:
            written = f'@"{target}"' if q else f"@{target}"
            out.append(" " + (placeholder[target] if placeholder is not None else written) + " ")
        out.append(plain)
    return "".join(out)


@given(messages_with_mentions())
def test_rendering_keeps_all_text_that_is_not_a_mention(case: tuple[list[str], list[str | None], list[bool]]
                                                        ) -> None:
    plains, targets, quoted = case
    message = _assemble(plains, targets, quoted, None)
    ids = [t for t in targets if t is not None]
    order = list(dict.fromkeys(ids))
    placeholders = {target: f"{{mention-user{n}}}" for n, target in enumerate(order, start=1)}
    rendered, params = render_mentions(message, {t: _user(t) for t in ids})
    assert rendered == _assemble(plains, targets, quoted, placeholders)
    assert {p["mention-id"] for p in params.values()} == set(ids)
    assert set(params) == {p[1:-1] for p in placeholders.values()}


@given(st.text(max_size=80))
def test_nothing_resolved_changes_nothing(message: str) -> None:
    assert render_mentions(message, {}) == (message, {})


@given(st.text(alphabet=st.sampled_from(list('ab @"./\n -_')), max_size=60))
def test_found_mentions_are_ordered_disjoint_spans_of_the_text(message: str) -> None:
    tokens = find_mentions(message)
    position = 0
    for token in tokens:
        assert token.start >= position and message[token.start:token.end] == token.text
        assert token.text.startswith("@") and token.target and token.target in token.text
        assert token.start == 0 or message[token.start - 1].isspace()
        position = token.end


@given(st.text(alphabet=st.sampled_from(list('ab @"./\n -_')), max_size=60))
def test_rendering_everything_found_removes_every_mention(message: str) -> None:
    targets = {t.target for t in find_mentions(message)}
    rendered, params = render_mentions(message, {t: _user(t) for t in targets})
    assert find_mentions(rendered) == []
    assert {p["mention-id"] for p in params.values()} == targets


# Through the API ----------------------------------------------------------------------------------


async def _flags(talk: TalkClient, token: str, user: str) -> tuple[bool, bool]:
    room = await room_of(talk, token, user)
    return room["unreadMention"], room["unreadMentionDirect"]


async def test_user_mention_is_a_rich_parameter_and_a_direct_mention(talk: TalkClient) -> None:
    for name in ("alice", "bob", "carol"):
        await talk.make_user(name, display_name=name.capitalize())
    token = await group_room(talk, "alice", "bob", "carol")
    sent = await send(talk, token, "alice", "hey @bob, look")
    assert sent["message"] == "hey {mention-user1}, look"
    assert sent["messageParameters"] == {
        "mention-user1": {"type": "user", "id": "bob", "name": "Bob", "mention-id": "bob"}}
    assert await _flags(talk, token, "bob") == (True, True)
    assert await _flags(talk, token, "carol") == (False, False)
    assert await _flags(talk, token, "alice") == (False, False)
    listed = (await talk.ocs("GET", f"{V4}/room", user="bob")).expect(200).data
    assert next(r for r in listed if r["token"] == token)["unreadMention"] is True
    (await talk.ocs("POST", f"{V1}/chat/{token}/read", user="bob", json={})).expect(200)
    assert await _flags(talk, token, "bob") == (False, False)


async def test_all_mentions_everyone_but_not_directly(talk: TalkClient) -> None:
    for name in ("alice", "bob", "carol"):
        await talk.make_user(name)
    token = await group_room(talk, "alice", "bob", "carol", name="Crew")
    sent = await send(talk, token, "alice", "@all meeting now")
    assert sent["message"] == "{mention-call1} meeting now"
    call = sent["messageParameters"]["mention-call1"]
    assert call["type"] == "call" and call["id"] == token and call["name"] == "Crew"
    assert await _flags(talk, token, "bob") == (True, False)
    assert await _flags(talk, token, "carol") == (True, False)
    assert await _flags(talk, token, "alice") == (False, False)
    # A direct mention later also sets the direct flag, for that person only.
    await send(talk, token, "alice", "and @carol especially")
    assert await _flags(talk, token, "carol") == (True, True)
    assert await _flags(talk, token, "bob") == (True, False)


async def test_unknown_and_self_mentions(talk: TalkClient) -> None:
    await talk.make_user("alice")
    await talk.make_user("dave", display_name="Dave")  # an account, not in the room
    token = await group_room(talk, "alice")
    sent = await send(talk, token, "alice", "@nobody @alice @dave")
    assert sent["message"] == "@nobody {mention-user1} {mention-user2}"
    assert [p["id"] for p in sent["messageParameters"].values()] == ["alice", "dave"]
    assert await _flags(talk, token, "alice") == (False, False)
    # Mentioning someone does not make them a participant.
    (await talk.ocs("GET", f"{V4}/room/{token}", user="dave")).expect(404)


async def test_guest_mention_flags_the_guest(talk: TalkClient) -> None:
    await talk.make_user("alice", display_name="Alice")
    token = await group_room(talk, "alice", public=True, name="Open")
    async with guest_client(talk) as guest:
        await join_as_guest(guest, token)
        hello = (await guest.ocs("POST", f"{V1}/chat/{token}",
                                 json={"message": "hello", "actorDisplayName": "Gus"})).expect(201).data
        guest_id = hello["actorId"]
        sent = await send(talk, token, "alice", f'welcome @"guest/{guest_id}"')
        assert sent["message"] == "welcome {mention-guest1}"
        assert sent["messageParameters"]["mention-guest1"] == {
            "type": "guest", "id": f"guest/{guest_id}", "name": "Gus", "mention-id": f"guest/{guest_id}"}
        mine = (await guest.ocs("GET", f"{V4}/room/{token}")).expect(200).data
        assert mine["unreadMention"] is True and mine["unreadMentionDirect"] is True
        # Guests mention users too.
        back = (await guest.ocs("POST", f"{V1}/chat/{token}", json={"message": "thanks @alice"})).expect(201).data
        assert back["messageParameters"]["mention-user1"]["id"] == "alice"
    assert await _flags(talk, token, "alice") == (True, True)


async def test_mention_history_survives_in_stored_messages(talk: TalkClient) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob", display_name="Bob")
    token = await group_room(talk, "alice", "bob")
    sent = await send(talk, token, "alice", "ping @bob")
    stored = (await all_messages(talk, token, "bob"))[-1]
    assert stored["message"] == sent["message"] and stored["messageParameters"] == sent["messageParameters"]


# Autocomplete -------------------------------------------------------------------------------------


async def _suggest(talk: TalkClient, token: str, user: str, search: str, **params: object) -> list[dict[str, str]]:
    reply = await talk.ocs("GET", f"{V1}/chat/{token}/mentions", user=user, params={"search": search, **params})
    data: list[dict[str, str]] = reply.expect(200).data
    return data


async def test_mentions_endpoint_suggests_participants_and_all_for_moderators(talk: TalkClient) -> None:
    await talk.make_user("alice", display_name="Alice")
    await talk.make_user("bob", display_name="Bob Builder")
    await talk.make_user("carol", display_name="Carol")
    await talk.make_user("dave")  # not in the room
    token = await group_room(talk, "alice", "bob", "carol", name="Crew")
    everyone = await _suggest(talk, token, "alice", "")
    assert {s["id"] for s in everyone} == {"all", "bob", "carol"}
    all_entry = next(s for s in everyone if s["id"] == "all")
    assert all_entry["source"] == "calls" and all_entry["label"] == "Crew"
    bob = next(s for s in everyone if s["id"] == "bob")
    assert bob == {"id": "bob", "label": "Bob Builder", "source": "users", "mentionId": "bob"}
    # Not a moderator: no `all`; never oneself.
    assert {s["id"] for s in await _suggest(talk, token, "bob", "")} == {"alice", "carol"}
    # Search by id or display name, case-insensitively.
    assert [s["id"] for s in await _suggest(talk, token, "alice", "CAR")] == ["carol"]
    assert [s["id"] for s in await _suggest(talk, token, "alice", "builder")] == ["bob"]
    assert await _suggest(talk, token, "alice", "dave") == []
    assert len(await _suggest(talk, token, "alice", "", limit=1)) == 1
    (await talk.ocs("GET", f"{V1}/chat/{token}/mentions", user="dave", params={"search": "a"})).expect(404)


async def test_mentions_endpoint_lists_guests_and_no_all_in_one_to_one(talk: TalkClient) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    token = await group_room(talk, "alice", public=True, name="Open")
    async with guest_client(talk) as guest:
        await join_as_guest(guest, token)
        hello = (await guest.ocs("POST", f"{V1}/chat/{token}",
                                 json={"message": "hi", "actorDisplayName": "Gus"})).expect(201).data
        found = await _suggest(talk, token, "alice", "gus")
        assert found == [{"id": f"guest/{hello['actorId']}", "label": "Gus", "source": "guests",
                          "mentionId": f"guest/{hello['actorId']}"}]
        # Guests may ask too.
        seen = (await guest.ocs("GET", f"{V1}/chat/{token}/mentions", params={"search": "al"})).expect(200).data
        assert [s["id"] for s in seen] == ["alice"]
    one = (await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 1, "invite": "bob"})).expect(201)
    assert [s["id"] for s in await _suggest(talk, one.data["token"], "alice", "")] == ["bob"]
