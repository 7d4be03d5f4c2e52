"""The incident's month on a simulated clock: every app's traffic through the live server, hour by hour,
with the app's monitor folding and running at the simulated time (``Monitor.use_clock``), so baselines
learn over days as they would in production.

Day 0 the screened apps make their onboarding full syncs (declared ``full_sync``); every day after, each
connection reads a little in business hours (Asia/Tokyo). invoice-plus bills the same few business
customers each day, then on ``PULL_DAY`` at 03:00 JST mirrors every member it can reach. Audit mode: the
pull runs as it happened (every page at once). Guarded: a scraper paging one request a simulated second,
obeying 429s (asking for ``remaining`` when told, else waiting for the next day), until every list is
read or it is refused; the monitor runs every simulated minute meanwhile.

The ledger keeps real ``recorded_at`` times; everything the monitor counts and decides is simulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from appwarden.demo.catalog import APPS_BY_SLUG
from appwarden.demo.traffic import PAGE, AppSession
from appwarden.monitor import service as alerts
from appwarden.monitor.runtime import Monitor

DAYS = 30
PULL_DAY = 20
PULL_HOUR_UTC = 18  # 03:00 in Tokyo: a batch job's hour, when nobody at the stores is working
BUSINESS_HOURS_UTC = tuple(range(0, 9))  # 09:00–18:00 in Tokyo
NORMAL_PAGE = 50  # an app's daily read: the members who visited, not the list
INVOICED = 20  # the business customers a company invoices: the same ones every day
SCRAPER_STEP = timedelta(seconds=1)
RUN_EVERY = timedelta(minutes=1)


class SimClock:
    """The replay's one clock; the monitor reads it for every count, window and action."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def replay_start(today: datetime, new_app_days: int) -> datetime:
    """Midnight UTC past the apps' first week on the marketplace: the replay is of an established
    marketplace (a new app's first week is ``new_app_high_usage``'s, and not this incident's)."""
    midnight = today.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=new_app_days + 1)


@dataclass
class Link:
    """One installed connection as the replay drives it."""

    slug: str
    session: AppSession
    company: int
    cursor: str | None = None
    hours: dict[int, tuple[int, ...]] = field(default_factory=dict)  # day → its hours of traffic


@dataclass
class Watch:
    """What the replay saw of the monitor: every run's raised alerts (id, simulated time)."""

    raised: list[tuple[str, datetime]] = field(default_factory=list)
    on_first: Callable[[datetime], None] | None = None
    first_at: datetime | None = None


def schedule(links: list[Link], seed: int) -> None:
    """Each connection's hours of traffic per day: one to three business hours on weekdays, at most
    one at weekends (stores open, offices shut)."""
    rng = np.random.default_rng(seed)
    for link in links:
        for day in range(1, DAYS):
            k = int(rng.integers(0, 2)) if day % 7 in (5, 6) else int(rng.integers(1, 4))
            link.hours[day] = tuple(sorted(int(h) for h in rng.choice(BUSINESS_HOURS_UTC, k, replace=False)))


def normal_read(link: Link, slug_pull: str) -> None:
    """One ordinary call: the next members who visited (an invoicing app: its same business customers)."""
    if link.slug == slug_pull:
        # Refused once the monitor acted on its mirror (throttled, restricted): it invoices tomorrow.
        link.session.request("GET", "/v1/customers", params={"limit": INVOICED})
        return
    params: dict[str, Any] = {"limit": NORMAL_PAGE}
    if link.cursor:
        params["cursor"] = link.cursor
    # An app granted no customer field (accounting) reads the day's sales instead.
    url = "/v1/customers" if APPS_BY_SLUG[link.slug].customer_scopes else "/v1/transactions"
    page = link.session.call("GET", url, params=params)
    link.cursor = page["next_cursor"]  # the end of the list wraps round to its start


def run(
    monitor: Monitor,
    clock: SimClock,
    watch: Watch,
    watched_app: int,
) -> None:
    """One monitor run at the clock's time; the first alert on ``watched_app`` is noted."""
    report = monitor.run_once()
    if not report.raised:
        return
    first = False
    with monitor.db.session() as session:
        for public_id in report.raised:
            app_id = alerts.get_alert(session, public_id).app_id
            watch.raised.append((public_id, clock.now))
            if app_id == watched_app and watch.first_at is None:
                watch.first_at = clock.now
                first = True
    # After this session has ended: on SQLite its read lock would block what ``on_first`` writes.
    if first and watch.on_first is not None:
        watch.on_first(clock.now)


