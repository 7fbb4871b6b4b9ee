"""The rules: who may do what, and what each operation does. No aiohttp, no SQL text."""
