"""Pure logic of the cache: entries, parsing, rate limiting, redaction, accounting.

Nothing here does I/O or imports aiohttp or redis, so it runs on a fake clock in tests.
"""
