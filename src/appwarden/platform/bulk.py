"""Bulk loading of a whole platform into an empty database: companies, stores, customers, transactions
and products in one go (the demo generator loads 300,000 customers this way).

Companies and stores are few and go in through the ORM (their ids are read back). Customers and
transactions go in with Core executemany in large batches, with their ids passed explicitly (1, 2, …:
the tables are empty), so transactions point at customers without reading them back; the ORM's bulk
path is not used because it falls back to a statement per row when some values are None. The rows
come in as columns (positions, not ids, link them), so the caller never needs an id of its own.

Core goes around the platform's per-row write paths, so the load ends as every bulk load must: with
``service.customers_loaded``, which rebuilds the store membership bitmaps and announces the load (the
blind index rebuilds itself) in the loader's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, insert, text
from sqlalchemy.orm import Session

from appwarden.db.base import public_id
from appwarden.platform.customer_changes import Progress
from appwarden.platform.models import Company, Customer, Product, Store, Transaction
from appwarden.platform.service import customers_loaded

BATCH = 20_000  # rows per executemany
_CUSTOMERS = cast(Table, Customer.__table__)
_TRANSACTIONS = cast(Table, Transaction.__table__)
# The customer columns given as they are stored (a value or None per customer).
_VALUE_COLUMNS = ("name", "name_kana", "phone", "email", "address", "birthday", "gender", "rank")

Ints = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True, slots=True)
class NewCompany:
    """A contract company to load; ``public_id`` is drawn with ``appwarden.db.base.public_id("co")``
    by a caller that needs it before the load (the demo names its stores' mail domains after it)."""

    public_id: str
    name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class NewStore:
    """A store of the company at position ``company`` of the load's companies."""

    company: int
    name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class NewProduct:
    """An item of the company at position ``company``, sold at every one of its stores (``store``
    None) or only at the store at that position of the load's stores."""

    company: int
    store: int | None
    name: str
    price: int


@dataclass(frozen=True, slots=True)
class CustomerColumns:
    """Every customer of the load, one entry per customer in each column: ``company`` and
    ``home_store`` are positions in the load's companies and stores."""

    company: Ints
    home_store: Ints
    name: Sequence[str]
    name_kana: Sequence[str | None]
    phone: Sequence[str | None]
    email: Sequence[str | None]
    address: Sequence[str | None]
    birthday: Sequence[date | None]
    gender: Sequence[str | None]
    points: Ints
    rank: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True, slots=True)
class TransactionColumns:
    """Every sale of the load: ``company`` and ``store`` are positions in the load's companies and
    stores, ``customer`` a position in its customers or -1 for a sale to no member."""

    company: Ints
    store: Ints
    customer: Ints
    amount: Ints
    occurred_at: Sequence[datetime]

    def __len__(self) -> int:
        return len(self.amount)


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the load wrote: internal ids by position, and how many rows of each kind."""

    company_ids: list[int]
    store_ids: list[int]
    customers: int
    transactions: int
    products: int


def load(
    session: Session,
    *,
    companies: Sequence[NewCompany],
    stores: Sequence[NewStore],
    customers: CustomerColumns,
    transactions: TransactionColumns,
    products: Sequence[NewProduct],
    progress: Progress | None = None,
) -> Loaded:
    """Insert a whole platform into empty platform tables, in the caller's transaction, and rebuild
    every derived index (store bitmaps, blind index) there; ``progress(done, total)`` follows the
    blind-index rebuild, the slowest part."""
    company_rows = [Company(public_id=c.public_id, name=c.name, email=c.email) for c in companies]
    session.add_all(company_rows)
    session.flush()
    company_ids = np.array([c.id for c in company_rows], dtype=np.int64)
    store_rows = [Store(company_id=int(company_ids[s.company]), name=s.name, email=s.email) for s in stores]
    session.add_all(store_rows)
    session.flush()
    store_ids = np.array([s.id for s in store_rows], dtype=np.int64)
    n = _insert_customers(session, customers, company_ids, store_ids)
    tx = _insert_transactions(session, transactions, company_ids, store_ids)
    product_rows = [
        {
            "company_id": int(company_ids[p.company]),
            "store_id": None if p.store is None else int(store_ids[p.store]),
            "name": p.name,
            "price": p.price,
        }
        for p in products
    ]
    if product_rows:
        session.execute(insert(Product), product_rows)
    _advance_sequences(session)
    customers_loaded(session, company_ids.tolist(), progress=progress)
    return Loaded(
        company_ids=company_ids.tolist(),
        store_ids=store_ids.tolist(),
        customers=n,
        transactions=tx,
        products=len(product_rows),
    )


def _ids(prefix: str, n: int) -> list[str]:
    return [public_id(prefix) for _ in range(n)]


def _insert_customers(session: Session, cust: CustomerColumns, company_ids: Ints, store_ids: Ints) -> int:
    n = len(cust)
    public = _ids("cus", n)
    now = datetime.now(UTC)
    company_id = company_ids[cust.company].tolist()
    store_id = store_ids[cust.home_store].tolist()
    points = cust.points.tolist()
    values = {c: getattr(cust, c) for c in _VALUE_COLUMNS}
    for start in range(0, n, BATCH):
        rows = [
            {
                "id": i + 1,
                "public_id": public[i],
                "company_id": company_id[i],
                "home_store_id": store_id[i],
                **{c: column[i] for c, column in values.items()},
                "points": points[i],
                "is_canary": False,
                "updated_at": now,
            }
            for i in range(start, min(n, start + BATCH))
        ]
        session.execute(insert(_CUSTOMERS), rows)
    return n


def _insert_transactions(session: Session, tx: TransactionColumns, company_ids: Ints, store_ids: Ints) -> int:
    n = len(tx)
    public = _ids("txn", n)
    company_l, store_l = company_ids[tx.company].tolist(), store_ids[tx.store].tolist()
    # Customer ids are positions + 1 (passed explicitly above); 0 is then a sale to no member.
    customer_l, amount_l = (tx.customer + 1).tolist(), tx.amount.tolist()
    for start in range(0, n, BATCH):
        rows = [
            {
                "id": i + 1,
                "public_id": public[i],
                "company_id": company_l[i],
                "store_id": store_l[i],
                "customer_id": customer_l[i] or None,
                "amount": amount_l[i],
                "occurred_at": tx.occurred_at[i],
            }
            for i in range(start, min(n, start + BATCH))
        ]
        session.execute(insert(_TRANSACTIONS), rows)
    return n


def _advance_sequences(session: Session) -> None:
    """Ids were passed explicitly; on PostgreSQL move the serial sequences past them."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in ("customers", "transactions"):
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        )
