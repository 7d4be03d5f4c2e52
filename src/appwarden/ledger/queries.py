"""Read-side ledger queries: who received a customer's data, and paging through entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.session import Database
from appwarden.errors import InvalidInput, NotFound
from appwarden.ledger.chain import Key, iter_payload
from appwarden.ledger.models import LedgerEntry, LedgerIndex
from appwarden.marketplace.service import app_id_of, app_slugs
from appwarden.platform.directory import company_id_of, company_names, customer_of


def who_has(db: Database, customer_public_id: str) -> list[dict[str, Any]]:
    """:func:`who_has_in` in a session of its own."""
    with db.sessionmaker() as session:
        return who_has_in(session, customer_public_id)


def who_has_in(session: Session, customer_public_id: str) -> list[dict[str, Any]]:
    """Every app, field and mode the customer's data went to, with first/last time and entry count.

    The index narrows the scan to the (app, field, mode) keys whose bitmap holds the person; only those
    apps' entries in the customer's company are then read to get the times and counts.
    """
    customer = customer_of(session, customer_public_id)
    if customer is None:
        raise NotFound(f"no customer {customer_public_id!r}", code="customer_not_found")
    wanted: dict[int, set[Key]] = {}
    index_rows = session.execute(
        select(LedgerIndex.app_id, LedgerIndex.field, LedgerIndex.mode, LedgerIndex.bitmap).where(
            LedgerIndex.company_id == customer.company_id
        )
    )
    for app_id, field, mode, blob in index_rows:
        if customer.id in BitMap.deserialize(blob):
            wanted.setdefault(app_id, set()).add((field, mode))
    if not wanted:
        return []
    slugs = app_slugs(session, list(wanted))
    found: dict[tuple[int, str, str], dict[str, Any]] = {}
    scan = (
        select(LedgerEntry.app_id, LedgerEntry.recorded_at, LedgerEntry.payload)
        .where(LedgerEntry.company_id == customer.company_id, LedgerEntry.app_id.in_(list(wanted)))
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=1000)
    )
    for app_id, recorded_at, payload in session.execute(scan):
        keys = wanted[app_id]
        for key, raw in iter_payload(payload):
            if key in keys and customer.id in BitMap.deserialize(bytes(raw)):
                item = found.setdefault(
                    (app_id, *key),
                    {
                        "app": slugs.get(app_id, str(app_id)),
                        "field": key[0],
                        "mode": key[1],
                        "first_at": recorded_at,
                        "last_at": recorded_at,
                        "entries": 0,
                    },
                )
                item["last_at"] = recorded_at
                item["entries"] += 1
    return sorted(found.values(), key=lambda item: (item["app"], item["field"], item["mode"]))


def list_entries(
    db: Database,
    *,
    app: str | None = None,
    company: str | None = None,
    limit: int = 100,
    after: int | None = None,
) -> dict[str, Any]:
    """A page of entries (newest last, ``after`` = a seq) without payload bytes, with per-field counts.

    ``app`` is a slug and ``company`` a public id; an unknown one is a 404, not an empty page.
    """
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    with db.sessionmaker() as session:
        query = select(LedgerEntry).order_by(LedgerEntry.seq).limit(limit + 1)
        if app is not None:
            app_id = app_id_of(session, app)
            if app_id is None:
                raise NotFound(f"no app {app!r}", code="app_not_found")
            query = query.where(LedgerEntry.app_id == app_id)
        if company is not None:
            company_id = company_id_of(session, company)
            if company_id is None:
                raise NotFound(f"no company {company!r}", code="company_not_found")
            query = query.where(LedgerEntry.company_id == company_id)
        if after is not None:
            query = query.where(LedgerEntry.seq > after)
        rows = session.scalars(query).all()
        page = rows[:limit]
        # The page's apps and companies by their public names (the owners' lookups, one query each).
        slugs = app_slugs(session, {entry.app_id for entry in page})
        companies = company_names(session, {entry.company_id for entry in page})
    data = [
        {
            "seq": entry.seq,
            "recorded_at": entry.recorded_at.isoformat(),
            "request_id": entry.request_id,
            "app": slugs[entry.app_id],
            "company": companies[entry.company_id].public_id,
            "endpoint": entry.endpoint,
            "kind": entry.kind,
            "persons": entry.persons,
            "fields": _field_counts(entry.payload),
            "restricted_token": entry.restricted_token,
            "purpose": entry.purpose,
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        }
        for entry in page
    ]
    next_after = page[-1].seq if len(rows) > limit else None
    return {"data": data, "next_after": next_after}


def _field_counts(payload: bytes) -> dict[str, int]:
    """``{"name:raw": 120, …}``; a mangled payload shows as empty (``verify`` reports it)."""
    try:
        return {f"{f}:{m}": len(BitMap.deserialize(bytes(raw))) for (f, m), raw in iter_payload(payload)}
    except ValueError:
        return {}


def entries_between(
    session: Session,
    *,
    app_id: int,
    since: datetime,
    until: datetime,
    company_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """The seqs of the app's entries (in one company, or all) recorded in ``[since, until)``, the ones
    that delivered the most people first (an alert links the entries behind it)."""
    query = (
        select(LedgerEntry.seq)
        .where(
            LedgerEntry.app_id == app_id, LedgerEntry.recorded_at >= since, LedgerEntry.recorded_at < until
        )
        .order_by(LedgerEntry.persons.desc(), LedgerEntry.seq)
        .limit(limit)
    )
    if company_id is not None:
        query = query.where(LedgerEntry.company_id == company_id)
    return list(session.scalars(query))
