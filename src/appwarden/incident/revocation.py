"""The kill switch's reach into every API worker: the published kill signal.

**How a worker learns an app was killed.** The authoritative signal is the database: the data API's
``broker.auth.authenticate`` reads the app's listing state, the token's revocation and the connection's
status in the request's own transaction, on every request, with no cache. The kill switch commits all
three in one transaction before ``incident open`` returns, so every request that starts after the return
is refused, on every worker, whatever it has in memory (bound: 0 s plus the duration of a request
already in flight).

With ``APPWARDEN_REDIS_URL`` set, the kill is also published to Redis (a set of killed app ids and a
generation counter, plus a pub/sub message for anyone listening); each worker keeps a copy of the set
and re-reads the generation at most every ``revocation_cache_seconds`` (0.5 s), so it refuses a
published app within that bound even where its database view were stale. If Redis is unreachable the
copy is kept (it never shrinks on an error) and the database check, which always runs first, decides:
an outage falls back to the database, never to "allow". The refused calls themselves are the broker's
evidence (``broker.refusals``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

import structlog
from fastapi import FastAPI
from redis import Redis
from redis.exceptions import RedisError

from appwarden.config import Settings
from appwarden.web.app_state import once_per_app

log = structlog.get_logger()

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
            return False  # nothing cached: broker.auth read the listing state in this transaction
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


def worker_signal(app: FastAPI) -> RevocationSignal:
    """This app instance's copy of the signal (created on first use, one per ``create_app``)."""
    return once_per_app(app, "revocation_signal", lambda: RevocationSignal(app.state.settings))
