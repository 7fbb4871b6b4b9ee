"""Wire formats: pure functions and types, no transport and no rules."""
