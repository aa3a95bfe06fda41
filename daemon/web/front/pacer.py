"""The steps of the ingest side's long requests, one at a time across its listeners, the
event loop given back between them and rested after a step that held it for long.

A request answered in steps (a large body's parse, then its events in slices) hands each
step to the pacer, never to the loop directly: the steps of every connection of the
ingest and mirror listeners, and the tee proxy's large copies, run first come, first
served, one per turn of the loop. A
parse cannot be cut, and a large body of tiny JSON values holds the loop long to parse
and to let go; after such a step the next waits as long as it took (at most
MAX_REST_S), so that everything else the loop serves — the API's `/healthz` for the
kubelet's probes, small requests, Redis' replies — needs a few quick turns, not a few
long steps, whatever bodies arrive back to back. Steps of ordinary bodies stay under
LONG_STEP_S and never wait.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

# A step longer than this is followed by a rest as long as it was.
LONG_STEP_S = 0.02
MAX_REST_S = 0.1


class Pacer:
    """First come, first served: one step a turn of the loop; a rest after a long one."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        long_step_s: float = LONG_STEP_S,
        max_rest_s: float = MAX_REST_S,
    ) -> None:
        self.loop = loop
        self.long_step_s = long_step_s
        self.max_rest_s = max_rest_s
        self.steps: deque[Callable[[], None]] = deque()
        self.scheduled: asyncio.Handle | None = None  # the next turn, or the end of a rest
        self.turning = False  # within a step: the turn schedules the next itself
        self.rests = 0  # how many long steps were followed by a rest

    def add(self, step: Callable[[], None]) -> None:
        """Run `step` in its turn (a step that wants another adds it when it runs)."""
        self.steps.append(step)
        if self.scheduled is None and not self.turning:
            self.scheduled = self.loop.call_soon(self._turn)

    def _turn(self) -> None:
        self.scheduled = None
        step = self.steps.popleft()
        self.turning = True
        started = time.perf_counter()
        try:
            step()
        except Exception:  # a step answers its own errors; the others still run
            log.exception("ingest step failed")
        finally:
            self.turning = False
        took = time.perf_counter() - started
        if not self.steps:
            return
        if took > self.long_step_s:
            self.rests += 1
            self.scheduled = self.loop.call_later(min(took, self.max_rest_s), self._turn)
        else:
            self.scheduled = self.loop.call_soon(self._turn)
