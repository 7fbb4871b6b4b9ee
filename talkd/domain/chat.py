"""Chat: sending, history, waiting for new messages, deleting, read markers, reactions and mention
suggestions.

Waiting costs no query while it waits: a waiter subscribes to the room's topic, reads once, and then
sleeps until a "message" event names an id past what it has; only then does it read again. Ids are
assigned in commit order per room (storage/messages.py), so "everything after my last id" never skips
a message that committed late."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.bus.base import EventBus
from talkd.config import LimitsSettings
from talkd.domain import events
from talkd.domain.accounts import AccountService
from talkd.domain.auth import Identity
from talkd.domain.chat_tail import ChatTail, TailEntry
from talkd.domain.chat_writer import ChatWriter, PendingSend, Written
from talkd.domain.conversation import ActorType, Attendee, ChatMessage, Participant, Room, RoomType, Verb
from talkd.domain.emoji import is_single_emoji
from talkd.domain.mentions import find_mentions, render_mentions
from talkd.domain.model import User
from talkd.domain.permissions import Action, require, require_chat
from talkd.domain.room_core import Changes, RoomCore, actor_ref
from talkd.domain.room_watch import RoomWatches, Watch
from talkd.errors import InvalidInput, NotAllowedHere, NotFound, TooLarge
from talkd.storage.reactions import Reaction, ReactionStore

HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 200
WAIT_DEFAULT_TIMEOUT = 30
WAIT_MAX_TIMEOUT = 60
MAX_REFERENCE_ID = 64
MAX_REACTION_LENGTH = 64


@dataclass(frozen=True)
class ChatPage:
    """Messages for one reader plus what their serialization needs."""

    room: Room
    messages: list[ChatMessage]
    parents: dict[int, ChatMessage] = field(default_factory=dict)
    reactions: dict[int, list[Reaction]] = field(default_factory=dict)
    reader: tuple[str, str] | None = None  # (actor type, actor id) for `reactionsSelf`

    @property
    def last_given(self) -> int | None:
        return self.messages[-1].id if self.messages else None


@dataclass(frozen=True)
class Suggestion:
    id: str
    label: str
    source: str  # users, guests, calls


class ChatService:
    def __init__(self, core: RoomCore, accounts: AccountService, limits: LimitsSettings) -> None:
        self.core = core
        self.accounts = accounts
        self.limits = limits
        self.reactions = ReactionStore()
        self.tail = ChatTail()
        self.writer = ChatWriter(core, on_written=self._written)
        self.watches = RoomWatches(core.bus)

    async def follow_deletions(self, bus: EventBus) -> None:
        """Run for the server's lifetime: a deleted room's tail goes on every node (its watch ends by itself)."""
        async with bus.subscribe(events.ROOMS_TOPIC) as sub:
            async for event in sub:
                kind = event.get("type")
                if kind == "room-deleted":
                    self.tail.forget(str(event.get("token")))
                elif kind == "overflow":
                    self.tail.clear()

    # Sending --------------------------------------------------------------------------------------

    async def send(self, identity: Identity, token: str, text: str, *, actor_display_name: str = "",
                   reference_id: str = "", reply_to: int = 0, silent: bool = False) -> ChatPage:
        if len(text) > self.limits.chat_max_length:
            raise TooLarge("Message too long", reason="message-too-long")
        if not text.strip():
            raise InvalidInput("The message must not be empty", reason="empty-message")
        if len(reference_id) > MAX_REFERENCE_ID:
            raise InvalidInput("Invalid reference id", reason="invalid-reference-id")
        if len(actor_display_name) > self.limits.max_display_name_length:
            raise InvalidInput("The display name is too long", reason="invalid-display-name")
        core = self.core
        if identity.user is not None and not reply_to and not find_mentions(text):
            # The common case, a plain message from a user: checked against the room's watch, which
            # holds exact access rows while it runs (see room_watch.py), so no read in most sends.
            if self.watches.peek(token) is None:
                async with core.db.read() as conn:
                    await self._chat_access(conn, token, identity, write=True)  # before watching
            async with self.watches.watching(token) as watch:
                room, participant = await self._watched_access(watch, token, identity, write=True)
                return await self._submit(room, participant.attendee, text, actor_display_name=actor_display_name,
                                          reference_id=reference_id, silent=silent)
        accounts = await self._mentioned_accounts(text)
        mentioned: list[tuple[int, bool]] = []
        parent = None
        async with core.db.read() as conn:
            room, participant = await self._chat_access(conn, token, identity, write=True)
            author = participant.attendee
            resolved = await self._resolve_mentions(conn, room, text, accounts)
            if reply_to:
                parent = await core.messages.get(conn, room.id, reply_to)
                if parent is None or parent.verb != Verb.COMMENT:
                    raise InvalidInput("The message to reply to cannot be replied to", reason="invalid-reply")
            if resolved:
                direct = {a.id for _, a in resolved.values() if a is not None and a.id != author.id}
                everyone = "all" in resolved
                for attendee in await core.attendees.of_room(conn, room.id):
                    if attendee.id != author.id and (attendee.id in direct or everyone):
                        mentioned.append((attendee.id, attendee.id in direct))
        return await self._submit(room, author, text, actor_display_name=actor_display_name,
                                  reference_id=reference_id, silent=silent, resolved=resolved,
                                  mentioned=mentioned, parent=parent)

    async def _submit(self, room: Room, author: Attendee, text: str, *, actor_display_name: str, reference_id: str,
                      silent: bool, resolved: dict[str, tuple[dict[str, str], Attendee | None]] | None = None,
                      mentioned: list[tuple[int, bool]] | None = None, parent: ChatMessage | None = None
                      ) -> ChatPage:
        """Hand a checked message to the group-commit writer and wait until it is stored."""
        rendered, rich = render_mentions(text, {t: obj for t, (obj, _) in (resolved or {}).items()})
        parameters: dict[str, object] = {}
        if rich:
            parameters["rendered"] = rendered
            parameters["rich"] = rich
        if silent:
            parameters["silent"] = True
        rename = author.is_guest and bool(actor_display_name) and actor_display_name != author.display_name
        if rename:
            author = dataclasses.replace(author, display_name=actor_display_name)
        message = await self.writer.submit(PendingSend(
            room=room, author=author, text=text, parameters=parameters, reference_id=reference_id,
            parent_id=parent.id if parent else 0, rename_guest=rename, mentioned=mentioned or [], parent=parent))
        self.core.advance_read_marker(author, message.id)
        return ChatPage(room, [message], {parent.id: parent} if parent else {})

    def _written(self, written: list[Written]) -> None:
        """Fresh messages go straight into the tail when it ends exactly where they begin, so waiters
        woken by them read nothing (the writer read each predecessor under the room's order lock)."""
        for item in written:
            self.tail.push((item.token, item.message.room_id), item.previous, TailEntry(item.message, [], item.parent))

    async def _mentioned_accounts(self, text: str) -> dict[str, User]:
        """Accounts named by mentions (read before the write transaction: they are not room data)."""
        found: dict[str, User] = {}
        for token in find_mentions(text):
            if token.target != "all" and not token.target.startswith("guest/") and token.target not in found:
                account = await self.accounts.find_user(token.target)
                if account is not None:
                    found[token.target] = account
        return found

    async def _resolve_mentions(self, conn: AsyncConnection, room: Room, text: str, accounts: dict[str, User]
                                ) -> dict[str, tuple[dict[str, str], Attendee | None]]:
        """Each mentioned target that names someone real, with its rich object and attendee."""
        tokens = find_mentions(text)
        if not tokens:
            return {}
        attendees = await self.core.attendees.of_room(conn, room.id)
        by_user = {a.actor_id: a for a in attendees if a.actor_type == ActorType.USERS}
        by_guest = {f"guest/{a.actor_id}": a for a in attendees if a.is_guest}
        resolved: dict[str, tuple[dict[str, str], Attendee | None]] = {}
        for token in tokens:
            target = token.target
            if target in resolved:
                continue
            if target == "all":
                call_type = {RoomType.ONE_TO_ONE: "one2one", RoomType.PUBLIC: "public"}.get(room.type, "group")
                resolved[target] = ({"type": "call", "id": room.token, "name": room.name or room.token,
                                     "call-type": call_type}, None)
            elif target in by_guest:
                guest = by_guest[target]
                resolved[target] = ({"type": "guest", "id": target, "name": guest.display_name or "Guest"}, guest)
            elif target in by_user:
                user = by_user[target]
                resolved[target] = ({"type": "user", "id": target, "name": user.display_name or target}, user)
            elif target in accounts:
                account = accounts[target]
                resolved[target] = ({"type": "user", "id": account.id, "name": account.display_name}, None)
        return resolved

    # Reading and waiting --------------------------------------------------------------------------

    async def receive(self, identity: Identity, token: str, *, look_into_future: bool, limit: int, timeout: int,
                      last_known: int, include_last_known: bool = False, set_read_marker: bool = True) -> ChatPage:
        core = self.core
        limit = min(max(limit, 1), HISTORY_MAX_LIMIT)
        timeout = min(max(timeout, 0), WAIT_MAX_TIMEOUT)
        if not look_into_future:
            async with core.db.read() as conn:
                room, participant = await self._chat_access(conn, token, identity, write=False)
                core.touch(participant)
                before = last_known + 1 if include_last_known and last_known else (last_known or None)
                found = await core.messages.history(conn, room.id, before=before, limit=limit)
                return await self._page(conn, room, found, participant)
        if self.watches.peek(token) is None:
            # Check before watching, so that unknown rooms and outsiders never start a watch.
            async with core.db.read() as conn:
                await self._chat_access(conn, token, identity, write=False)
        after = last_known - 1 if include_last_known and last_known > 0 else last_known
        async with self.watches.watching(token) as watch:
            room, participant = await self._watched_access(watch, token, identity)
            core.touch(participant)

            async def load(since: int, count: int) -> list[TailEntry]:
                async with core.db.read() as conn:
                    fresh = await core.messages.after(conn, room.id, after=since, limit=count)
                    return await self._entries(conn, fresh)

            deadline = core.clock.monotonic() + timeout
            entries: list[TailEntry] = []
            while True:
                if watch.high_water > after:
                    entries = await self.tail.after((room.token, room.id), after, limit, until=watch.high_water,
                                                    load=load)
                    if entries:
                        break
                remaining = deadline - core.clock.monotonic()
                if remaining <= 0 or watch.released:
                    break
                await watch.wait(remaining)
                if not watch.known:
                    # The watch lost events (overflow) or restarted: learn the newest id from storage.
                    room, participant = await self._watched_access(watch, token, identity)
        if entries and set_read_marker:
            core.advance_read_marker(participant.attendee, entries[-1].id)
        attendee = participant.attendee
        return ChatPage(room, [e.message for e in entries], {e.parent.id: e.parent for e in entries if e.parent},
                        {e.id: e.reactions for e in entries if e.reactions},
                        (attendee.actor_type.value, attendee.actor_id))

    async def _chat_access(self, conn: AsyncConnection, token: str, identity: Identity, *, write: bool
                           ) -> tuple[Room, Participant]:
        room, participant = await self.core.access(conn, token, identity,
                                                   Action.POST_CHAT if write else Action.READ_CHAT,
                                                   with_session=identity.user is None)
        require_chat(room, participant, write=write)
        assert participant is not None
        return room, participant

    async def _watched_access(self, watch: Watch, token: str, identity: Identity, *, write: bool = False
                              ) -> tuple[Room, Participant]:
        """The caller's access, from the watch's cache for users when it has them, else from storage
        (which also tells the watch the newest message id, read after its subscription started)."""
        user = identity.user
        cached = watch.access.get(user.id) if user is not None and watch.known else None
        if cached is not None:
            room, attendee = cached
            participant = Participant(room, self.core.fresh(attendee))
            require_chat(room, participant, write=write)
            return room, participant
        read_at = watch.generation
        async with self.core.db.read() as conn:
            room, participant = await self._chat_access(conn, token, identity, write=write)
        watch.learn(read_at, room, user.id if user is not None else None, participant.attendee)
        return room, participant

    async def _entries(self, conn: AsyncConnection, found: list[ChatMessage]) -> list[TailEntry]:
        """Messages with their reactions and parents, read in two queries for the whole batch."""
        if not found:
            return []
        parent_ids = sorted({m.parent_id for m in found if m.parent_id})
        parents = await self.core.messages.get_many(conn, parent_ids) if parent_ids else {}
        rows = await self.reactions.of_messages(conn, [m.id for m in found if m.verb == Verb.COMMENT])
        grouped: dict[int, list[Reaction]] = {}
        for row in rows:
            grouped.setdefault(row.message_id, []).append(row)
        return [TailEntry(m, grouped.get(m.id, []), parents.get(m.parent_id)) for m in found]

    async def _page(self, conn: AsyncConnection, room: Room, found: list[ChatMessage], participant: Participant
                    ) -> ChatPage:
        entries = await self._entries(conn, found)
        attendee = participant.attendee
        return ChatPage(room, found, {e.parent.id: e.parent for e in entries if e.parent},
                        {e.id: e.reactions for e in entries if e.reactions},
                        (attendee.actor_type.value, attendee.actor_id))

    # Read marker ----------------------------------------------------------------------------------

    async def mark_read(self, identity: Identity, token: str, last_read: int | None) -> Room:
        core, changes = self.core, Changes()
        async with core.between_flushes("chat_mark_read") as conn:
            room, participant = await core.access(conn, token, identity, Action.SET_READ_MARKER)
            assert participant is not None
            target = room.last_message_id if last_read is None else min(max(last_read, 0), room.last_message_id)
            core.forget_read_marker(participant.attendee.id)
            await core.attendees.update(conn, participant.attendee.id, last_read_message=target)
            if participant.attendee.actor_type == ActorType.USERS:
                changes.user(participant.attendee.actor_id)
        await core.announce(changes)
        return room

    async def mark_unread(self, identity: Identity, token: str) -> Room:
        """Mark the newest message unread again: the read marker moves to the comment before it."""
        core, changes = self.core, Changes()
        async with core.between_flushes("chat_mark_unread") as conn:
            room, participant = await core.access(conn, token, identity, Action.SET_READ_MARKER)
            assert participant is not None
            previous = await core.messages.history(conn, room.id, before=room.last_message_id or None, limit=1)
            core.forget_read_marker(participant.attendee.id)
            await core.attendees.update(conn, participant.attendee.id,
                                        last_read_message=previous[0].id if previous else 0)
            if participant.attendee.actor_type == ActorType.USERS:
                changes.user(participant.attendee.actor_id)
        await core.announce(changes)
        return room

    # Deleting -------------------------------------------------------------------------------------

    async def delete(self, identity: Identity, token: str, message_id: int) -> ChatPage:
        """Authors delete their own comments, moderators any; the comment keeps its place as
        `comment_deleted` and a `message_deleted` system message announces it."""
        core, changes = self.core, Changes()
        async with core.db.transaction("chat_delete") as conn:
            room, participant = await core.access(conn, token, identity, Action.READ_CHAT)
            require_chat(room, participant, write=True)
            assert participant is not None
            message = await core.messages.get(conn, room.id, message_id)
            if message is None:
                raise NotFound("Message not found", reason="message-not-found")
            if message.verb != Verb.COMMENT:
                raise NotAllowedHere("Only chat messages can be deleted", reason="not-a-comment")
            me = participant.attendee
            own = message.actor_type == me.actor_type.value and message.actor_id == me.actor_id
            if not own:
                require(Action.DELETE_ANY_MESSAGE, room, participant)
            await core.messages.update(conn, message.id, verb=Verb.COMMENT_DELETED, message="",
                                       parameters={"deletedBy": actor_ref(me)})
            notice = await core.system_message(conn, room, me, "message_deleted", changes, message=message.id)
            await core.messages.update(conn, notice.id, parent_id=message.id)
            deleted = await core.messages.get(conn, room.id, message.id)
            notice = await core.messages.get(conn, room.id, notice.id) or notice
            changes.users.update(await core.user_ids(conn, room))
        await core.announce(changes)
        assert deleted is not None
        return ChatPage(room, [notice], {deleted.id: deleted})

    # Reactions ------------------------------------------------------------------------------------

    async def react(self, identity: Identity, token: str, message_id: int, reaction: str, *, add: bool
                    ) -> tuple[bool, list[Reaction]]:
        """Add or remove one reaction; returns whether anything changed and the message's reactions."""
        # Adding takes exactly one emoji, as Nextcloud's comments do; removing one that cannot exist is
        # "not found" below.
        if add and not is_single_emoji(reaction):
            raise InvalidInput("A reaction is a single emoji", reason="invalid-reaction")
        if not reaction or len(reaction) > MAX_REACTION_LENGTH:
            raise InvalidInput("Invalid reaction", reason="invalid-reaction")
        core, changes = self.core, Changes()
        async with core.db.transaction("chat_react") as conn:
            room, participant = await core.access(conn, token, identity, Action.READ_CHAT)
            require_chat(room, participant, write=True)
            assert participant is not None
            message = await core.messages.get(conn, room.id, message_id)
            if message is None or message.verb != Verb.COMMENT:
                raise NotFound("Message not found", reason="message-not-found")
            me = participant.attendee
            if add:
                changed = await self.reactions.add(conn, message_id=message.id, actor_type=me.actor_type.value,
                                                   actor_id=me.actor_id, actor_display_name=me.display_name,
                                                   reaction=reaction, now=core.now())
            else:
                changed = await self.reactions.remove(conn, message_id=message.id, actor_type=me.actor_type.value,
                                                      actor_id=me.actor_id, reaction=reaction)
                if not changed:
                    raise NotFound("Reaction not found", reason="reaction-not-found")
            if changed:
                # As Talk does: a system message (hidden by clients) whose parent carries the new
                # reactions, so waiting clients learn of the change like of any message.
                notice = await core.system_message(conn, room, me, "reaction" if add else "reaction_revoked",
                                                   changes, reaction=reaction)
                await core.messages.update(conn, notice.id, parent_id=message.id)
            rows = await self.reactions.of_messages(conn, [message.id])
            changes.room(room)
        await core.announce(changes)
        return changed, rows

    async def reactions_of(self, identity: Identity, token: str, message_id: int) -> list[Reaction]:
        async with self.core.db.read() as conn:
            room, participant = await self.core.access(conn, token, identity, Action.READ_CHAT)
            require_chat(room, participant, write=False)
            message = await self.core.messages.get(conn, room.id, message_id)
            if message is None:
                raise NotFound("Message not found", reason="message-not-found")
            return await self.reactions.of_messages(conn, [message.id])

    # Mentions -------------------------------------------------------------------------------------

    async def suggestions(self, identity: Identity, token: str, search: str, limit: int) -> list[Suggestion]:
        """Participants whose id or name contains `search`, and `all` for moderators."""
        async with self.core.db.read() as conn:
            room, participant = await self.core.access(conn, token, identity, Action.READ_CHAT)
            require_chat(room, participant, write=False)
            attendees = await self.core.attendees.of_room(conn, room.id)
        assert participant is not None
        needle = search.lower()
        found: list[Suggestion] = []
        if participant.is_moderator and room.type != RoomType.ONE_TO_ONE and (
                not needle or needle in "all" or needle in room.name.lower()):
            found.append(Suggestion("all", room.name or room.token, "calls"))
        for attendee in attendees:
            if attendee.id == participant.attendee.id or attendee.actor_type == ActorType.GROUPS:
                continue
            if needle and needle not in attendee.actor_id.lower() and needle not in attendee.display_name.lower():
                continue
            if attendee.actor_type == ActorType.USERS:
                found.append(Suggestion(attendee.actor_id, attendee.display_name or attendee.actor_id, "users"))
            elif attendee.actor_type == ActorType.GUESTS:
                found.append(Suggestion(f"guest/{attendee.actor_id}", attendee.display_name or "Guest", "guests"))
        return found[: max(limit, 0)]

