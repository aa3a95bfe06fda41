"""Serving the daemon until a signal: SIGTERM or SIGINT starts the orderly stop, a
second one abandons it.

The handlers only set a flag or cancel; the previous handlers are restored on exit, so
the daemon can also run inside a process that owns its signals (tests, embedding).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Iterator

import structlog

from daemon.app import App

EXIT_OK = 0
EXIT_STARTUP_FAILURE = 3
EXIT_FORCED = 130
EXIT_EMBEDDED_REDIS_DIED = 4  # the embedded server kept dying (app.failure says why)
SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = structlog.get_logger(__name__)


@contextlib.contextmanager
def signals_captured(on_signal: Callable[[int], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call `on_signal` on the running loop; the previous handlers
    are restored on exit."""
    loop = asyncio.get_running_loop()
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)


async def run(app: App, on_started: Callable[[App], None] = lambda _: None) -> int:
    """Start, wait for SIGTERM/SIGINT, stop; a second signal abandons the stop."""
    stopping = asyncio.Event()
    main = asyncio.current_task()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            shutdown = app.config.sidecar.shutdown
            log.info(
                "stopping",
                signal=signal.Signals(signum).name,
                drain_s=shutdown.drain_seconds,
                flush_timeout_s=shutdown.flush_timeout_seconds,
            )
            stopping.set()
        elif main is not None:
            log.warning("second signal: exiting at once", queued=app.queue.depth)
            main.cancel()

    with signals_captured(on_signal):
        try:
            await app.start()
            settle_heap()
            on_started(app)
            waits = [asyncio.create_task(stopping.wait()), asyncio.create_task(app.failed.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            await app.stop()
        except asyncio.CancelledError:
            if signals_seen < 2 or main is None:
                raise
            main.uncancel()
            app.abort()
            return EXIT_FORCED
    if app.failure:  # logged (error level) when it happened
        return EXIT_EMBEDDED_REDIS_DIED
    return EXIT_OK


def settle_heap() -> None:
    """Once started: collect, then move what start-up left (modules, the app, its
    routes, metrics and clients: tens of thousands of objects, all long-lived) out of the
    collector's reach (gc.freeze).

    A full collection would otherwise walk all of them each time, and the event loop
    answers nothing while it runs; frozen, a full collection walks only what came later.
    Frozen objects are still freed by reference counting; only cycles among them would
    stay, and start-up's were collected just before.
    """
    gc.collect()
    gc.freeze()


def event_loop_runner() -> Callable[..., int]:
    """uvloop's runner when installed (faster HTTP and Redis I/O), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
