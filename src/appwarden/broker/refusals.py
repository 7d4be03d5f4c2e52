"""The evidence of refused data-API calls: ``broker:call:refused`` events, written cheaply.

A killed (or suspended) app that keeps calling must not turn the evidence log into a denial-of-service
vector, so each worker writes at most ``ROWS_PER_SECOND`` ``broker:call:refused`` rows per app per
second; calls beyond that are counted in memory and carried in the ``count`` of the app's next row. The
total is ``sum(count)``; it is exact except for calls suppressed in an app's last second of calling
before a worker stops. The incident record reads these events back (``incident.service.describe``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from fastapi import FastAPI

from appwarden.db.session import Database
from appwarden.events.service import EventTag, record
from appwarden.web.app_state import once_per_app

log = structlog.get_logger()

ROWS_PER_SECOND = 5  # refused-call rows per app per second per worker; the rest are counted


@dataclass(frozen=True, slots=True)
class Refusal:
    """Whose call was refused: kept off the problem body, recorded as evidence by the caller."""

    app_id: int
    company_id: int
    token_id: int


@dataclass
class _Window:
    start: float = float("-inf")
    written: int = 0
    suppressed: int = 0


class RefusalLog:
    """Writes ``broker:call:refused`` events with a per-app rate cap (see the module docstring)."""

    def __init__(
        self, db: Database, *, per_second: int = ROWS_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.per_second = per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[int, _Window] = {}

    def note(self, refused: Refusal, *, code: str, method: str, path: str, remote: str | None) -> bool:
        """Record one refused call; False when it was only counted (the app's cap for this second is used)."""
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(refused.app_id, _Window())
            if now - window.start >= 1.0:
                window.start, window.written = now, 0
            if window.written >= self.per_second:
                window.suppressed += 1
                return False
            window.written += 1
            count, window.suppressed = 1 + window.suppressed, 0
        try:
            with self.db.session() as session:
                record(
                    session,
                    EventTag.CALL_REFUSED,
                    actor=f"pid:{os.getpid()}",
                    app_id=refused.app_id,
                    company_id=refused.company_id,
                    token_id=refused.token_id,
                    code=code,
                    method=method,
                    path=path,
                    remote=remote,
                    count=count,
                )
        except Exception as exc:  # the refusal stands even when its evidence cannot be written
            with self._lock:
                self._windows[refused.app_id].suppressed += count  # carried into the next row
            log.warning("could not record a refused call", error=str(exc))
            return False
        return True


def refusal_log(app: FastAPI) -> RefusalLog:
    """This app instance's refusal log (created on first use, one per ``create_app``)."""
    return once_per_app(app, "refusal_log", lambda: RefusalLog(app.state.db))
