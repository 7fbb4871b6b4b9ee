"""Is a string one emoji? Nextcloud's rule (OC\\EmojiHelper::isValidSingleEmoji), which Talk applies to
reactions: exactly one user-perceived character, and every code point in it an emoji-like symbol, a
modifier, a joiner or a variation selector.

Python has no grapheme segmentation in its standard library; `_clusters` follows the parts of Unicode's
rules (UAX #29) that emoji use: joiners glue, extenders (variation selectors, skin tones, keycaps, tags,
combining marks) and spacing marks attach, and regional indicators pair into flags."""

from __future__ import annotations

import unicodedata

ZWJ = 0x200D
VS16 = 0xFE0F

# ICU categories Nextcloud lets through in a multi-byte emoji; "Cn" is ICU's GENERAL_OTHER_TYPES
# (unassigned: emoji newer than the Unicode tables).
EMOJI_CATEGORIES = {"Sk", "Lm", "So", "Cf", "Po", "Ll", "Sm", "Me", "Nd", "Pd", "Cn"}


def _extends(code: int) -> bool:
    """Code points that never start a user-perceived character of their own."""
    if code == ZWJ or 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return True
    return unicodedata.category(chr(code)) in {"Mn", "Me", "Mc"}


def _regional(code: int) -> bool:
    return 0x1F1E6 <= code <= 0x1F1FF


def _clusters(text: str) -> int:
    count = 0
    previous: int | None = None
    odd_flag = False  # an odd number of regional indicators in a row so far: the next one pairs with it
    for char in text:
        code = ord(char)
        if previous is None:
            count = 1
        elif previous == ZWJ or _extends(code) or (_regional(code) and odd_flag):
            pass
        else:
            count += 1
        odd_flag = _regional(code) and not odd_flag
        previous = code
    return count


def is_single_emoji(text: str) -> bool:
    if not text or _clusters(text) != 1:
        return False
    multi_byte = len(text.encode("utf-8")) >= 2
    for char in text:
        if multi_byte and unicodedata.category(char) in EMOJI_CATEGORIES:
            continue
        if ord(char) in (ZWJ, VS16):
            continue
        return False
    return True
