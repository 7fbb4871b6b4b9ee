"""Distinct types for each kind of identifier, so one cannot be passed where another belongs."""

from typing import NewType

UserId = NewType("UserId", str)
GroupId = NewType("GroupId", str)
RoomToken = NewType("RoomToken", str)
SessionId = NewType("SessionId", str)
MessageId = NewType("MessageId", int)
AppPasswordId = NewType("AppPasswordId", int)
WebSessionId = NewType("WebSessionId", int)
