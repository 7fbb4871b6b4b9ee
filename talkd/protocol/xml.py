"""Nextcloud-shaped XML: nested mappings become elements, list items become <element>.

Every document is well-formed XML 1.0 whatever the data holds (a chat message is stored as sent, control
characters included): characters XML 1.0 cannot carry at all (C0 controls but tab, newline and carriage
return; U+FFFE, U+FFFF; lone surrogates) become U+FFFD, the replacement character, rather than vanish,
so a reader sees that something was there and the text keeps its length. A carriage return is written as
a reference, which parsers do not turn into a newline. Element names come from keys: anything but ASCII
letters, digits, "-", "_" and "." becomes "_" (expat refuses most non-ASCII name characters).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_ENTITIES = {"\r": "&#13;"}


def xml_text(text: str) -> str:
    """`text` escaped as XML 1.0 character data."""
    return escape(_NOT_XML_CHAR.sub("\ufffd", text), _ENTITIES)


def _text(value: Any) -> str:
    # PHP casts scalars with (string): true -> "1", false -> "", floats as written.
    if value is True:
        return "1"
    if value is False:
        return ""
    return xml_text(str(value))


def _write(out: list[str], key: str, value: Any, depth: int) -> None:
    pad = " " * depth
    if isinstance(value, Mapping):
        if not value:
            out.append(f"{pad}<{key}/>")
            return
        out.append(f"{pad}<{key}>")
        for k, v in value.items():
            _write(out, _element_name(k), v, depth + 1)
        out.append(f"{pad}</{key}>")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append(f"{pad}<{key}/>")
            return
        out.append(f"{pad}<{key}>")
        for v in value:
            _write(out, "element", v, depth + 1)
        out.append(f"{pad}</{key}>")
    elif value is None:
        out.append(f"{pad}<{key}/>")
    else:
        out.append(f"{pad}<{key}>{_text(value)}</{key}>")


def _element_name(key: Any) -> str:
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        return "element"
    safe = _NOT_NAME_CHAR.sub("_", str(key))
    if not safe or not (safe[0].isalpha() or safe[0] == "_"):
        safe = "_" + safe
    return safe


def render_document(root: str, body: Mapping[str, Any]) -> bytes:
    out = ['<?xml version="1.0"?>']
    _write(out, root, body, 0)
    return ("\n".join(out) + "\n").encode()
