"""The windowed checks over the folded delivery counts (``monitor_hours``), run by the background run.

Each detector is a function of the hours read and ``now``, returning findings; none reads a customer
row or scans the ledger: distinct people are unions of the hours' bitmaps, a company's members are the
platform's store bitmaps (``platform.membership``), and only an alert's links are read from the ledger.
Here: ``over_declaration``, ``mirror``, ``new_app_high_usage``, ``unusual_hours``; in modules of their
own: ``over_baseline`` (``monitor.baseline``), ``new_credential_volume`` (``monitor.credentials``),
``probing`` (``monitor.probing``), ``restricted_token_volume`` (``monitor.restricted``);
``canary_contact`` arrives through the canary hook (``monitor.canary``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pyroaring import BitMap
from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from appwarden.db.base import UTCDateTime
from appwarden.marketplace.service import listed_at
from appwarden.monitor.declarations import DeclaredVolume
from appwarden.monitor.models import DeliveryHour
from appwarden.monitor.policy import Detector, MonitorPolicy, Severity
from appwarden.monitor.service import Finding
from appwarden.monitor.tally import hour_of
from appwarden.platform.membership import store_membership

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
Pair = tuple[int, int]  # app id, company id


@dataclass(frozen=True, slots=True)
class Hour:
    """One folded hour of one app × company."""

    app_id: int
    company_id: int
    hour: datetime
    requests: int
    persons: int
    people: bytes  # empty before the read's ``bitmaps_since``
    refused: int
    field_people: Mapping[str, int] = field(default_factory=dict)  # distinct people per customer field


def read_hours(
    session: Session, since: datetime, until: datetime, *, bitmaps_since: datetime | None = None
) -> list[Hour]:
    """Every folded hour in ``[since, until)``, read once for every detector: the counts of all of
    them, and the people bitmap only of the hours from ``bitmaps_since`` on (the last day's, which
    ``Window.day_people`` unions; the learning days need only counts)."""
    people: Any = DeliveryHour.people
    if bitmaps_since is not None:
        people = case((DeliveryHour.hour >= bitmaps_since, DeliveryHour.people), else_=None)
    query = select(
        DeliveryHour.app_id,
        DeliveryHour.company_id,
        DeliveryHour.hour,
        DeliveryHour.requests,
        DeliveryHour.persons,
        people,
        DeliveryHour.refused_401 + DeliveryHour.refused_403 + DeliveryHour.refused_404,
        DeliveryHour.field_people,
    ).where(DeliveryHour.hour >= since, DeliveryHour.hour < until)
    return [
        Hour(a, c, h, r, p, bytes(b or b""), n, {str(k): int(v) for k, v in (f or {}).items()})
        for a, c, h, r, p, b, n, f in session.execute(query)
    ]


def retention(policy: MonitorPolicy) -> timedelta:
    """How long a folded hour is kept: the longest learning period and a day of margin (nothing reads
    older hours; a pair whose hours all aged out is a new pair again, learned afresh)."""
    return timedelta(days=max(policy.unusual_hours_learning_days, policy.baseline_learning_days) + 1)


def prune_hours(session: Session, now: datetime, policy: MonitorPolicy) -> int:
    """Delete the folded hours older than :func:`retention`; the number deleted."""
    horizon = hour_of(now) - retention(policy) - 2 * HOUR
    result = session.execute(delete(DeliveryHour).where(DeliveryHour.hour < horizon))
    return int(getattr(result, "rowcount", 0) or 0)


class Window:
    """The hours of the last 24 h (and the learning days) read once, grouped for the detectors."""

    def __init__(self, hours: Iterable[Hour], now: datetime) -> None:
        self.now = now
        self.current = hour_of(now)
        self.day_start = self.current - 23 * HOUR  # 24 hourly buckets, the current one included
        self.by_pair: dict[Pair, list[Hour]] = defaultdict(list)
        for h in hours:
            self.by_pair[(h.app_id, h.company_id)].append(h)
        self._people: dict[Pair, BitMap] = {}

    def day_people(self, pair: Pair) -> BitMap:
        """Distinct people delivered to the app from the company in the last 24 hourly buckets."""
        people = self._people.get(pair)
        if people is None:
            blobs = [h.people for h in self.by_pair.get(pair, ()) if h.hour >= self.day_start]
            people = self._people[pair] = BitMap.union(BitMap(), *(BitMap.deserialize(b) for b in blobs))
        return people

    def day_pairs(self) -> list[Pair]:
        return sorted(p for p, hs in self.by_pair.items() if any(h.hour >= self.day_start for h in hs))


Declared = Callable[[int, int], DeclaredVolume]


def over_declaration(window: Window, declared: Declared, policy: MonitorPolicy) -> list[Finding]:
    """Distinct people in 24 h over the declared peak × factor; or the last complete hour's average
    requests per minute over the declared peak × factor."""
    findings = []
    factor = policy.over_declaration_factor
    last = window.current - HOUR
    for app_id, company_id in window.day_pairs():
        volume = declared(app_id, company_id)
        yardstick = {"declared": volume.declared, "factor": factor}
        people = len(window.day_people((app_id, company_id)))
        if people > volume.people_per_day_peak * factor:
            findings.append(
                Finding(
                    Detector.OVER_DECLARATION,
                    Severity.HIGH,
                    app_id,
                    company_id,
                    observed={"people_per_day": people},
                    baseline={"people_per_day_peak": volume.people_per_day_peak, **yardstick},
                    window_start=window.day_start,
                    window_end=window.current + HOUR,
                    dedup_window=f"people:{window.current.date().isoformat()}",
                )
            )
        requests = sum(h.requests for h in window.by_pair[(app_id, company_id)] if h.hour == last)
        if requests / 60 > volume.requests_per_minute_peak * factor:
            findings.append(
                Finding(
                    Detector.OVER_DECLARATION,
                    Severity.MEDIUM,
                    app_id,
                    company_id,
                    observed={"requests_per_minute": round(requests / 60, 1)},
                    baseline={"requests_per_minute_peak": volume.requests_per_minute_peak, **yardstick},
                    window_start=last,
                    window_end=window.current,
                    dedup_window=f"rpm:{last.isoformat()}",
                )
            )
    return findings


def mirror(
    session: Session, window: Window, policy: MonitorPolicy, declared: Declared | None = None
) -> list[Finding]:
    """An app received at least ``mirror_share`` of a company's members within 24 h (canaries aside:
    every connection receives its own), unless its version in force declares a full sync (``declared``:
    review approved reading whole member lists)."""
    members: dict[int, BitMap] = {}
    findings = []
    for app_id, company_id in window.day_pairs():
        if declared is not None and declared(app_id, company_id).full_sync:
            continue
        if company_id not in members:
            membership = store_membership(session, [company_id])
            members[company_id] = membership.everyone() - membership.canaries()
        company_members = members[company_id]
        if len(company_members) < policy.mirror_min_members:
            continue  # a shop with a handful of members is read whole by any app that shows them
        reached = company_members.intersection_cardinality(window.day_people((app_id, company_id)))
        share = reached / len(company_members)
        if share >= policy.mirror_share:
            findings.append(
                Finding(
                    Detector.MIRROR,
                    Severity.HIGH,
                    app_id,
                    company_id,
                    observed={"members_delivered": reached, "share": round(share, 4)},
                    baseline={"members": len(company_members), "share_threshold": policy.mirror_share},
                    window_start=window.day_start,
                    window_end=window.current + HOUR,
                    dedup_window=window.current.date().isoformat(),
                )
            )
    return findings


def new_app_high_usage(session: Session, window: Window, policy: MonitorPolicy) -> list[Finding]:
    """An app first listed less than ``new_app_days`` ago (``marketplace.service.listed_at``: when it
    entered ``listed``, not when its vendor registered it) received more than ``new_app_people_per_day``
    people in 24 h, over all its companies."""
    since = window.now - timedelta(days=policy.new_app_days)
    pairs = window.day_pairs()
    findings = []
    for app_id, listed in sorted(listed_at(session, {a for a, _ in pairs}).items()):
        if listed < since:
            continue
        people = sum(len(window.day_people(pair)) for pair in pairs if pair[0] == app_id)
        if people > policy.new_app_people_per_day:
            findings.append(
                Finding(
                    Detector.NEW_APP_HIGH_USAGE,
                    Severity.MEDIUM,
                    app_id,
                    None,
                    observed={"people_per_day": people, "listed_at": listed.isoformat()},
                    baseline={
                        "people_per_day_threshold": policy.new_app_people_per_day,
                        "new_app_days": policy.new_app_days,
                    },
                    window_start=window.day_start,
                    window_end=window.current + HOUR,
                    dedup_window=window.current.date().isoformat(),
                )
            )
    return findings


def first_seen(session: Session) -> dict[Pair, datetime]:
    """The first folded hour of every app × company (how long each has been learned)."""
    first = func.min(DeliveryHour.hour, type_=UTCDateTime())  # read back as the column is: aware UTC
    query = select(DeliveryHour.app_id, DeliveryHour.company_id, first).group_by(
        DeliveryHour.app_id, DeliveryHour.company_id
    )
    return {(a, c): h for a, c, h in session.execute(query)}


def unusual_hours(
    window: Window, history: Iterable[Hour], since: dict[Pair, datetime], policy: MonitorPolicy
) -> list[Finding]:
    """The last complete hour was busy (``unusual_hours_min_requests``) at an hour of the day (local
    time) that held under ``unusual_hours_max_share`` of the app × company's requests over the learning
    days. Needs the full learning period: without it, nothing is unusual yet."""
    zone = ZoneInfo(policy.unusual_hours_timezone)
    last = window.current - HOUR
    learn_from = last - timedelta(days=policy.unusual_hours_learning_days)
    past: dict[Pair, list[Hour]] = defaultdict(list)
    for h in history:
        if learn_from <= h.hour < last:
            past[(h.app_id, h.company_id)].append(h)
    findings = []
    for pair, hours in window.by_pair.items():
        requests = sum(h.requests for h in hours if h.hour == last)
        learned = past.get(pair, [])
        if requests < policy.unusual_hours_min_requests or not learned:
            continue
        if since.get(pair, last) > learn_from:
            continue  # still learning this pair's rhythm
        local_hour = last.astimezone(zone).hour
        total = sum(h.requests for h in learned)
        at_this_hour = sum(h.requests for h in learned if h.hour.astimezone(zone).hour == local_hour)
        share = at_this_hour / total if total else 0.0
        if share < policy.unusual_hours_max_share:
            findings.append(
                Finding(
                    Detector.UNUSUAL_HOURS,
                    Severity.MEDIUM,
                    pair[0],
                    pair[1],
                    observed={"requests": requests, "local_hour": local_hour},
                    baseline={
                        "share_at_this_hour": round(share, 4),
                        "max_share": policy.unusual_hours_max_share,
                        "learning_days": policy.unusual_hours_learning_days,
                        "timezone": policy.unusual_hours_timezone,
                    },
                    window_start=last,
                    window_end=window.current,
                )
            )
    return findings
