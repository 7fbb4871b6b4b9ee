"""Buddy pictures: a Status whose `buddyPicture` is a data URL is kept in memory, one image per session,
and the broadcast carries `img:<imageid>/<changeid>/<file>` instead (shared notes section 9)."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

# Only images are served back from our origin: anything else could be HTML or script.
FILENAMES = {"image/png": "picture.png", "image/jpeg": "picture.jpg", "image/gif": "picture.gif",
             "image/webp": "picture.webp"}


@dataclass
class Image:
    mime: str
    data: bytes
    change_id: str
    changed_at: float  # wall clock seconds


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse_data_url(url: str) -> tuple[str, bytes] | None:
    """(mime, bytes) of a `data:<mime>;base64,<data>` URL with an allowed image type; None otherwise."""
    if not url.startswith("data:"):
        return None
    header, sep, payload = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or mime not in FILENAMES:
        return None
    try:
        return mime, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


class ImageCache:
    def __init__(self) -> None:
        self._images: dict[str, Image] = {}
        self._by_session: dict[str, str] = {}

    def update(self, session_id: str, mime: str, data: bytes, now: float) -> str:
        """Store the session's picture; returns `<imageid>/<changeid>/<filename>`."""
        image_id = self._by_session.get(session_id)
        image = self._images.get(image_id) if image_id else None
        if image_id is None or image is None:
            image_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
            image = Image(mime="", data=b"", change_id="", changed_at=0.0)
            self._by_session[session_id] = image_id
            self._images[image_id] = image
        if image.mime != mime or image.data != data:
            image.mime, image.data, image.changed_at = mime, data, now
            image.change_id = base64.urlsafe_b64encode(_uvarint(int(now * 1e9))).decode()
        return f"{image_id}/{image.change_id}/{FILENAMES[mime]}"

    def get(self, image_id: str) -> Image | None:
        return self._images.get(image_id)

    def delete(self, session_id: str) -> None:
        image_id = self._by_session.pop(session_id, None)
        if image_id is not None:
            self._images.pop(image_id, None)

    def __len__(self) -> int:
        return len(self._images)
