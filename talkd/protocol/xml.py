"""Nextcloud-shaped XML: nested mappings become elements, list items become <element>."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape


def _text(value: Any) -> str:
    # PHP casts scalars with (string): true -> "1", false -> "", floats as written.
    if value is True:
        return "1"
    if value is False:
        return ""
    return escape(str(value))


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
    name = str(key)
    # Keep documents well-formed whatever a key holds.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    if not safe or not (safe[0].isalpha() or safe[0] == "_"):
        safe = "_" + safe
    return safe


def render_document(root: str, body: Mapping[str, Any]) -> bytes:
    out = ['<?xml version="1.0"?>']
    _write(out, root, body, 0)
    return ("\n".join(out) + "\n").encode()
