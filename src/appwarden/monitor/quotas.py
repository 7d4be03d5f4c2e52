"""Quotas on the data API: requests per minute and people per day, per connection and per app.

A connection (app × company) is held to its declared peak (``declarations``) times the policy's
headroom; the app as a whole to the settings' app-wide ceilings. Counting is the ``limits`` library's
sliding-window counter: Redis shares the counts between workers when configured, memory otherwise (as
``web.login_throttle`` does). A request is counted when it is authenticated; the people of a page are
counted when the page is known, before it is recorded and sent — a page that would take the connection
or the app over its people-per-day quota is refused whole (429 naming how many people are left today,
so the app can ask for a smaller page), never cut short.

If Redis cannot be reached, each worker counts in its own memory until it can again (logged once per
outage): the quotas still hold, per worker — never unmetered, and the data API stays up, as the kill
signal falls back to the database rather than refusing every app. Should even that fail, the call is
refused (503 ``quota_unavailable``): a quota that fails open is no quota.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.errors import TooManyRequests, Unavailable
from appwarden.monitor.declarations import declared_volume_source
from appwarden.monitor.policy import MonitorPolicy

_NAMESPACE = "appwarden:quota"
log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """A connection's quota items, derived from its declaration."""

    requests: RateLimitItem
    people: RateLimitItem
    expires: float  # monotonic time after which the declaration is asked again


class Quotas:
    """The quotas of one app instance (shared by its request threads)."""

    def __init__(
        self, settings: Settings, policy: MonitorPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.policy = policy
        self._clock = clock
        self._limiter = SlidingWindowCounterRateLimiter(
            storage_from_string(settings.redis_url or "memory://")
        )
        # Each worker's own counts while Redis is unreachable (None without Redis: memory is primary).
        self._fallback = (
            SlidingWindowCounterRateLimiter(storage_from_string("memory://")) if settings.redis_url else None
        )
        self._degraded = False
        self._app_requests = RateLimitItemPerMinute(settings.app_requests_per_minute_max)
        self._app_people = RateLimitItemPerDay(settings.app_people_per_day_max)
        self._lock = threading.Lock()
        self._connections: dict[tuple[int, int], ConnectionLimits] = {}

    def _limits_of(self, session: Session, app_id: int, company_id: int) -> ConnectionLimits:
        key = (app_id, company_id)
        now = self._clock()
        cached = self._connections.get(key)
        if cached is not None and cached.expires > now:
            return cached
        declared = declared_volume_source(session, app_id, company_id, self.settings)
        headroom = self.policy.quota_headroom
        limits = ConnectionLimits(
            requests=RateLimitItemPerMinute(max(1, int(declared.requests_per_minute_peak * headroom))),
            people=RateLimitItemPerDay(max(1, int(declared.people_per_day_peak * headroom))),
            expires=now + self.policy.declaration_cache_seconds,
        )
        with self._lock:
            self._connections[key] = limits
        return limits

    def admit_request(self, session: Session, app_id: int, company_id: int) -> None:
        """Count one request of the connection and its app; 429 ``rate_limited`` when either is spent."""
        limits = self._limits_of(session, app_id, company_id)
        self._charge(
            (limits.requests, f"rpm:conn:{app_id}:{company_id}", "this connection"),
            (self._app_requests, f"rpm:app:{app_id}", "this app"),
            cost=1,
            what=None,
        )

    def admit_people(self, session: Session, app_id: int, company_id: int, people: int) -> None:
        """Count a page of ``people`` against the connection's and the app's people per day, or refuse
        the whole page (429 ``people_quota_exceeded``) when it would go over either."""
        if people <= 0:
            return
        limits = self._limits_of(session, app_id, company_id)
        self._charge(
            (limits.people, f"ppd:conn:{app_id}:{company_id}", "this connection"),
            (self._app_people, f"ppd:app:{app_id}", "this app"),
            cost=people,
            what="people per day",
        )

    def _charge(self, *checks: tuple[RateLimitItem, str, str], cost: int, what: str | None) -> None:
        """``what``: None for requests, else the people quota's name."""
        try:
            self._charge_on(self._limiter, checks, cost, what)
            self._degraded = False
            return
        except TooManyRequests:
            raise
        except Exception as exc:
            if self._fallback is None:
                raise Unavailable(
                    "the data API is paused: its quotas cannot be checked", code="quota_unavailable"
                ) from exc
            if not self._degraded:
                self._degraded = True
                log.warning("quota store unreachable: counting per worker until it is back", error=str(exc))
        try:
            self._charge_on(self._fallback, checks, cost, what)
        except TooManyRequests:
            raise
        except Exception as exc:  # not even memory: refuse rather than serve unmetered
            raise Unavailable(
                "the data API is paused: its quotas cannot be checked", code="quota_unavailable"
            ) from exc

    def _charge_on(
        self,
        limiter: SlidingWindowCounterRateLimiter,
        checks: tuple[tuple[RateLimitItem, str, str], ...],
        cost: int,
        what: str | None,
    ) -> None:
        # The connection first, then the app: a connection refused is not charged to its app. When the
        # app is refused after the connection was charged, the connection keeps the charge (it asked).
        for item, key, whose in checks:
            if not limiter.hit(item, _NAMESPACE, key, cost=cost):
                stats = limiter.get_window_stats(item, _NAMESPACE, key)
                raise self._refusal(item, whose, what, cost, stats.remaining, stats.reset_time)

    def _refusal(
        self, item: RateLimitItem, whose: str, what: str | None, cost: int, remaining: int, reset: float
    ) -> TooManyRequests:
        retry_after = max(1, math.ceil(reset - time.time()))
        if what is None:
            return TooManyRequests(
                f"{whose} is over its quota of {item.amount} requests per minute; retry in {retry_after} s",
                code="rate_limited",
                retry_after=retry_after,
                limit=item.amount,
            )
        return TooManyRequests(
            f"this page of {cost} people would take {whose} over its quota of {item.amount} {what} "
            f"({remaining} left); ask for at most {remaining} or retry in {retry_after} s",
            code="people_quota_exceeded",
            retry_after=retry_after,
            limit=item.amount,
            remaining=remaining,
        )

    def reset(self) -> None:
        """Forget every count (tests, and an operator lifting a quota after raising a declaration)."""
        self._limiter.storage.reset()
        if self._fallback is not None:
            self._fallback.storage.reset()
        with self._lock:
            self._connections.clear()
