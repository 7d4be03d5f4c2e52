"""The ledger's answers to "who received what": the questions the blast radius and attribution ask.

Other packages never read ``ledger_index`` or ``ledger_entries`` themselves; they call these, in their
own session (one snapshot for everything they read):

- :func:`received_as_of` — people per company × (field, mode) that some apps received, now or as of a
  time (the blast radius);
- :func:`holdings_of` — which apps received which of a set of people, per company, field and mode
  (attribution's evidence);
- :func:`delivery_stream` — the apps' deliveries in ledger order (attribution's copy window);
- :func:`people_held` — how many distinct people each app holds, and how many of them raw (risk);
- :func:`received_by_company` — an app's people per company, field and mode, as counts (its page);
- :func:`received_per_app` and :func:`received_after` — each app's people, all of them or those delivered
  after a cutoff per field (what a vendor may still hold under its retention);
- :func:`received_of_person` — the apps that received one person, and what (the erasure requests owed).

Bitmap rows are read as plain-column tuples, on PostgreSQL in binary format (:func:`blob_rows`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.rows import blob_rows, blob_stream
from appwarden.ledger.chain import Key, iter_payload
from appwarden.ledger.models import LedgerEntry, LedgerIndex
from appwarden.ledger.service import KINDS
from appwarden.marketplace.scopes import PII_FIELDS, Mode

PerCompany = dict[int, dict[Key, BitMap]]  # company id -> (field, mode) -> people
Delivery = tuple[datetime, BitMap]  # (recorded_at, people delivered in that entry)


def received_as_of(session: Session, app_ids: Sequence[int], as_of: datetime | None = None) -> PerCompany:
    """Everyone the apps received, per company and (field, mode), OR-ed across the apps.

    Now (``as_of`` None) or from the deliveries recorded at or before ``as_of``. The index is cumulative,
    so it answers unless something was recorded after ``as_of``; then the entries are replayed.
    """
    if as_of is not None and recorded_after(session, app_ids, as_of):
        return received_replayed(session, app_ids, as_of)
    return received_indexed(session, app_ids)


def recorded_after(session: Session, app_ids: Sequence[int], at: datetime) -> bool:
    """Whether any delivery of these apps was recorded after ``at`` (then the index is too new)."""
    query = (
        select(LedgerEntry.seq)
        .where(LedgerEntry.app_id.in_(list(app_ids)), LedgerEntry.recorded_at > at)
        .limit(1)
    )
    return session.scalar(query) is not None


def received_indexed(session: Session, app_ids: Sequence[int]) -> PerCompany:
    """The cumulative index rows of the apps, OR-ed per company and (field, mode) across apps."""
    rows = blob_rows(
        session.connection(),
        select(LedgerIndex.company_id, LedgerIndex.field, LedgerIndex.mode, LedgerIndex.bitmap).where(
            LedgerIndex.app_id.in_(list(app_ids))
        ),
    )
    per_company: PerCompany = {}
    for company_id, field_name, mode, blob in rows:
        _or_into(per_company, company_id, (field_name, mode), BitMap.deserialize(blob))
    return per_company


def received_replayed(session: Session, app_ids: Sequence[int], at: datetime) -> PerCompany:
    """The shape of :func:`received_indexed`, rebuilt from the entry payloads recorded at or before ``at``."""
    query = (
        select(LedgerEntry.company_id, LedgerEntry.payload)
        .where(
            LedgerEntry.app_id.in_(list(app_ids)),
            LedgerEntry.recorded_at <= at,
            LedgerEntry.kind.in_(sorted(KINDS)),  # other kinds (refused calls) deliver nothing
        )
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=2000)
    )
    per_company: PerCompany = {}
    for company_id, payload in session.execute(query):
        for key, raw in iter_payload(payload):
            _or_into(per_company, company_id, key, BitMap.deserialize(bytes(raw)))
    return per_company


def _or_into(per_company: PerCompany, company_id: int, key: Key, bitmap: BitMap) -> None:
    keys = per_company.setdefault(company_id, {})
    if key in keys:
        keys[key] |= bitmap
    else:
        keys[key] = bitmap


@dataclass(frozen=True, slots=True)
class Holding:
    """What one app holds of one field in one mode in one company, narrowed to the people asked about."""

    app_id: int
    company_id: int
    field: str
    mode: str
    people: BitMap  # the asked-about people among those the app received (may be empty)
    received: int  # everyone the app received of this field and mode in the company


def holdings_of(
    session: Session, people: BitMap, *, fields: Collection[str], company_ids: Collection[int]
) -> list[Holding]:
    """Every app's index bitmap of ``fields`` in ``company_ids``, intersected with ``people``.

    One row per (app, company, field, mode) the index holds, including those that hold none of
    ``people`` (their ``received`` still says what the app got).
    """
    if not people or not fields or not company_ids:
        return []
    query = select(
        LedgerIndex.app_id,
        LedgerIndex.company_id,
        LedgerIndex.field,
        LedgerIndex.mode,
        LedgerIndex.bitmap,
        LedgerIndex.cardinality,
    ).where(LedgerIndex.field.in_(list(fields)), LedgerIndex.company_id.in_(list(company_ids)))
    # Streamed: only the intersections are kept, never every app's full bitmap at once.
    return [
        Holding(app_id, company_id, name, mode, BitMap.deserialize(bytes(blob)) & people, cardinality)
        for app_id, company_id, name, mode, blob, cardinality in blob_stream(session.connection(), query)
    ]


def delivery_stream(
    session: Session,
    *,
    app_ids: Sequence[int],
    company_ids: Sequence[int],
    keys: Collection[Key],
) -> Iterator[Delivery]:
    """The apps' entries in the companies, in ``seq`` order, as (time, people delivered under ``keys``).

    Streams (``yield_per``); only the (field, mode) frames in ``keys`` are deserialised, and entries that
    delivered nobody under them are skipped.
    """
    if not app_ids or not company_ids or not keys:
        return
    query = (
        select(LedgerEntry.recorded_at, LedgerEntry.payload)
        .where(
            LedgerEntry.app_id.in_(list(app_ids)),
            LedgerEntry.company_id.in_(list(company_ids)),
            LedgerEntry.kind.in_(sorted(KINDS)),
        )
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=2000)
    )
    for recorded_at, payload in session.execute(query):
        people = BitMap()
        for key, raw in iter_payload(bytes(payload)):
            if key in keys:
                people |= BitMap.deserialize(bytes(raw))
        if people:
            yield recorded_at, people


@dataclass(frozen=True, slots=True)
class PeopleHeld:
    """Distinct people an app received anything of (``held``), and those of them whose identifying
    fields it received at least once raw (``raw``: names and numbers a vendor can call or mail)."""

    held: int
    raw: int

    @property
    def not_raw(self) -> int:
        """People it holds only masked, as tokens or by non-identifying fields."""
        return self.held - self.raw


def people_held(session: Session, app_ids: Collection[int]) -> dict[int, PeopleHeld]:
    """For each of ``app_ids`` (every one answered, zero when it received nothing), the people it holds,
    from the cumulative index: the index rows' bitmaps OR-ed per app, never the entries."""
    held = {app_id: BitMap() for app_id in app_ids}
    raw = {app_id: BitMap() for app_id in app_ids}
    if app_ids:
        query = select(LedgerIndex.app_id, LedgerIndex.field, LedgerIndex.mode, LedgerIndex.bitmap).where(
            LedgerIndex.app_id.in_(list(app_ids))
        )
        for app_id, field_name, mode, blob in blob_stream(session.connection(), query):
            people = BitMap.deserialize(bytes(blob))
            held[app_id] |= people
            if mode == Mode.RAW and field_name in PII_FIELDS:
                raw[app_id] |= people
    return {app_id: PeopleHeld(held=len(held[app_id]), raw=len(raw[app_id])) for app_id in app_ids}


