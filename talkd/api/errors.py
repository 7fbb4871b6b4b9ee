"""Domain errors to responses, once per API family: OCS, then Spreed WebRTC's REST API."""

from __future__ import annotations

from collections.abc import Mapping

from talkd.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    NotAllowedHere,
    NotAuthenticated,
    NotFound,
    PreconditionFailed,
    TalkdError,
    Throttled,
    TooLarge,
    TooSlow,
)
from talkd.protocol.ocs import RESPOND_UNAUTHORISED

# A route's overrides: by exception class, or by an error's `reason` when one class covers several
# Nextcloud codes (POST /cloud/users answers 104 for a missing group but 101 for a bad id).
ErrorMap = Mapping[type[TalkdError] | str, int]


class OcsError(Exception):
    """An API-level answer with an explicit OCS status (for codes only one endpoint uses, like 102)."""

    def __init__(self, status: int, message: str = "", data: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.data = data


OCS_STATUS: ErrorMap = {
    NotAuthenticated: RESPOND_UNAUTHORISED,
    Throttled: 429,
    Forbidden: 403,
    NotFound: 404,
    TooLarge: 413,
    TooSlow: 408,
    InvalidInput: 400,
    AlreadyExists: 400,
    NotAllowedHere: 405,
    PreconditionFailed: 412,
    Conflict: 409,
}


def ocs_status(error: TalkdError, overrides: ErrorMap | None = None) -> int:
    """The most specific mapping wins: a route's override for the error's reason, then its overrides
    and the OCS table by class order."""
    if overrides and error.reason in overrides:
        return overrides[error.reason]
    for cls in type(error).__mro__:
        if overrides and cls in overrides:
            return overrides[cls]
        if cls in OCS_STATUS:
            return OCS_STATUS[cls]
    return 500


SPREED_STATUS: ErrorMap = {
    TooLarge: 413,
    TooSlow: 408,
    InvalidInput: 400,
    NotAuthenticated: 401,
    Throttled: 429,
    Forbidden: 403,
    NotFound: 404,
    AlreadyExists: 400,
    NotAllowedHere: 405,
    PreconditionFailed: 400,  # Spreed answers "request failed" (session gone, already authenticated) with 400
}


def spreed_status(error: TalkdError) -> int:
    """HTTP status of a Spreed WebRTC REST error; the body's `code` is the error's reason."""
    for cls in type(error).__mro__:
        if cls in SPREED_STATUS:
            return SPREED_STATUS[cls]
    return 500
