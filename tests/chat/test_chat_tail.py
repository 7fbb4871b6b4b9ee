"""The chat tail on its own: a tail belongs to one room, named by token and id together."""

from __future__ import annotations

from talkd.domain.chat_tail import ChatTail, TailEntry
from talkd.domain.conversation import ChatMessage, Verb


def _entry(room_id: int, message_id: int, text: str) -> TailEntry:
    message = ChatMessage(id=message_id, room_id=room_id, actor_type="users", actor_id="alice",
                          actor_display_name="Alice", verb=Verb.COMMENT, message=text, parameters={},
                          reference_id="", parent_id=0, created_at=1)
    return TailEntry(message, [], None)


async def test_a_room_with_a_reused_id_is_not_served_the_old_rooms_tail() -> None:
    tail = ChatTail()
    old = [_entry(7, 10, "old 10"), _entry(7, 11, "old 11")]

    async def load_old(after: int, limit: int) -> list[TailEntry]:
        return [e for e in old if e.id > after][:limit]

    assert [e.message.message for e in await tail.after(("oldtoken", 7), 9, 10, until=11, load=load_old)] == [
        "old 10", "old 11"]
    new = [_entry(7, 10, "new 10")]  # the same room id and message id given out again

    async def load_new(after: int, limit: int) -> list[TailEntry]:
        return [e for e in new if e.id > after][:limit]

    got = await tail.after(("newtoken", 7), 9, 10, until=10, load=load_new)
    assert [e.message.message for e in got] == ["new 10"]
    tail.forget("oldtoken")
    assert list(tail._rooms) == [("newtoken", 7)]
