"""Talk's chat API (/apps/spreed/api/v1/chat/{token}...) and reactions (/api/v1/reaction/...)."""

from __future__ import annotations

from typing import Any

from talkd.api.ocs.chat_serializers import page_data, reactions_data
from talkd.api.ocs.routing import Access, OcsRequest, OcsRouter
from talkd.domain.chat import HISTORY_DEFAULT_LIMIT, WAIT_DEFAULT_TIMEOUT, ChatService
from talkd.protocol.ocs import OcsResult

router = OcsRouter()

CHAT = "/apps/spreed/api/v1/chat/{token}"
REACTION = "/apps/spreed/api/v1/reaction/{token}/{messageId:[0-9]{1,18}}"


def chat(req: OcsRequest) -> ChatService:
    return req.services.chat


@router.get(CHAT, access=Access.PUBLIC)
async def receive(req: OcsRequest) -> OcsResult:
    p = req.params
    page = await chat(req).receive(
        req.identity, req.match("token"),
        look_into_future=p.integer("lookIntoFuture", 0, minimum=0, maximum=1) == 1,
        limit=p.integer("limit", HISTORY_DEFAULT_LIMIT, clamp=True, minimum=1, maximum=200),
        timeout=p.integer("timeout", WAIT_DEFAULT_TIMEOUT, clamp=True, minimum=0, maximum=60),
        last_known=p.integer("lastKnownMessageId", 0, minimum=0),
        include_last_known=p.boolean("includeLastKnown"),
        set_read_marker=p.boolean("setReadMarker", True))
    if page.last_given is None:
        # "Nothing older / newer": an empty 304, as Talk answers.
        return OcsResult(data=[], status=304)
    return OcsResult(data=page_data(page), headers={"X-Chat-Last-Given": str(page.last_given)})


@router.post(CHAT, access=Access.PUBLIC)
async def send(req: OcsRequest) -> OcsResult:
    p = req.params
    page = await chat(req).send(
        # No length check here: the domain answers an over-long message with 413, not 400.
        req.identity, req.match("token"), p.string("message", ""),
        actor_display_name=p.string("actorDisplayName", "", max_length=1000),
        reference_id=p.string("referenceId", "", max_length=1000),
        reply_to=p.integer("replyTo", 0, minimum=0), silent=p.boolean("silent"))
    return OcsResult(data=page_data(page)[0], status=201)


@router.delete(CHAT + "/{messageId:[0-9]{1,18}}", access=Access.PUBLIC)
async def delete_message(req: OcsRequest) -> Any:
    page = await chat(req).delete(req.identity, req.match("token"), req.params.integer("messageId"))
    return page_data(page)[0]


@router.post(CHAT + "/read", access=Access.PUBLIC)
async def mark_read(req: OcsRequest) -> list[Any]:
    last = req.params.integer("lastReadMessage", -1, minimum=-1)
    await chat(req).mark_read(req.identity, req.match("token"), None if last < 0 else last)
    return []


@router.delete(CHAT + "/read", access=Access.PUBLIC)
async def mark_unread(req: OcsRequest) -> list[Any]:
    await chat(req).mark_unread(req.identity, req.match("token"))
    return []


@router.get(CHAT + "/mentions", access=Access.PUBLIC)
async def mentions(req: OcsRequest) -> list[dict[str, str]]:
    search = req.params.string("search", "", max_length=255)
    limit = req.params.integer("limit", 20, clamp=True, minimum=1, maximum=100)
    found = await chat(req).suggestions(req.identity, req.match("token"), search, limit)
    return [{"id": s.id, "label": s.label, "source": s.source, "mentionId": s.id} for s in found]


@router.post(REACTION, access=Access.PUBLIC)
async def react(req: OcsRequest) -> OcsResult:
    reaction = req.params.string("reaction", "", max_length=1000)
    added, rows = await chat(req).react(req.identity, req.match("token"), req.params.integer("messageId"), reaction,
                                        add=True)
    return OcsResult(data=reactions_data(rows), status=201 if added else 200)


@router.delete(REACTION, access=Access.PUBLIC)
async def unreact(req: OcsRequest) -> Any:
    reaction = req.params.string("reaction", "", max_length=1000)
    _, rows = await chat(req).react(req.identity, req.match("token"), req.params.integer("messageId"), reaction,
                                    add=False)
    return reactions_data(rows)


@router.get(REACTION, access=Access.PUBLIC)
async def list_reactions(req: OcsRequest) -> Any:
    wanted = req.params.string("reaction", "", max_length=1000)
    rows = await chat(req).reactions_of(req.identity, req.match("token"), req.params.integer("messageId"))
    return reactions_data([r for r in rows if not wanted or r.reaction == wanted])
