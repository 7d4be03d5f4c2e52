"""Counts and whole-platform reads for callers that look at the platform from above (the demo's plan
and summary, its leaked dump): how many companies, stores, customers and sales there are, and
customers' home stores and contact rows by internal id. Plain-column reads, no ORM objects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appwarden.platform.customer_homes import customer_homes
from appwarden.platform.models import Company, Customer, Store, Transaction

_CHUNK = 20_000  # ids per IN list (SQLite's bound-parameter limit)


@dataclass(frozen=True, slots=True)
class PlatformCounts:
    """How big the platform is: canary customers are not counted among ``customers``."""

    companies: int
    stores: int
    customers: int


def platform_counts(session: Session) -> PlatformCounts:
    """Companies, stores and real (non-canary) customers on the platform."""

    def count(query: Any) -> int:
        return int(session.scalar(query) or 0)

    return PlatformCounts(
        companies=count(select(func.count()).select_from(Company)),
        stores=count(select(func.count()).select_from(Store)),
        customers=count(select(func.count()).select_from(Customer).where(Customer.is_canary.is_(False))),
    )


def customers_per_company(session: Session) -> dict[int, int]:
    """``{company id: customers}``, canaries included; companies with none are absent."""
    query = select(Customer.company_id, func.count()).group_by(Customer.company_id)
    return {company_id: n for company_id, n in session.execute(query)}


def transactions_per_company(session: Session) -> dict[int, int]:
    """``{company id: sales}``; companies with none are absent."""
    query = select(Transaction.company_id, func.count()).group_by(Transaction.company_id)
    return {company_id: n for company_id, n in session.execute(query)}


def home_stores_by_id(session: Session) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every customer's (id, home store id) as int64 arrays sorted by id, for vectorised lookups
    (``np.searchsorted`` on the ids); read in one pass per driver (``customer_homes``)."""
    company_ids = list(session.scalars(select(Company.id)))
    ids, homes = customer_homes(session, company_ids)
    order = np.argsort(ids, kind="stable")
    # customer_homes marks canaries with a negated store id; here every store id is itself.
    return ids[order], np.abs(homes[order])


def contact_rows(session: Session, customer_ids: Sequence[int]) -> Iterator[tuple[str, str | None, str]]:
    """(name, phone, home store name) of each of ``customer_ids`` that exists, in id order; read in
    chunks, so a caller can stream hundreds of thousands."""
    ids = sorted(customer_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Customer.name, Customer.phone, Store.name)
            .join(Store, Store.id == Customer.home_store_id)
            .where(Customer.id.in_(ids[start : start + _CHUNK]))
            .order_by(Customer.id)
        )
        yield from ((name, phone, store) for name, phone, store in rows)
