"""Alembic migrations, run by `talkd db upgrade` and at server start."""
