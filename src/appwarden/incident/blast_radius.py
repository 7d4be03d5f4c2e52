"""Blast radius: how many distinct people had which fields delivered, in which mode, per company and store.

Counts come from the ledger's bitmap index (one roaring bitmap per app × company × field × mode), so
"distinct people" is a union of bitmaps, never a ``COUNT(DISTINCT …)`` over delivery rows. Several apps
in one incident give the union; ``exposed`` = raw ∪ masked (a token is pseudonymous and reveals
nothing by itself). Canary customers are taken out of every count and reported separately.

The blast radius reads no other package's tables: the bitmaps come from the ledger
(:func:`appwarden.ledger.exposure.received_as_of`), people per store ``|exposed ∩ store members|`` and the
canaries from the platform's store membership bitmaps (:mod:`appwarden.platform.membership`), so no
customer row is read.

The index is cumulative, so a blast radius *as of* an earlier time is rebuilt from the ledger entries
recorded up to then (their payload bitmaps); when nothing was recorded after ``as_of`` the index is the
same answer and is used instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import InvalidInput
from appwarden.incident.service import add_timeline, get_incident, incident_apps
from appwarden.incident.vocabulary import TimelineKind
from appwarden.ledger.chain import Key
from appwarden.ledger.exposure import PerCompany, received_as_of, received_replayed
from appwarden.marketplace.scopes import Mode
from appwarden.platform.directory import company_names, store_names
from appwarden.platform.membership import StoreMembership, store_membership

EXPOSING = (Mode.RAW, Mode.MASKED)  # modes that reveal the value (masked still reveals part of it)


@dataclass(frozen=True, slots=True)
class FieldCounts:
    """Distinct people who had one field delivered, per mode; ``exposed`` = raw ∪ masked."""

    raw: int = 0
    masked: int = 0
    token: int = 0
    exposed: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"raw": self.raw, "masked": self.masked, "token": self.token, "exposed": self.exposed}


@dataclass(frozen=True, slots=True)
class StoreCount:
    """People whose home store is this store and who were exposed."""

    id: str
    name: str
    persons_exposed: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "persons_exposed": self.persons_exposed}


@dataclass(frozen=True, slots=True)
class CompanyRadius:
    """One affected company (a data controller that gets a notice) and its affected stores."""

    id: str
    name: str
    persons_exposed: int
    fields: Mapping[str, FieldCounts]
    stores: tuple[StoreCount, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "persons_exposed": self.persons_exposed,
            "fields": {
                name: {"exposed": c.exposed, "raw": c.raw, "masked": c.masked, "token": c.token}
                for name, c in self.fields.items()
            },
            "stores": [store.to_dict() for store in self.stores],
        }


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """The blast radius of an incident (docs/architecture.md "Blast radius JSON")."""

    incident: str
    apps: tuple[str, ...]
    as_of: datetime
    fields: Mapping[str, FieldCounts]
    persons_exposed: int
    canaries_excluded: int
    companies: tuple[CompanyRadius, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, keys in the order of docs/architecture.md."""
        return {
            "incident": self.incident,
            "apps": list(self.apps),
            "as_of": format_time(self.as_of),
            "fields": {name: counts.to_dict() for name, counts in self.fields.items()},
            "persons_exposed": self.persons_exposed,
            "canaries_excluded": self.canaries_excluded,
            "companies": [company.to_dict() for company in self.companies],
        }

    def totals(self) -> dict[str, Any]:
        """What the incident timeline keeps of each computation (the counts, not the store lists)."""
        return {
            "as_of": format_time(self.as_of),
            "persons_exposed": self.persons_exposed,
            "fields": {name: counts.to_dict() for name, counts in self.fields.items()},
            "companies": len(self.companies),
            "stores": sum(len(c.stores) for c in self.companies),
            "canaries_excluded": self.canaries_excluded,
        }


