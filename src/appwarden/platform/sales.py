"""A company's transactions (sales at its stores), for the data API (``broker``): the one place its
reads of ``transactions`` are written.

Plain-column reads on the session's current transaction (Core rows, no ORM objects), scoped to one
company: every id first (the broker orders them its own way), then the rows of one page by id.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.platform.models import Store, Transaction


def transaction_ids(session: Session, company_id: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Every transaction id of the company, ascending, as one int64 array; one query."""
    every = select(Transaction.id).where(Transaction.company_id == company_id).order_by(Transaction.id)
    return np.fromiter(session.connection().execute(every).scalars(), np.int64)


def transaction_rows(session: Session, company_id: int, ids: Collection[int]) -> Sequence[Any]:
    """``(id, store public id, amount, occurred_at, customer internal id or None)`` rows of those of
    ``ids`` that are the company's transactions, in no particular order; one query."""
    if not ids:
        return []
    statement = (
        select(
            Transaction.id,
            Store.public_id,
            Transaction.amount,
            Transaction.occurred_at,
            Transaction.customer_id,
        )
        .join(Store, Store.id == Transaction.store_id)
        .where(Transaction.company_id == company_id, Transaction.id.in_(list(ids)))
    )
    return session.connection().execute(statement).all()
