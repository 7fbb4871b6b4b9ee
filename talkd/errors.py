"""Domain errors. They carry meaning, never HTTP codes; each API family maps them once at its edge.

    TalkdError
    ├── InvalidInput            a value is malformed, out of range or missing
    │   ├── TooLarge            a value or body exceeds its configured limit
    │   └── TooSlow             a request body did not arrive within its configured time
    ├── NotAuthenticated        no (valid) credentials where they are required
    ├── Throttled               too many failed attempts of this kind from this address
    ├── Forbidden               authenticated, but this actor may not do this
    ├── NotFound                the thing does not exist, or is invisible to this actor
    │   └── RoomNotFound        the named conversation (throttled as Talk's talkRoomToken)
    ├── AlreadyExists           creating something whose id is taken
    ├── NotAllowedHere          the operation does not apply to this kind of object
    ├── PreconditionFailed      the object is not in the state the operation requires
    └── Conflict                the caller already holds what it asks for (e.g. a session)
"""

from __future__ import annotations


class TalkdError(Exception):
    """Base of all domain errors. `reason` is a short machine-readable word for logs and tests."""

    reason: str = "error"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class InvalidInput(TalkdError):
    reason = "invalid-input"


class TooLarge(InvalidInput):
    reason = "too-large"


class TooSlow(InvalidInput):
    reason = "too-slow"


class NotAuthenticated(TalkdError):
    reason = "not-authenticated"


class Throttled(TalkdError):
    reason = "throttled"


class Forbidden(TalkdError):
    reason = "forbidden"


class NotFound(TalkdError):
    reason = "not-found"


class RoomNotFound(NotFound):
    """No conversation by that token that the caller may see."""


class AlreadyExists(TalkdError):
    reason = "already-exists"


class NotAllowedHere(TalkdError):
    reason = "not-allowed-here"


class PreconditionFailed(TalkdError):
    reason = "precondition-failed"


class Conflict(TalkdError):
    reason = "conflict"

    def __init__(self, message: str = "", *, reason: str | None = None, details: dict[str, object] | None = None
                 ) -> None:
        super().__init__(message, reason=reason)
        self.details = details or {}
