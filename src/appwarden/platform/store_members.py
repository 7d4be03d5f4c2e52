"""Store membership bitmaps (``store_members``): who has which home store, one roaring bitmap per store.

The blast radius counts exposed people per store as ``|exposed ∩ store bitmap|`` instead of reading every
affected customer's home store. The table is kept in step with ``customers``:

* the platform's write paths (``platform.service``: ``add_customers``, ``update_customer``,
  ``delete_customer``) call :func:`refresh_store_members` in their transaction;
* after a Core bulk load (the demo generator) ``platform.service.customers_loaded`` calls
  :func:`rebuild_store_members` once.

Nothing else keeps it current: a customer written around those paths leaves the bitmaps stale.

Incremental refreshes lock the companies' rows (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers) so two transactions moving customers of one store cannot lose an update.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from pyroaring import BitMap
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from appwarden.bitmaps import to_bitmap
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.platform.customer_homes import customer_homes
from appwarden.platform.models import Company, Customer, Store, StoreMembers

# Customer columns a store's membership depends on: a write that changes none of them skips the refresh.
MEMBERSHIP_FIELDS = frozenset({"home_store_id", "is_canary", "company_id"})

_TABLE: Table = StoreMembers.__table__  # type: ignore[assignment]
_CHUNK = 5_000  # ids / company ids per IN list (well under every driver's parameter limit)
_INSERT_BATCH = 1_000


def _chunks(values: list[int], size: int = _CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _serialise(bitmap: BitMap) -> bytes:
    bitmap.run_optimize()
    return bytes(bitmap.serialize())


def _row(store_id: int, company_id: int, members: BitMap, canaries: BitMap) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "company_id": company_id,
        "bitmap": _serialise(members),
        "canaries": _serialise(canaries),
        "cardinality": len(members),
        "updated_at": utcnow(),
    }


def rebuild_store_members(target: Database | Session, company_ids: Iterable[int] | None = None) -> int:
    """Rebuild the rows of ``company_ids`` (all companies when None) from ``customers``; returns rows written.

    With a ``Database`` it runs in its own transaction; with a ``Session`` inside the caller's. Every
    store of the companies gets a row (an empty bitmap when nobody calls it home). Customers are read in
    one vectorised pass (:func:`customer_homes`) and grouped per store with numpy.
    """
    if isinstance(target, Database):
        with target.session() as session:
            return _rebuild(session, company_ids)
    return _rebuild(target, company_ids)


def _rebuild(session: Session, company_ids: Iterable[int] | None) -> int:
    if company_ids is None:
        companies = sorted(session.scalars(select(Company.id)))
    else:
        companies = sorted({int(c) for c in company_ids})
    stores: list[tuple[int, int]] = []
    for chunk in _chunks(companies):
        session.execute(delete(_TABLE).where(_TABLE.c.company_id.in_(chunk)))
        stores += [
            (s, c)
            for s, c in session.execute(select(Store.id, Store.company_id).where(Store.company_id.in_(chunk)))
        ]
    if not stores:
        return 0
    ids, homes = customer_homes(session, companies)
    canary = homes < 0
    homes = np.abs(homes)
    order = np.argsort(homes, kind="stable")
    ids, homes, canary = ids[order], homes[order], canary[order]
    found, starts = np.unique(homes, return_index=True)
    ends = np.append(starts[1:], homes.size)
    spans = {int(s): (int(a), int(b)) for s, a, b in zip(found, starts, ends, strict=True)}
    rows = []
    for store_id, company_id in stores:
        start, end = spans.get(store_id, (0, 0))
        part = ids[start:end]
        rows.append(_row(store_id, company_id, to_bitmap(part), to_bitmap(part[canary[start:end]])))
    for start in range(0, len(rows), _INSERT_BATCH):
        session.execute(insert(_TABLE), rows[start : start + _INSERT_BATCH])
    return len(rows)


def refresh_store_members(session: Session, customer_ids: Iterable[int], company_ids: Iterable[int]) -> int:
    """Bring the bitmaps in step with the current rows of ``customer_ids`` (inside the caller's transaction).

    ``company_ids`` are the companies the customers belonged to before the change (a deleted customer
    can only be found there); their current companies are read. The ids are taken out of every store
    of those companies and put back where ``customers`` now says they live. Returns rows written.
    """
    ids = sorted({int(i) for i in customer_ids})
    if not ids:
        return 0
    companies = {int(c) for c in company_ids}
    current: list[tuple[int, int, int, bool]] = []
    for chunk in _chunks(ids):
        people = select(Customer.id, Customer.company_id, Customer.home_store_id, Customer.is_canary)
        current += [(i, c, s, k) for i, c, s, k in session.execute(people.where(Customer.id.in_(chunk)))]
    companies.update(company for _, company, _, _ in current)
    existing: dict[int, tuple[int, BitMap, BitMap]] = {}
    for chunk in _chunks(sorted(companies)):
        rows = (
            select(_TABLE.c.store_id, _TABLE.c.company_id, _TABLE.c.bitmap, _TABLE.c.canaries)
            .where(_TABLE.c.company_id.in_(chunk))
            .with_for_update()
        )
        for sid, cid, blob, canary_blob in session.execute(rows):
            existing[sid] = (cid, BitMap.deserialize(blob), BitMap.deserialize(canary_blob))
    moving = to_bitmap(np.asarray(ids, dtype=np.uint32))
    changed: dict[int, tuple[int, BitMap, BitMap]] = {}
    for store_id, (company_id, members, canaries) in existing.items():
        if members.intersect(moving):
            changed[store_id] = (company_id, members - moving, canaries - moving)
    for customer_id, company_id, store_id, is_canary in current:
        _, members, canaries = (
            changed.get(store_id) or existing.get(store_id) or (company_id, BitMap(), BitMap())
        )
        members.add(customer_id)
        if is_canary:
            canaries.add(customer_id)
        changed[store_id] = (company_id, members, canaries)
    updates = [_row(s, c, m, k) for s, (c, m, k) in changed.items() if s in existing]
    inserts = [_row(s, c, m, k) for s, (c, m, k) in changed.items() if s not in existing]
    if updates:
        statement = (
            update(_TABLE)
            .where(_TABLE.c.store_id == bindparam("sid"))
            .values(
                bitmap=bindparam("bitmap"),
                canaries=bindparam("canaries"),
                cardinality=bindparam("cardinality"),
                updated_at=bindparam("updated_at"),
            )
        )
        session.execute(statement, [{**row, "sid": row["store_id"]} for row in updates])
    if inserts:
        session.execute(insert(_TABLE), inserts)
    return len(updates) + len(inserts)


def company_members(session: Session, company_id: int) -> tuple[BitMap, BitMap]:
    """(every member, the canaries among them) of one company, from its stores' bitmaps, read on the
    session's current transaction (the broker lists a company from these without scanning ``customers``)."""
    rows = session.connection().execute(
        select(_TABLE.c.bitmap, _TABLE.c.canaries).where(_TABLE.c.company_id == company_id)
    )
    members, canaries = BitMap(), BitMap()
    for blob, canary_blob in rows:
        members |= BitMap.deserialize(blob)
        canaries |= BitMap.deserialize(canary_blob)
    return members, canaries
