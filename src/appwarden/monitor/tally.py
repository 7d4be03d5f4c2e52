"""The write path's counters: each worker tallies deliveries and refusals in memory, per app × company
× hour, and folds its tally into ``monitor_hours`` from the background run.

Noting a delivery is a dict lookup and a bitmap OR under a lock (microseconds, no I/O), so the data
API's hot path does not wait on the monitor. Counts add and bitmaps union, so any number of workers
fold into the same rows correctly, in any order. The cost: a worker that dies loses what it tallied
since its last fold (one run interval); the ledger still has every delivery.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from pyroaring import BitMap
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from appwarden.bitmaps import to_bitmap
from appwarden.monitor.models import DeliveryHour

_hours = cast(Table, DeliveryHour.__table__)
REFUSAL_STATUSES = (401, 403, 404)
_EMPTY = BitMap().serialize()
_ZERO = {
    "requests": 0,
    "persons": 0,
    "refused_401": 0,
    "refused_403": 0,
    "refused_404": 0,
    "after_revocation": 0,
    "after_kill": 0,
}


class LateCall(StrEnum):
    """A refused call that is a signal in itself, counted apart from its status (``monitor.probing``)."""

    AFTER_REVOCATION = "after_revocation"  # a revoked token presented again
    AFTER_KILL = "after_kill"  # a call of an app the kill switch delisted


def hour_of(at: datetime) -> datetime:
    """The start of ``at``'s hour."""
    return at.replace(minute=0, second=0, microsecond=0)


@dataclass
class HourCounts:
    requests: int = 0
    persons: int = 0
    people: BitMap = field(default_factory=BitMap)
    refused: dict[int, int] = field(default_factory=dict)
    late: dict[LateCall, int] = field(default_factory=dict)
    restricted: BitMap = field(default_factory=BitMap)  # people named in restricted-token mints

    def merge(self, other: HourCounts) -> None:
        self.requests += other.requests
        self.persons += other.persons
        self.people |= other.people
        for status, n in other.refused.items():
            self.refused[status] = self.refused.get(status, 0) + n
        for kind, n in other.late.items():
            self.late[kind] = self.late.get(kind, 0) + n
        self.restricted |= other.restricted


Key = tuple[int, int, datetime]  # app id, company id, hour


class Tally:
    """One worker's counts since its last fold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Key, HourCounts] = {}

    def delivered(
        self, app_id: int, company_id: int, deliveries: Mapping[Any, Iterable[int] | Any], at: datetime
    ) -> None:
        """Note one recorded response: its people (the union over its fields) and one request."""
        people = BitMap()
        seen: set[int] = set()
        for ids in deliveries.values():
            if id(ids) not in seen:  # the broker passes one id array for several fields
                seen.add(id(ids))
                people |= to_bitmap(ids)
        with self._lock:
            counts = self._counts.setdefault((app_id, company_id, hour_of(at)), HourCounts())
            counts.requests += 1
            counts.persons += len(people)
            counts.people |= people

    def refused(
        self, app_id: int, company_id: int, status: int, at: datetime, late: LateCall | None = None
    ) -> None:
        """Note one refused call (401 revoked or expired token, 403, 404) of a known app and company;
        ``late`` says it came after the token's revocation or the app's kill (counted apart too)."""
        if status not in REFUSAL_STATUSES:
            return
        with self._lock:
            counts = self._counts.setdefault((app_id, company_id, hour_of(at)), HourCounts())
            counts.refused[status] = counts.refused.get(status, 0) + 1
            if late is not None:
                counts.late[late] = counts.late.get(late, 0) + 1

    def restricted_minted(
        self, app_id: int, company_id: int, customer_ids: Iterable[int], at: datetime
    ) -> None:
        """Note the people a restricted token was minted for (``restricted_token_volume``)."""
        people = to_bitmap(customer_ids)
        with self._lock:
            self._counts.setdefault((app_id, company_id, hour_of(at)), HourCounts()).restricted |= people

    def take(self) -> dict[Key, HourCounts]:
        """Everything tallied so far, leaving the tally empty."""
        with self._lock:
            taken, self._counts = self._counts, {}
        return taken

    def give_back(self, taken: Mapping[Key, HourCounts]) -> None:
        """Return counts whose fold failed, to be folded next time."""
        with self._lock:
            for key, counts in taken.items():
                self._counts.setdefault(key, HourCounts()).merge(counts)

    def fold(self, session: Session) -> int:
        """Add the tally into ``monitor_hours`` in ``session``'s transaction; how many rows it touched.
        On failure the counts are kept for the next fold."""
        taken = self.take()
        try:
            for key, counts in sorted(taken.items(), key=lambda kv: kv[0]):  # one lock order everywhere
                _fold_one(session, key, counts)
            session.flush()
        except BaseException:
            self.give_back(taken)
            raise
        return len(taken)


def _fold_one(session: Session, key: Key, counts: HourCounts) -> None:
    app_id, company_id, hour = key
    conn = session.connection()
    # The row first (a concurrent first fold of the same hour by another worker is not an error), then
    # read it under its row lock and add to it.
    ins = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        ins(_hours)
        .values(app_id=app_id, company_id=company_id, hour=hour, people=_EMPTY, **_ZERO)
        .on_conflict_do_nothing(index_elements=["app_id", "company_id", "hour"])
    )
    where = (_hours.c.app_id == app_id, _hours.c.company_id == company_id, _hours.c.hour == hour)
    columns = (_hours.c.id, _hours.c.people, _hours.c.restricted_people)
    row = conn.execute(select(*columns).where(*where).with_for_update()).one()
    people = BitMap.deserialize(bytes(row.people)) | counts.people
    people.run_optimize()
    restricted = {}
    if counts.restricted:
        named = counts.restricted
        if row.restricted_people is not None:
            named = BitMap.deserialize(bytes(row.restricted_people)) | named
        named.run_optimize()
        restricted = {"restricted_people": named.serialize()}
    conn.execute(
        update(_hours)
        .where(_hours.c.id == row.id)
        .values(
            requests=_hours.c.requests + counts.requests,
            persons=_hours.c.persons + counts.persons,
            people=people.serialize(),
            refused_401=_hours.c.refused_401 + counts.refused.get(401, 0),
            refused_403=_hours.c.refused_403 + counts.refused.get(403, 0),
            refused_404=_hours.c.refused_404 + counts.refused.get(404, 0),
            after_revocation=_hours.c.after_revocation + counts.late.get(LateCall.AFTER_REVOCATION, 0),
            after_kill=_hours.c.after_kill + counts.late.get(LateCall.AFTER_KILL, 0),
            **restricted,
        )
    )
