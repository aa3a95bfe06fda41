"""Background tasks: a drift-free ticker, and supervision that restarts a failed loop.

A loop that fails for a reason other than Redis (a bug) is logged and restarted, so
one bad batch cannot stop a writer for good; Redis failures are handled inside the
loops themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import structlog

RESTART_DELAY_S = 1.0

log = structlog.get_logger(__name__)


async def every(interval_s: float, iteration: Callable[[], Awaitable[None]]) -> None:
    """Run `iteration` every `interval_s` seconds until cancelled (drift does not add up)."""
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        next_at += interval_s
        await iteration()
        delay = next_at - loop.time()
        if delay < 0:  # an iteration overran: skip the missed ticks instead of bursting
            next_at = loop.time()
            delay = 0
        await asyncio.sleep(delay)


class Supervisor:
    """Owns the daemon's background tasks: starts them, restarts failures, cancels all."""

    def __init__(self, restart_delay_s: float = RESTART_DELAY_S) -> None:
        self._restart_delay_s = restart_delay_s
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def spawn(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop` as a task; if it raises, log it and run it again."""

        async def supervised() -> None:
            while True:
                try:
                    await loop()
                    return
                except Exception:
                    log.exception("background task failed; restarting it", task=name)
                    await asyncio.sleep(self._restart_delay_s)

        self._tasks[name] = asyncio.create_task(supervised(), name=name)

    def tasks(self, names: Iterable[str]) -> list[asyncio.Task[None]]:
        """The tasks of the given names (those that exist)."""
        return [self._tasks[n] for n in names if n in self._tasks]

    async def cancel(self, names: Iterable[str] | None = None) -> None:
        """Cancel the named tasks (all when None) and wait until they have ended."""
        chosen = list(self._tasks) if names is None else [n for n in names if n in self._tasks]
        tasks = [self._tasks.pop(n) for n in chosen]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
