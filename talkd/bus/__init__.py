"""The event bus: the one thing long polls and WebSockets wait on ("something changed in X")."""

from talkd.bus.base import Event, EventBus, Subscription, topic
from talkd.bus.memory import MemoryBus

__all__ = ["Event", "EventBus", "MemoryBus", "Subscription", "topic"]
