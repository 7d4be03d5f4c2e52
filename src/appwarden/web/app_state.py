"""Per-app objects made on first use: one per ``create_app``, shared by that app's requests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from fastapi import FastAPI

T = TypeVar("T")
_lock = threading.Lock()


def once_per_app(app: FastAPI, name: str, make: Callable[[], T]) -> T:
    """``app.state.<name>``, made by ``make`` the first time (the sync routes' threads may race to it)."""
    value: T | None = getattr(app.state, name, None)
    if value is None:
        with _lock:
            value = getattr(app.state, name, None)
            if value is None:
                value = make()
                setattr(app.state, name, value)
    return value