@dataclass
class Scraper:
    """invoice-plus's mirror: every page of every member list it can reach, one call per second."""

    links: list[Link]
    done: set[int] = field(default_factory=set)
    waiting_until: dict[int, datetime] = field(default_factory=dict)
    limit: dict[int, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    wants_raw: bool = True
    walked: set[int] = field(default_factory=set)  # connections whose list was paged to its end
    pending: dict[int, list[str]] = field(default_factory=dict)  # a page's people, to mint for
    minted: dict[int, tuple[str, list[str]]] = field(default_factory=dict)  # a token, people left

    def finished(self) -> bool:
        return len(self.done) == len(self.links)

    def step(self, now: datetime) -> bool:
        """One call on the next connection not done or waiting; False when none could be made."""
        for i, link in enumerate(self.links):
            if i in self.done or self.waiting_until.get(i, now) > now:
                continue
            self._call(i, link, now)
            return True
        return False

    def _call(self, i: int, link: Link, now: datetime) -> None:
        # A screened app's access token carries identifying fields masked: the raw ones come only by
        # restricted token, at most 100 named people each. The mirror wants them raw, so after each page
        # it mints for the page's people and reads each of them with the token, one call a person.
        minted = self.minted.get(i)
        if i in self.walked and not minted and not self.pending.get(i):
            self.done.add(i)  # the whole list was walked and every page read raw (or refused)
            return
        if minted:
            self._read_raw(i, link, minted, now)
            return
        if self.pending.get(i):
            self._mint(i, link, now)
            return
        params: dict[str, Any] = {"limit": self.limit.pop(i, PAGE)}
        if link.cursor:
            params["cursor"] = link.cursor
        response = link.session.request("GET", "/v1/customers", params=params)
        if response.status_code == 200:
            page = orjson.loads(response.content)
            link.cursor = page["next_cursor"]
            if self.wants_raw:
                self.pending[i] = [str(c["id"]) for c in page["data"]]
            if link.cursor is None:
                self.walked.add(i)
            return
        self._refused(i, response, now)

    def _mint(self, i: int, link: Link, now: datetime) -> None:
        ids, self.pending[i] = self.pending[i][:100], self.pending[i][100:]
        body = {"customers": ids, "fields": ["name", "phone"], "purpose": "invoice addressee"}
        response = link.session.request("POST", "/v1/restricted-tokens", json=body)
        if response.status_code in (200, 201):
            self.minted[i] = (str(orjson.loads(response.content)["restricted_token"]), ids)
            return
        if response.status_code != 429:
            self.pending.pop(i, None)  # raw refused (restricted, or no raw grant): masked pages only
        else:
            self.pending[i] = ids + self.pending[i]
        self._refused(i, response, now, keep=True)

    def _read_raw(self, i: int, link: Link, minted: tuple[str, list[str]], now: datetime) -> None:
        token, ids = minted
        customer = ids.pop()
        if not ids:
            self.minted.pop(i)
        response = link.session.http.get(
            f"/v1/customers/{customer}", headers={"Authorization": f"Bearer {token}"}
        )
        link.session.requests += 1
        if response.status_code != 200:
            self.minted.pop(i, None)  # the token stopped working (expired, revoked, restricted)
            self._refused(i, response, now, keep=True)

    def _refused(self, i: int, response: Any, now: datetime, *, keep: bool = False) -> None:
        body = orjson.loads(response.content) if response.content else {}
        code = str(body.get("code", response.status_code))
        self.refusals[code] = self.refusals.get(code, 0) + 1
        if response.status_code == 429:
            remaining = int(body.get("remaining") or 0)
            if code == "people_quota_exceeded" and remaining > 0:
                self.limit[i] = remaining
                return
            retry = float(response.headers.get("Retry-After", "60"))
            if code == "people_quota_exceeded":  # the day is spent: back the next simulated day
                self.waiting_until[i] = _next_midnight(now)
            else:
                self.waiting_until[i] = now + timedelta(seconds=max(1.0, retry))
            return
        if not keep:
            self.done.add(i)  # refused outright (paused, delisted, revoked): this connection is lost to it


def _next_midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def scrape_hour(scraper: Scraper, monitor: Monitor, clock: SimClock, watch: Watch, watched_app: int) -> None:
    """The scraper's calls within the clock's current hour, the monitor running every minute."""
    end = clock.now + timedelta(hours=1)
    next_run = clock.now + RUN_EVERY
    while clock.now < end and not scraper.finished():
        if not scraper.step(clock.now):
            waits = [t for i, t in scraper.waiting_until.items() if i not in scraper.done]
            clock.now = min(end, min(waits, default=end))
        else:
            clock.now += SCRAPER_STEP
        if clock.now >= next_run:
            run(monitor, clock, watch, watched_app)
            next_run = clock.now + RUN_EVERY
    clock.now = end


def full_pull(link: Link, advance: Callable[[int], None]) -> None:
    """The incident as it happened: every page of the member list, one after another."""
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if link.cursor:
            params["cursor"] = link.cursor
        page = link.session.call("GET", "/v1/customers", params=params)
        advance(len(page["data"]))
        link.cursor = page["next_cursor"]
        if link.cursor is None:
            return


def month(
    monitor: Monitor,
    clock: SimClock,
    links: list[Link],
    *,
    pull_slug: str,
    pull_app_id: int,
    guarded: bool,
    onboard: Callable[[], None],
    watch: Watch,
    advance: Callable[[int], None],
) -> Scraper | None:
    """The replay's 30 days, hour by hour; returns the scraper (guarded) for its refusals."""
    start = clock.now
    pulling = [link for link in links if link.slug == pull_slug]
    scraper = Scraper(pulling) if guarded else None
    for day in range(DAYS):
        for hour in range(24):
            clock.now = start + timedelta(days=day, hours=hour)
            if hour == 0:
                monitor.quotas.reset()  # the quotas' windows are real time: a simulated day starts afresh
            run(monitor, clock, watch, pull_app_id)  # the hour just ended
            if day == 0 and hour == 1:
                onboard()
            for link in links:
                if hour in link.hours.get(day, ()):
                    normal_read(link, pull_slug)
            if (day, hour) >= (PULL_DAY, PULL_HOUR_UTC):
                if scraper is not None:
                    scrape_hour(scraper, monitor, clock, watch, pull_app_id)
                elif (day, hour) == (PULL_DAY, PULL_HOUR_UTC):
                    for link in pulling:
                        full_pull(link, advance)
    clock.now = start + timedelta(days=DAYS)
    run(monitor, clock, watch, pull_app_id)
    return scraper