@dataclass(frozen=True, slots=True)
class Received:
    """What one app received of one field in one mode in one company: distinct people, and when it
    first and last received any of them (the app page's "people held per field and per company")."""

    company_id: int
    field: str
    mode: str  # a ``Mode`` value
    people: int
    first_at: datetime
    last_at: datetime


def received_by_company(session: Session, app_id: int, company_id: int | None = None) -> list[Received]:
    """The app's index rows as counts (no bitmap is read), by company, field and mode; optionally of
    one company only (a store owner's view of the app)."""
    query = select(
        LedgerIndex.company_id,
        LedgerIndex.field,
        LedgerIndex.mode,
        LedgerIndex.cardinality,
        LedgerIndex.first_at,
        LedgerIndex.last_at,
    ).where(LedgerIndex.app_id == app_id)
    if company_id is not None:
        query = query.where(LedgerIndex.company_id == company_id)
    query = query.order_by(LedgerIndex.company_id, LedgerIndex.field, LedgerIndex.mode)
    return [Received(*row) for row in session.execute(query)]


def received_per_app(session: Session, app_ids: Collection[int]) -> dict[int, PerCompany]:
    """:func:`received_indexed` kept apart per app: ``{app id: {company id: {(field, mode): people}}}``
    (every app answered, empty when it received nothing)."""
    found: dict[int, PerCompany] = {app_id: {} for app_id in app_ids}
    if found:
        query = select(
            LedgerIndex.app_id,
            LedgerIndex.company_id,
            LedgerIndex.field,
            LedgerIndex.mode,
            LedgerIndex.bitmap,
        ).where(LedgerIndex.app_id.in_(list(found)))
        for app_id, company_id, field_name, mode, blob in blob_stream(session.connection(), query):
            _or_into(found[app_id], company_id, (field_name, mode), BitMap.deserialize(bytes(blob)))
    return found


