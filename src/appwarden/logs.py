"""Structured logs, configured once for the CLI and the server.

Tracebacks are rendered by the standard library (file, line, code), never with local variables: a
frame's locals hold keys, tokens and settings, and rich's pretty tracebacks print them. Both structlog
and the standard library's loggers (uvicorn, SQLAlchemy, ``ledger``) go through the same renderer.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _drop_color_message(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event


class _CurrentStderr:
    """A stream that is whatever ``sys.stderr`` is now (tests and redirection replace it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(*, json: bool = False, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every log line to ``stream`` (the current stderr by default): JSON lines when ``json``
    (the server), ``key=value`` console lines otherwise (the CLI). Exceptions as plain tracebacks."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    # format_exc_info turns exc_info into the standard library's traceback text: no locals.
    processors: list[Any] = [*_SHARED, structlog.processors.format_exc_info]
    structlog.configure(
        processors=[*processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or _CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*processors, structlog.stdlib.ExtraAdder(), _drop_color_message],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("httpx", "httpcore", "alembic", "sqlalchemy"):
        # httpx's INFO lines are whole URLs, query strings and ids included (the demo's traffic); the
        # others narrate each migration step and connection.
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn installs handlers of its own; ours render its lines like every other.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Its access lines carry the raw path and query string (ids, phone numbers): RequestLog replaces them.
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate, access.disabled = [], False, True


def ensure_configured() -> None:
    """Configure the console renderer unless the CLI or the server entry point already configured logs
    (an app built by a test or an embedding program must not fall back to rich tracebacks)."""
    if not structlog.is_configured():
        configure()
