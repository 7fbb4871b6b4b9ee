"""Mentions in a chat message: `@alice`, `@"user id with spaces"`, `@"guest/<id>"` and `@all`.

A mention is only what names someone real: a user account, a guest attendee of the room, or `all`.
The message text keeps what the author wrote; sending resolves each mention once into a placeholder
(`{mention-user1}`) and its rich object, stored with the message."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Nextcloud's mention syntax: a bare id of id characters, or any id in double quotes. It must start
# the text or follow whitespace, so e-mail addresses are not mentions.
MENTION = re.compile(r"""(?:(?<=\s)|^)@(?:"([^"\r\n]{1,255})"|([a-zA-Z0-9_\-@.']{1,64}))""")


@dataclass(frozen=True)
class MentionToken:
    text: str      # what the author wrote, e.g. `@alice` or `@"guest/ab12"`
    target: str    # `alice`, `guest/ab12`, `all`
    start: int
    end: int


def find_mentions(message: str) -> list[MentionToken]:
    found = []
    for match in MENTION.finditer(message):
        target = match.group(1) if match.group(1) is not None else match.group(2)
        # A bare id may not end in a dot or quote: "@alice." mentions alice.
        text = match.group(0)
        if match.group(2) is not None:
            stripped = target.rstrip(".'")
            text = text[: len(text) - (len(target) - len(stripped))]
            target = stripped
        if target:
            found.append(MentionToken(text=text, target=target, start=match.start(), end=match.start() + len(text)))
    return found


def render_mentions(message: str, resolved: dict[str, dict[str, str]]) -> tuple[str, dict[str, dict[str, str]]]:
    """Replace each resolvable mention by a placeholder; `resolved` maps targets to rich objects
    (`{"type": "user", "id": ..., "name": ...}`). Unknown targets stay as written."""
    parameters: dict[str, dict[str, str]] = {}
    keys: dict[str, str] = {}
    counters: dict[str, int] = {}
    out: list[str] = []
    position = 0
    for token in find_mentions(message):
        rich = resolved.get(token.target)
        if rich is None:
            continue
        key = keys.get(token.target)
        if key is None:
            kind = {"user": "user", "guest": "guest", "call": "call"}.get(rich["type"], "user")
            counters[kind] = counters.get(kind, 0) + 1
            key = f"mention-{kind}{counters[kind]}"
            keys[token.target] = key
            parameters[key] = {**rich, "mention-id": token.target}
        out.append(message[position:token.start])
        out.append("{" + key + "}")
        position = token.end
    out.append(message[position:])
    return "".join(out), parameters
