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

A throttled connection (an alert's action: ``monitor.throttles``) is held to ``factor`` × its limits on
the same counters, so what it took before the throttle counts at once. The throttles are read in one
query every ``throttle_cache_seconds`` (a dict lookup per call otherwise).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import structlog
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.errors import TooManyRequests, Unavailable
from appwarden.monitor import throttles
from appwarden.monitor.declarations import declared_volume_source
from appwarden.monitor.policy import MonitorPolicy

_NAMESPACE = "appwarden:quota"
log = structlog.get_logger()


SWEEP_SECONDS = 10.0


class SweptMemoryStorage(MemoryStorage):
    """``limits``' memory storage with its expired counters swept inline, at most every
    ``SWEEP_SECONDS``, by the call that finds the sweep due.

    The library's own sweeper is a ``threading.Timer`` started again 10 ms after any hit while counters
    are live: on a busy worker a new thread every 10 ms, each taking the GIL from the request threads
    (``bench/broker.py`` measured the monitored worker at 0.72–0.79× the unmonitored one with it, ~1.0×
    without). Reads already drop an expired counter (``get``); the sweep only bounds the memory held by
    counters nobody reads again (the previous windows of connections gone quiet)."""

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()  # the one timer the library starts at construction
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        self._sweep_lock = threading.Lock()

    # The library calls this (its private name) after each hit; it replaces the library's timer.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweep_lock.release()


def _storage(uri: str | None) -> Storage:
    return SweptMemoryStorage() if uri is None else cast(Storage, storage_from_string(uri))


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
        self._limiter = SlidingWindowCounterRateLimiter(_storage(settings.redis_url))
        # Each worker's own counts while Redis is unreachable (None without Redis: memory is primary).
        self._fallback = SlidingWindowCounterRateLimiter(_storage(None)) if settings.redis_url else None
        self._degraded = False
        self._app_requests = RateLimitItemPerMinute(settings.app_requests_per_minute_max)
        self._app_people = RateLimitItemPerDay(settings.app_people_per_day_max)
        self._lock = threading.Lock()
        self._connections: dict[tuple[int, int], ConnectionLimits] = {}
        self._throttles: dict[throttles.Key, float] = {}
        self._throttles_until = float("-inf")
        self._wall: Callable[[], datetime] = utcnow

    def use_clock(self, clock: Callable[[], datetime] | None) -> None:
        """Judge throttles' expiry by ``clock`` (the monitor's injected clock; ``None``: real time)."""
        self._wall = clock or utcnow
        self.forget_throttles()

    def _throttle_of(self, session: Session, app_id: int, company_id: int) -> float | None:
        """The factor of the strictest throttle on this connection (or on its whole app), if any."""
        if self._clock() >= self._throttles_until:
            factors = throttles.standing(session, self._wall())
            with self._lock:
                self._throttles = factors
                self._throttles_until = self._clock() + self.policy.throttle_cache_seconds
        if not self._throttles:
            return None
        own, app_wide = self._throttles.get((app_id, company_id)), self._throttles.get((app_id, None))
        if own is None or app_wide is None:
            return own if app_wide is None else app_wide
        return min(own, app_wide)

    def forget_throttles(self) -> None:
        """Read the throttles again on the next call (this worker set or lifted one)."""
        with self._lock:
            self._throttles_until = float("-inf")

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
        factor = self._throttle_of(session, app_id, company_id)
        self._charge(
            (
                limits.requests,
                f"rpm:conn:{app_id}:{company_id}",
                "this connection",
                _cap(limits.requests, factor),
            ),
            (self._app_requests, f"rpm:app:{app_id}", "this app", None),
            cost=1,
            what=None,
        )

    def admit_people(self, session: Session, app_id: int, company_id: int, people: int) -> None:
        """Count a page of ``people`` against the connection's and the app's people per day, or refuse
        the whole page (429 ``people_quota_exceeded``) when it would go over either."""
        if people <= 0:
            return
        limits = self._limits_of(session, app_id, company_id)
        factor = self._throttle_of(session, app_id, company_id)
        self._charge(
            (
                limits.people,
                f"ppd:conn:{app_id}:{company_id}",
                "this connection",
                _cap(limits.people, factor),
            ),
            (self._app_people, f"ppd:app:{app_id}", "this app", None),
            cost=people,
            what="people per day",
        )

    def _charge(self, *checks: Check, cost: int, what: str | None) -> None:
        """``what``: None for requests, else the people quota's name. A check's last member is its
        throttled cap (None: not throttled)."""
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
        checks: tuple[Check, ...],
        cost: int,
        what: str | None,
    ) -> None:
        # The connection first, then the app: a connection refused is not charged to its app. When the
        # app is refused after the connection was charged, the connection keeps the charge (it asked).
        for item, key, whose, cap in checks:
            if cap is not None:
                # Throttled: the usual counter (what it already took counts) against the lower cap.
                stats = limiter.get_window_stats(item, _NAMESPACE, key)
                used = item.amount - stats.remaining
                if used + cost > cap:
                    refusal = self._refusal(
                        item, whose, what, cost, max(0, cap - used), stats.reset_time, cap
                    )
                    raise refusal
            if not limiter.hit(item, _NAMESPACE, key, cost=cost):
                stats = limiter.get_window_stats(item, _NAMESPACE, key)
                raise self._refusal(item, whose, what, cost, stats.remaining, stats.reset_time)

    def _refusal(
        self,
        item: RateLimitItem,
        whose: str,
        what: str | None,
        cost: int,
        remaining: int,
        reset: float,
        cap: int | None = None,
    ) -> TooManyRequests:
        retry_after = max(1, math.ceil(reset - time.time()))
        limit = item.amount if cap is None else cap
        # A throttle says so (``throttled``), never why: the alert behind it is the security team's.
        quota = "quota" if cap is None else "throttled quota"
        extra = {} if cap is None else {"throttled": True}
        if what is None:
            return TooManyRequests(
                f"{whose} is over its {quota} of {limit} requests per minute; retry in {retry_after} s",
                code="rate_limited",
                retry_after=retry_after,
                limit=limit,
                **extra,
            )
        return TooManyRequests(
            f"this page of {cost} people would take {whose} over its {quota} of {limit} {what} "
            f"({remaining} left); ask for at most {remaining} or retry in {retry_after} s",
            code="people_quota_exceeded",
            retry_after=retry_after,
            limit=limit,
            remaining=remaining,
            **extra,
        )

    def reset(self) -> None:
        """Forget every count (tests, and an operator lifting a quota after raising a declaration)."""
        self._limiter.storage.reset()
        if self._fallback is not None:
            self._fallback.storage.reset()
        with self._lock:
            self._connections.clear()
            self._throttles_until = float("-inf")


Check = tuple[RateLimitItem, str, str, int | None]  # item, counter key, whose, throttled cap


def _cap(item: RateLimitItem, factor: float | None) -> int | None:
    """The throttled cap of ``item`` (at least 1: a throttle slows, the kill switch stops)."""
    return None if factor is None else max(1, int(item.amount * factor))
