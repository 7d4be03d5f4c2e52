"""The write path's counters: each worker tallies deliveries and refusals in memory, per app × company
× hour, and folds its tally into ``monitor_hours`` from the background run.

Noting a delivery is a dict lookup and a bitmap OR under a lock (microseconds, no I/O), so the data
API's hot path does not wait on the monitor. Counts add and bitmaps union, so any number of workers
fold into the same rows correctly, in any order. The cost: a worker that dies loses what it tallied
since its last fold (one run interval); the ledger still has every delivery.

Besides the response's people, a delivery notes each field's people (``over_baseline`` counts per
field) and where it came from: the access token (resolved to its grant at the fold) and the client
network (``monitor.sources``). A source's first sighting per app × company goes to ``monitor_sources``
with the people delivered through it in its first hours (``new_credential_volume``).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from pyroaring import BitMap
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from appwarden.bitmaps import to_bitmap
from appwarden.monitor.models import DeliveryHour, SourceSighting
from appwarden.monitor.sources import TOKEN, SourceKind, credential_keys, network_of

_hours = cast(Table, DeliveryHour.__table__)
_sources = cast(Table, SourceSighting.__table__)
Source = tuple[str, str]  # (kind, key): (TOKEN, token id) until the fold resolves it to its grant
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
    fields: dict[str, BitMap] = field(default_factory=dict)  # distinct people per customer field
    sources: dict[Source, tuple[datetime, BitMap]] = field(default_factory=dict)  # first at, people

    def merge(self, other: HourCounts) -> None:
        self.requests += other.requests
        self.persons += other.persons
        self.people |= other.people
        for status, n in other.refused.items():
            self.refused[status] = self.refused.get(status, 0) + n
        for kind, n in other.late.items():
            self.late[kind] = self.late.get(kind, 0) + n
        self.restricted |= other.restricted
        for name, ids in other.fields.items():
            self.fields[name] = self.fields.get(name, BitMap()) | ids
        for source, (at, ids) in other.sources.items():
            self.note_source(source, at, ids)

    def note_source(self, source: Source, at: datetime, people: BitMap) -> None:
        noted = self.sources.get(source)
        if noted is None:
            self.sources[source] = (at, BitMap(people))  # a copy: ``people`` is shared with the hour
            return
        noted[1].update(people)  # in place: the write path allocates as little as it can
        if at < noted[0]:
            self.sources[source] = (at, noted[1])


Key = tuple[int, int, datetime]  # app id, company id, hour


class Tally:
    """One worker's counts since its last fold."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Key, HourCounts] = {}

    def delivered(
        self,
        app_id: int,
        company_id: int,
        deliveries: Mapping[Any, Iterable[int] | Any],
        at: datetime,
        *,
        token_id: int | None = None,
        client: str | None = None,
    ) -> None:
        """Note one recorded response: its people (the union over its fields, and per field), one
        request, and the access token and client address it came through (``client`` is reduced to
        its network here; the address itself is not kept)."""
        people = BitMap()
        columns: dict[int, BitMap] = {}
        per_field: dict[str, BitMap] = {}
        for key, ids in deliveries.items():
            bitmap = columns.get(id(ids))
            if bitmap is None:  # the broker passes one id array for several fields
                bitmap = columns[id(ids)] = to_bitmap(ids)
                people |= bitmap
            name = str(key[0] if isinstance(key, tuple) else key)  # (field, mode) from the broker
            per_field[name] = per_field[name] | bitmap if name in per_field else bitmap
        network = network_of(client)
        with self._lock:
            counts = self._counts.setdefault((app_id, company_id, hour_of(at)), HourCounts())
            counts.requests += 1
            counts.persons += len(people)
            counts.people |= people
            for name, ids in per_field.items():
                if name in counts.fields:
                    counts.fields[name].update(ids)
                else:
                    counts.fields[name] = BitMap(ids)  # a copy: one bitmap may serve several fields
            if token_id is not None:
                counts.note_source((TOKEN, str(token_id)), at, people)
            if network is not None:
                counts.note_source((SourceKind.NETWORK.value, network), at, people)

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

    def fold(self, session: Session, *, source_hours: int = 24) -> int:
        """Add the tally into ``monitor_hours`` (and first sightings into ``monitor_sources``, counting a
        source's people for its first ``source_hours``) in ``session``'s transaction; how many hour rows
        it touched. On failure the counts are kept for the next fold."""
        taken = self.take()
        try:
            tokens = {int(k) for c in taken.values() for kind, k in c.sources if kind == TOKEN}
            grants = credential_keys(session, tokens) if tokens else {}
            for key, counts in sorted(taken.items(), key=lambda kv: kv[0]):  # one lock order everywhere
                _fold_one(session, key, counts)
                sources = _resolved(counts.sources, grants)
                for source in sorted(sources):
                    _fold_source(session, key, source, *sources[source], timedelta(hours=source_hours))
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
    columns = (
        _hours.c.id,
        _hours.c.people,
        _hours.c.restricted_people,
        _hours.c.field_bitmaps,
        _hours.c.field_people,
    )
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
    field_bitmaps = dict(row.field_bitmaps or {})
    field_people: dict[str, int] = dict(row.field_people or {})
    for name, ids in counts.fields.items():
        merged = _decode(field_bitmaps[name]) | ids if name in field_bitmaps else BitMap(ids)
        merged.run_optimize()
        field_bitmaps[name] = base64.b64encode(merged.serialize()).decode()
        field_people[name] = len(merged)
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
            **({"field_bitmaps": field_bitmaps, "field_people": field_people} if counts.fields else {}),
        )
    )


