"""Randomness, constant-time comparison, keyed hashes and password hashing in one place."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_TOKEN_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int, alphabet: str = _TOKEN_ALPHABET) -> str:
    """A uniformly random string from `alphabet` (62 symbols: ~5.95 bits each)."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def keyed_hash(secret: bytes, *parts: str) -> str:
    """HMAC-SHA256 over the parts, NUL-separated so ("ab","c") and ("a","bc") differ."""
    message = "\x00".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def turn_rest_password(secret: str, username: str) -> str:
    """The TURN REST API password for `username`: base64(HMAC-SHA1(secret, username)), which coturn
    recomputes from its static-auth-secret under use-auth-secret."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def hmac_sha256_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class PasswordHashing:
    """argon2id; the slow work runs in a thread so the event loop keeps serving."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


def fast_password_hashing() -> PasswordHashing:
    """Cheap argon2 parameters, for tests only: the same code path, a fraction of the cost."""
    return PasswordHashing(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
