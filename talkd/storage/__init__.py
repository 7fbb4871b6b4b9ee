"""SQL only: ids and values in, domain.model dataclasses out. No rules live here."""
