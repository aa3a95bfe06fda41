"""Logging: structlog, JSON lines by default or a console format for humans.

The standard library's loggers (aiohttp's access and server logs, redis-py) go through
the same renderer, so a pod's log is one format. Access lines are debug-level: the
ingest sees thousands of requests a second.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog


def _dumps(doc: Any, **_: Any) -> str:
    return orjson.dumps(doc, default=str).decode()


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library logging once, at start-up."""
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if fmt == "json" else _noop,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per HTTP request is noise at info level; keep it for debugging.
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if level == "debug" else "WARNING")


def _noop(_: Any, __: str, event_dict: Any) -> Any:
    return event_dict
