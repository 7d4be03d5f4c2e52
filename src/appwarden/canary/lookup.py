"""Canary lookups for other packages: which people are canaries, and to whom each was issued.

Attribution asks these instead of reading ``canaries``: a matched canary names its source exactly (the
one app, company and connection it was issued to).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.canary.models import Canary
from appwarden.marketplace.service import app_slugs
from appwarden.oauth.service import connection_public_ids
from appwarden.platform.directory import company_names, home_stores

_CHUNK = 30_000  # ids per IN list (SQLite's bound-parameter limit)


def canary_ids(
    session: Session, *, app_ids: Collection[int] | None = None, company_ids: Collection[int] | None = None
) -> BitMap:
    """The customer ids of every canary, or of those issued to ``app_ids`` / in ``company_ids``."""
    query = select(Canary.customer_id)
    if app_ids is not None:
        query = query.where(Canary.app_id.in_(list(app_ids)))
    if company_ids is not None:
        query = query.where(Canary.company_id.in_(list(company_ids)))
    return BitMap(session.scalars(query))


@dataclass(frozen=True, slots=True)
class CanaryHit:
    """A canary found among some people: where it was issued (public ids, never values)."""

    app: str
    company: str
    store: str
    connection: str
    issued_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "company": self.company,
            "store": self.store,
            "connection": self.connection,
            "issued_at": self.issued_at.isoformat(),
        }


def canary_hits(session: Session, canaries: BitMap) -> list[CanaryHit]:
    """The exact app, company, home store and connection of each of ``canaries`` (canary customer ids,
    e.g. matched people ∩ :func:`canary_ids`), sorted by app, company, connection and issue time."""
    # Canaries are a few per connection: callers intersect their people with all of them first, rather
    # than sending every person to SQL.
    ids = list(canaries)
    issued: list[tuple[int, int, int, int, datetime]] = []
    for start in range(0, len(ids), _CHUNK):
        query = select(
            Canary.customer_id, Canary.app_id, Canary.company_id, Canary.connection_id, Canary.issued_at
        ).where(Canary.customer_id.in_(ids[start : start + _CHUNK]))
        issued.extend((cus, app, co, con, at) for cus, app, co, con, at in session.execute(query))
    if not issued:
        return []
    slugs = app_slugs(session, {app for _, app, _, _, _ in issued})
    companies = company_names(session, {co for _, _, co, _, _ in issued})
    connections = connection_public_ids(session, {con for _, _, _, con, _ in issued})
    stores = home_stores(session, [cus for cus, _, _, _, _ in issued])
    hits = [
        CanaryHit(slugs[app], companies[co].public_id, stores[cus], connections[con], at)
        for cus, app, co, con, at in issued
        if cus in stores
    ]
    return sorted(hits, key=lambda h: (h.app, h.company, h.connection, h.issued_at.isoformat()))


@dataclass(frozen=True, slots=True)
class IssuedCanary:
    """To whom one canary was issued (internal ids), for checks above the canary package."""

    customer_id: int
    app_id: int
    company_id: int
    connection_id: int


def issued_canaries(session: Session, customer_ids: Collection[int]) -> list[IssuedCanary]:
    """The issue of each of ``customer_ids`` that is a canary, by customer id."""
    ids = sorted(customer_ids)
    found: list[IssuedCanary] = []
    for start in range(0, len(ids), _CHUNK):
        query = select(Canary.customer_id, Canary.app_id, Canary.company_id, Canary.connection_id).where(
            Canary.customer_id.in_(ids[start : start + _CHUNK])
        )
        found.extend(IssuedCanary(*row) for row in session.execute(query))
    return sorted(found, key=lambda c: c.customer_id)
