"""Chat-test fixtures: the API tests' app factory (changed settings) and helpers for rooms and guests."""

from __future__ import annotations

from tests.api.conftest import app_factory
from tests.helpers.cluster import two_nodes

__all__ = ["app_factory", "two_nodes"]
