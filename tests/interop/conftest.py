"""Interop tests start talkd the way API tests do (with changed settings) next to a real component."""

from tests.api.conftest import app_factory

__all__ = ["app_factory"]
