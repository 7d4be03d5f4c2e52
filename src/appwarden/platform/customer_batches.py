"""Customers' values across every company, for the derived indexes the platform keeps in step (the
blind index): the count, keyset batches for a rebuild, and the rows of a few ids for a refresh.

Plain-column reads (Core rows, no ORM objects) on the caller's transaction: a rebuild reads millions.
Each row is ``(id, *fields)`` in the order the fields were asked for.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appwarden.platform.customer_rows import PERSON_FIELDS
from appwarden.platform.models import Customer


def _columns(fields: Sequence[str]) -> list[Any]:
    unknown = [f for f in fields if f not in PERSON_FIELDS]
    if unknown:
        raise ValueError(f"not a customer field: {unknown[0]!r}")
    return [Customer.id, *(getattr(Customer, f) for f in fields)]


def customer_count(session: Session) -> int:
    """How many customers the platform has (canaries included)."""
    return int(session.scalar(select(func.count()).select_from(Customer)) or 0)


def batch_after(session: Session, after_id: int, limit: int, fields: Sequence[str]) -> Sequence[Any]:
    """The next ``limit`` customers with an id above ``after_id``, in id order (a keyset page)."""
    query = select(*_columns(fields)).where(Customer.id > after_id).order_by(Customer.id).limit(limit)
    return session.execute(query).all()


def rows_of(session: Session, customer_ids: Collection[int], fields: Sequence[str]) -> Sequence[Any]:
    """The rows of those of ``customer_ids`` that exist (any company; keep the collection small)."""
    return session.execute(select(*_columns(fields)).where(Customer.id.in_(list(customer_ids)))).all()