def received_after(session: Session, app_id: int, cutoffs: Mapping[str, datetime]) -> PerCompany:
    """What the app received of each field in ``cutoffs`` in deliveries recorded after that field's
    cutoff, per company and (field, mode): the people whose latest delivery of the field is newer than
    the cutoff (retention: a vendor may still hold them). One pass over the entries after the oldest
    cutoff; fields not in ``cutoffs`` are not read."""
    if not cutoffs:
        return {}
    query = (
        select(LedgerEntry.recorded_at, LedgerEntry.company_id, LedgerEntry.payload)
        .where(
            LedgerEntry.app_id == app_id,
            LedgerEntry.recorded_at > min(cutoffs.values()),
            LedgerEntry.kind.in_(sorted(KINDS)),
        )
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=2000)
    )
    per_company: PerCompany = {}
    for recorded_at, company_id, payload in session.execute(query):
        for key, raw in iter_payload(bytes(payload)):
            cutoff = cutoffs.get(key[0])
            if cutoff is not None and recorded_at > cutoff:
                _or_into(per_company, company_id, key, BitMap.deserialize(bytes(raw)))
    return per_company


def received_of_person(session: Session, company_id: int, customer_id: int) -> dict[int, set[Key]]:
    """Every app that received this person (any mode), with the (field, mode) keys it received, from the
    index alone: it answers for a customer already deleted from ``customers`` too (an erasure owed)."""
    found: dict[int, set[Key]] = {}
    query = select(LedgerIndex.app_id, LedgerIndex.field, LedgerIndex.mode, LedgerIndex.bitmap).where(
        LedgerIndex.company_id == company_id
    )
    for app_id, field_name, mode, blob in blob_stream(session.connection(), query):
        if customer_id in BitMap.deserialize(bytes(blob)):
            found.setdefault(app_id, set()).add((field_name, mode))
    return found
