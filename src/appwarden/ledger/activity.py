"""Deliveries over time, for charts: how many ledger entries and people went out per hour or per day.

The security team's dashboard shows every app's deliveries per hour; an app's page and a store owner's
page show one app's (or one company's) over days. Read from ``ledger_entries``' ``recorded_at`` and
``persons`` columns (never the payloads), and bucketed here rather than in SQL, so SQLite and
PostgreSQL give the same buckets. A bucket with no delivery is present with zeros: a chart must show
the quiet hours too, or a night-time pull looks like ordinary traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import InvalidInput
from appwarden.ledger.models import LedgerEntry

MAX_BUCKETS = 24 * 92  # a quarter of hours: enough for any chart, bounded for any caller


class Bucket(StrEnum):
    """How wide one bar of a delivery chart is."""

    HOUR = "hour"
    DAY = "day"


WIDTH = {Bucket.HOUR: timedelta(hours=1), Bucket.DAY: timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class Activity:
    """Deliveries in one bucket starting at ``start`` (UTC): ledger entries and people (summed per
    entry: a person delivered twice counts twice, as the traffic it was)."""

    start: datetime
    entries: int
    people: int


def _floor(at: datetime, bucket: Bucket) -> datetime:
    at = at.astimezone(UTC)
    at = at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if bucket is Bucket.DAY else at


def deliveries(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    bucket: Bucket = Bucket.HOUR,
    app_id: int | None = None,
    company_id: int | None = None,
) -> list[Activity]:
    """Every bucket from the one holding ``since`` to the one holding ``until``, oldest first, with the
    deliveries recorded in it (of one app, of one company, or all). 400 ``range_too_long`` past
    :data:`MAX_BUCKETS` buckets; ``until`` before ``since`` is 400 ``invalid_range``."""
    if until < since:
        raise InvalidInput("the range ends before it starts", code="invalid_range")
    first, last = _floor(since, bucket), _floor(until, bucket)
    step = WIDTH[bucket]
    count = int((last - first) / step) + 1
    if count > MAX_BUCKETS:
        raise InvalidInput(f"at most {MAX_BUCKETS} {bucket.value}s per chart", code="range_too_long")
    query = select(LedgerEntry.recorded_at, LedgerEntry.persons).where(
        LedgerEntry.recorded_at >= first, LedgerEntry.recorded_at < last + step
    )
    if app_id is not None:
        query = query.where(LedgerEntry.app_id == app_id)
    if company_id is not None:
        query = query.where(LedgerEntry.company_id == company_id)
    entries = [0] * count
    people = [0] * count
    for recorded_at, persons in session.execute(query):
        i = int((_floor(recorded_at, bucket) - first) / step)
        entries[i] += 1
        people[i] += int(persons or 0)
    return [Activity(first + i * step, entries[i], people[i]) for i in range(count)]
