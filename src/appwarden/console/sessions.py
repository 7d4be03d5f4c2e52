"""Server-side console sessions: open, look up (with idle and absolute expiry), promote, close.

The cookie carries a 256-bit random id; the table keeps its SHA-256 (``digests.token_hash``), the user,
the stage (``full``, or ``totp`` between a security admin's password and code) and the CSRF token of
the synchroniser pattern. A login always opens a new row (no session fixation) and logout deletes it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.console.models import ConsoleSession
from appwarden.db.base import utcnow
from appwarden.digests import token_hash

FULL = "full"
TOTP = "totp"
# last_seen_at is written at most this often: a page view is not worth a write each time.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class SessionView:
    """A live console session."""

    id: int
    user_id: int
    stage: str
    csrf_token: str


def open_session(
    session: Session, user_id: int, *, stage: str, address: str | None, settings: Settings
) -> tuple[str, SessionView]:
    """A new session for ``user_id``; returns the cookie value (shown once) and the view."""
    now = utcnow()
    cookie = secrets.token_urlsafe(32)
    row = ConsoleSession(
        token_hash=token_hash(cookie),
        user_id=user_id,
        stage=stage,
        csrf_token=secrets.token_urlsafe(32),
        address=address[:64] if address else None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=settings.console_session_max_seconds),
    )
    session.add(row)
    session.flush()
    return cookie, _view(row)


def _view(row: ConsoleSession) -> SessionView:
    return SessionView(row.id, row.user_id, row.stage, row.csrf_token)


def session_for(
    session: Session, cookie: str | None, *, settings: Settings, now: datetime | None = None
) -> SessionView | None:
    """The live session behind a cookie value, or None (unknown, idle too long or past its end: an
    expired row is deleted on sight)."""
    if not cookie:
        return None
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == token_hash(cookie)))
    if row is None:
        return None
    now = now or utcnow()
    idle = timedelta(seconds=settings.console_session_idle_seconds)
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return _view(row)


def close(session: Session, session_id: int) -> None:
    """End a session (logout, or a pending TOTP step that failed for good)."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


def close_all_of(session: Session, user_id: int) -> int:
    """End every session of a user (after a change to how they log in); returns how many."""
    result = session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0))