def _decode(blob: str) -> BitMap:
    return BitMap.deserialize(base64.b64decode(blob))


def _resolved(
    sources: Mapping[Source, tuple[datetime, BitMap]], grants: Mapping[int, str]
) -> dict[Source, tuple[datetime, BitMap]]:
    """The hour's sources with each access token replaced by its grant (tokens of one grant merge; a
    token no longer stored is dropped)."""
    out: dict[Source, tuple[datetime, BitMap]] = {}
    for (kind, key), (at, people) in sources.items():
        if kind == TOKEN:
            grant = grants.get(int(key))
            if grant is None:
                continue
            kind, key = SourceKind.CREDENTIAL.value, grant
        first, seen = out.get((kind, key), (at, BitMap()))
        out[(kind, key)] = (min(first, at), seen | people)
    return out


def _fold_source(
    session: Session, key: Key, source: Source, at: datetime, people: BitMap, counted: timedelta
) -> None:
    """Record the source's first sighting for the app × company (the earliest any worker saw) and add
    the people it delivered in an hour that began within ``counted`` of that sighting."""
    app_id, company_id, hour = key
    kind, source_key = source
    conn = session.connection()
    ins = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        ins(_sources)
        .values(
            app_id=app_id, company_id=company_id, kind=kind, key=source_key, first_seen_at=at, people=_EMPTY
        )
        .on_conflict_do_nothing(index_elements=["app_id", "company_id", "kind", "key"])
    )
    where = (
        _sources.c.app_id == app_id,
        _sources.c.company_id == company_id,
        _sources.c.kind == kind,
        _sources.c.key == source_key,
    )
    row = conn.execute(
        select(_sources.c.id, _sources.c.first_seen_at, _sources.c.people).where(*where).with_for_update()
    ).one()
    first = min(row.first_seen_at, at)
    if hour >= hour_of(first) + counted:
        return  # an established source: nothing more to count
    seen = BitMap.deserialize(bytes(row.people)) | people
    seen.run_optimize()
    conn.execute(
        update(_sources).where(_sources.c.id == row.id).values(first_seen_at=first, people=seen.serialize())
    )
