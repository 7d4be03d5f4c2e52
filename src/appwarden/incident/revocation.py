"""The kill switch's reach into every API worker, and the evidence of refused calls.

**How a worker learns an app was killed.** The authoritative signal is the database: ``authenticate``
reads the app's listing state, the token's revocation and the connection's status in the request's own
transaction, on every request, with no cache. The kill switch commits all three in one transaction
before ``incident open`` returns, so every request that starts after the return is refused, on every
worker, whatever it has in memory (bound: 0 s plus the duration of a request already in flight).

With ``APPWARDEN_REDIS_URL`` set, the kill is also published to Redis (a set of killed app ids and a
generation counter, plus a pub/sub message for anyone listening); each worker keeps a copy of the set
and re-reads the generation at most every ``revocation_cache_seconds`` (0.5 s), so it refuses a
published app within that bound even where its database view were stale. If Redis is unreachable the
copy is kept (it never shrinks on an error) and the database check, which always runs first, decides:
an outage falls back to the database, never to "allow".

**Refused calls are evidence, written cheaply.** A killed app that keeps calling must not turn the
evidence log into a denial-of-service vector, so each worker writes at most ``ROWS_PER_SECOND``
``broker:call:refused`` rows per app per second; calls beyond that are counted in memory and carried
in the ``count`` of the app's next row. The total is ``sum(count)``; it is exact except for calls
suppressed in an app's last second of calling before a worker stops.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import structlog
from fastapi import FastAPI, Request
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import Forbidden
from appwarden.events.service import EventTag, record
from appwarden.oauth.tokens import AccessContext, AppRefused, Refusal, authenticate
from appwarden.web.deps import bearer_token

log = structlog.get_logger()

ROWS_PER_SECOND = 5  # refused-call rows per app per second per worker; the rest are counted
CHANNEL = "revocations"


def _namespace(settings: Settings) -> str:
    """Keys per database: app ids are dense per database, so two platforms sharing a Redis must not mix."""
    digest = hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:16]
    return f"appwarden:{digest}"


class RevocationSignal:
    """One worker's view of the killed apps published to Redis (none without Redis: the database is read
    per request)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bound = settings.revocation_cache_seconds
        self.namespace = _namespace(settings)
        self.redis: Redis | None = None
        if settings.redis_url:
            # Short timeouts: a hung Redis must not stall the data API (the database still decides).
            self.redis = Redis.from_url(
                settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25, decode_responses=True
            )
        self._clock = clock
        self._lock = threading.Lock()
        self._killed: frozenset[int] = frozenset()
        self._generation: str | None = None
        self._checked_at = float("-inf")

    @property
    def backend(self) -> str:
        return "redis" if self.redis is not None else "database"

    @property
    def _set_key(self) -> str:
        return f"{self.namespace}:killed-apps"

    @property
    def _generation_key(self) -> str:
        return f"{self.namespace}:revocation-generation"

    def publish(self, app_ids: Iterable[int]) -> dict[str, Any]:
        """Announce killed apps (after the database commit). Returns how the signal went out."""
        ids = sorted(set(app_ids))
        if self.redis is None:
            return {"via": "database"}
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.sadd(self._set_key, *ids)
            pipe.incr(self._generation_key)
            pipe.publish(f"{self.namespace}:{CHANNEL}", ",".join(map(str, ids)))
            _, generation, _ = pipe.execute()
        except RedisError as exc:
            # The database commit already refuses the app on every worker; say so rather than fail.
            log.warning("revocation publish failed; the database check still refuses", error=str(exc))
            return {"via": "database", "redis_error": str(exc)}
        return {"via": "redis+database", "generation": int(generation)}

    def withdraw(self, app_ids: Iterable[int]) -> None:
        """Remove apps from the published set (for a deliberate relisting; tests clean up with it)."""
        if self.redis is not None:
            pipe = self.redis.pipeline(transaction=True)
            pipe.srem(self._set_key, *set(app_ids))
            pipe.incr(self._generation_key)
            pipe.execute()

    def killed(self, app_id: int) -> bool:
        """Whether ``app_id`` is in the published set, as of at most ``bound`` seconds ago."""
        if self.redis is None:
            return False  # nothing cached: authenticate() read the listing state in this transaction
        now = self._clock()
        with self._lock:
            if now - self._checked_at >= self.bound:
                self._refresh(self.redis)
                self._checked_at = now  # also after an error: back off for one bound, keep the old set
            return app_id in self._killed

    def _refresh(self, redis: Redis) -> None:
        try:
            generation = cast(str | None, redis.get(self._generation_key))
            if generation != self._generation:
                members = redis.smembers(self._set_key)
                # Grow-only on read: a set that shrank by mistake must not silently re-admit an app.
                self._killed = self._killed | frozenset(int(m) for m in members)
                self._generation = generation
        except RedisError as exc:
            log.warning("revocation refresh failed; relying on the database check", error=str(exc))


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


@dataclass
class WorkerState:
    signal: RevocationSignal
    refusals: RefusalLog


_state_lock = threading.Lock()


def worker_state(app: FastAPI) -> WorkerState:
    """This app instance's signal copy and refusal log (created on first use, one per ``create_app``)."""
    state: WorkerState | None = getattr(app.state, "revocation", None)
    if state is None:
        with _state_lock:
            state = getattr(app.state, "revocation", None)
            if state is None:
                state = WorkerState(RevocationSignal(app.state.settings), RefusalLog(app.state.db))
                app.state.revocation = state
    return state


def authenticate_request(request: Request, session: Session) -> AccessContext:
    """``authenticate`` plus the published kill signal; a refused call is recorded, then re-raised.

    ``session`` must be in a transaction the caller began by hand: it is rolled back before the evidence
    is written (on SQLite the request's transaction holds the write lock).
    """
    state = worker_state(request.app)
    try:
        ctx = authenticate(session, bearer_token(request))
        if state.signal.killed(ctx.app_id):
            refused = Refusal(app_id=ctx.app_id, company_id=ctx.company_id, token_id=ctx.token_id)
            raise AppRefused(f"app {ctx.app_slug!r} is delisted", code="app_delisted", refused=refused)
    except AppRefused as exc:
        session.rollback()
        state.refusals.note(
            exc.refused,
            code=exc.code,
            method=request.method,
            path=request.url.path,
            remote=request.client.host if request.client else None,
        )
        raise
    return ctx


def check_access_token(request: Request) -> None:
    """Raise the route's 401 for a missing, unknown, expired or revoked token (``web.auth_first`` runs it
    before a ``/v1`` body is read). Read in a transaction of its own; a 403 (suspended or killed app,
    inactive connection) is left to the route, which refuses it again and records it as evidence."""
    db: Database = request.app.state.db
    with db.sessionmaker() as session:
        try:
            authenticate(session, bearer_token(request))
        except Forbidden:
            return