def format_time(at: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (seconds unless the time has a fraction)."""
    at = at.astimezone(UTC)
    spec = "seconds" if at.microsecond == 0 else "microseconds"
    return at.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An ``--as-of``/``as_of`` value: ISO 8601 date or date-time; without an offset it is UTC."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"as-of {text!r} is not an ISO 8601 time (e.g. 2026-01-08T11:50:00Z)", code="invalid_parameter"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def compute_blast_radius(
    db_or_session: Database | Session, incident_public_id: str, *, as_of: datetime | None = None
) -> BlastRadius:
    """The blast radius of ``incident_public_id`` now, or from deliveries recorded at or before ``as_of``.

    Raises ``NotFound(code="incident_not_found")`` for an unknown incident.
    """
    if isinstance(db_or_session, Session):
        return _compute(db_or_session, incident_public_id, as_of)
    with db_or_session.sessionmaker() as session:
        if not db_or_session.is_sqlite:
            # One snapshot for every read (the as-of check, the bitmaps, the customers): under READ
            # COMMITTED a delivery landing between them could be counted against an earlier as-of.
            # SQLite's BEGIN IMMEDIATE already gives that.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return _compute(session, incident_public_id, as_of)


def _compute(session: Session, ref: str, as_of: datetime | None, *, force_scan: bool = False) -> BlastRadius:
    incident = get_incident(session, ref)
    apps = incident_apps(session, incident)
    app_ids = [app.id for app in apps]
    at = utcnow() if as_of is None else as_of.astimezone(UTC)
    if force_scan:  # tests: the replay must give the index's answer
        per_company = received_replayed(session, app_ids, at)
    else:
        per_company = received_as_of(session, app_ids, None if as_of is None else at)
    members = store_membership(session, list(per_company))
    return summarise(session, ref, tuple(app.slug for app in apps), at, per_company, members)


def record_counts(db: Database, radius: BlastRadius, *, actor: str) -> None:
    """Add a ``counts`` entry with the totals to the incident's timeline (committed)."""
    totals = radius.totals()
    fields = ", ".join(f"{name} {c.exposed:,}" for name, c in radius.fields.items())
    text = (
        f"blast radius as of {totals['as_of']}: {radius.persons_exposed:,} people exposed"
        f" ({fields or 'no fields'}) in {totals['companies']} companies, {totals['stores']} stores"
    )
    with db.session() as session:
        add_timeline(
            session,
            get_incident(session, radius.incident),
            actor=actor,
            kind=TimelineKind.COUNTS,
            text=text,
            **totals,
        )


def summarise(
    session: Session,
    ref: str,
    apps: tuple[str, ...],
    at: datetime,
    per_company: PerCompany,
    members: StoreMembership,
) -> BlastRadius:
    """Counts from the per-company bitmaps and the companies' store membership bitmaps: canaries
    removed, fields, companies and their stores."""
    canaries = members.canaries()
    delivered_canaries = BitMap()
    exposed_by_company: dict[int, BitMap] = {}
    fields_by_company: dict[int, dict[str, FieldCounts]] = {}
    for company_id, keys in per_company.items():
        delivered_canaries |= canaries & BitMap.union(BitMap(), *keys.values())
        clean = {key: bitmap - canaries for key, bitmap in keys.items()}
        fields_by_company[company_id] = _field_counts(clean)
        exposed = [bitmap for (_, mode), bitmap in clean.items() if mode in EXPOSING]
        exposed_by_company[company_id] = BitMap.union(BitMap(), *exposed)
    totals = _sum_fields(fields_by_company.values())
    affected = [cid for cid, exposed in exposed_by_company.items() if exposed]
    companies = _companies(session, affected, exposed_by_company, fields_by_company, members)
    return BlastRadius(
        incident=ref,
        apps=apps,
        as_of=at,
        fields=totals,
        # A person belongs to one company, so the union across companies is the sum.
        persons_exposed=sum(len(exposed_by_company[cid]) for cid in affected),
        canaries_excluded=len(delivered_canaries),
        companies=companies,
    )


def _field_counts(keys: Mapping[Key, BitMap]) -> dict[str, FieldCounts]:
    names = sorted({name for name, _ in keys})
    counts: dict[str, FieldCounts] = {}
    empty = BitMap()
    for name in names:
        by_mode = {mode: keys.get((name, mode), empty) for mode in Mode}
        exposed = by_mode[Mode.RAW] | by_mode[Mode.MASKED]
        if not (exposed or by_mode[Mode.TOKEN]):
            continue
        counts[name] = FieldCounts(
            raw=len(by_mode[Mode.RAW]),
            masked=len(by_mode[Mode.MASKED]),
            token=len(by_mode[Mode.TOKEN]),
            exposed=len(exposed),
        )
    return counts


def _sum_fields(per_company: Iterable[Mapping[str, FieldCounts]]) -> dict[str, FieldCounts]:
    """Totals across companies (their people are disjoint, so sums are distinct counts)."""
    sums: dict[str, list[int]] = {}
    for fields in per_company:
        for name, c in fields.items():
            acc = sums.setdefault(name, [0, 0, 0, 0])
            for i, value in enumerate((c.raw, c.masked, c.token, c.exposed)):
                acc[i] += value
    return {name: FieldCounts(*sums[name]) for name in sorted(sums)}


def _companies(
    session: Session,
    affected: list[int],
    exposed_by_company: Mapping[int, BitMap],
    fields_by_company: Mapping[int, dict[str, FieldCounts]],
    members: StoreMembership,
) -> tuple[CompanyRadius, ...]:
    """Affected companies with their affected stores (nobody exposed → left out)."""
    if not affected:
        return ()
    # Exposed people per home store: one intersection cardinality per store of an affected company,
    # against that company's exposed people (canaries are already out of them).
    store_counts: dict[int, int] = {}
    for cid in affected:
        store_counts.update(members.store_counts(exposed_by_company[cid], companies=[cid]))
    names = company_names(session, affected)
    stores: dict[int, list[StoreCount]] = {}
    for store in store_names(session, affected):
        count = store_counts.get(store.id, 0)
        if count:
            stores.setdefault(store.company_id, []).append(StoreCount(store.public_id, store.name, count))
    result = [
        CompanyRadius(
            id=names[cid].public_id,
            name=names[cid].name,
            persons_exposed=len(exposed_by_company[cid]),
            fields=fields_by_company[cid],
            stores=tuple(sorted(stores.get(cid, []), key=lambda s: (-s.persons_exposed, s.id))),
        )
        for cid in affected
    ]
    return tuple(sorted(result, key=lambda c: (-c.persons_exposed, c.id)))
