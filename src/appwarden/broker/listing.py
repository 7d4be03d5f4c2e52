"""The reads behind the broker's list routes, in each app's own order (``broker.ordering``).

A page is read in three steps, all on the caller's read transaction:

1. the exact set of ids this caller may list: the company's members from the store bitmaps
   (``platform.store_members``) less every canary, plus the canaries issued to this very connection
   (the same set as ``canary.service.served_to``); for transactions, the company's transaction ids;
2. the next ``limit`` of them in the app's order, after the cursor's position;
3. those rows, fetched by id in one query by the platform (``platform.customer_rows``,
   ``platform.sales``), still filtered in SQL by company and by what ``served_to`` lets through
   (defence in depth), returned in the app's order.

The next cursor holds the position of the page's last id in that order and the digest of the id set
(sealed, ``broker.cursor``): the walk's later pages reuse that order while this process holds it, and
read the set afresh otherwise (the position means the same in either).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.broker import cursor as cursors
from appwarden.broker import ordering, pseudonym
from appwarden.broker.auth import AccessContext
from appwarden.canary.service import issued_to
from appwarden.platform.customer_rows import customer_rows, real_or_among
from appwarden.platform.sales import transaction_ids, transaction_rows
from appwarden.platform.store_members import company_members

CUSTOMERS = "customers"
TRANSACTIONS = "transactions"


@dataclass(frozen=True, slots=True)
class Rows:
    """One page of rows (first column the internal id), in the app's order, and the next cursor."""

    rows: list[Sequence[Any]]
    next_cursor: str | None


def _after(
    master: bytes, ctx: AccessContext, listing: str, cursor: str | None
) -> tuple[bytes | None, bytes | None]:
    """(the position after which the page starts, the digest of the id set the walk started from)."""
    if cursor is None:
        return None, None
    sealed = cursors.decode(master, cursor, listing=listing, app_id=ctx.app_id, company_id=ctx.company_id)
    if len(sealed) != cursors.POSITION_SIZE + ordering.DIGEST_SIZE:
        raise cursors.invalid()
    return sealed[: cursors.POSITION_SIZE], sealed[cursors.POSITION_SIZE :]


def _next(
    master: bytes, ctx: AccessContext, listing: str, order: ordering.Order, page: ordering.Page
) -> str | None:
    if page.next_position is None:
        return None
    return cursors.encode(
        master,
        listing=listing,
        app_id=ctx.app_id,
        company_id=ctx.company_id,
        payload=page.next_position + order.digest,
    )


def _in_order(rows: Sequence[Sequence[Any]], ids: Sequence[int]) -> list[Sequence[Any]]:
    """``rows`` (first column the id) rearranged into the order of ``ids``; ids without a row (gone
    since the id set was read) are skipped."""
    by_id = {row[0]: row for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def served_members(session: Session, ctx: AccessContext, *, canaries_enabled: bool) -> tuple[BitMap, BitMap]:
    """(the internal ids this connection may list, the canaries among them): real members, plus its own
    canaries while the policy is on (the id-set form of ``canary.service.served_to``)."""
    members, canaries = company_members(session, ctx.company_id)
    served = members - canaries
    own = BitMap()
    if canaries_enabled and canaries:
        own = BitMap(issued_to(session, ctx.connection_id)) & canaries
        served |= own
    return served, own


def customers(
    session: Session,
    ctx: AccessContext,
    master: bytes,
    fields: Sequence[str],
    *,
    limit: int,
    cursor: str | None,
    canaries_enabled: bool,
) -> Rows:
    """The next page of the company's customers: ``(internal id, *fields)`` rows."""
    after, snapshot = _after(master, ctx, CUSTOMERS, cursor)
    key, slot = pseudonym.app_key(master, ctx.app_id), pseudonym.SLOTS["id"]
    order = ordering.cached(key, ctx.company_id, slot, snapshot) if snapshot else None
    if order is None:
        served, own = served_members(session, ctx, canaries_enabled=canaries_enabled)
        order = ordering.order_of(
            key,
            ctx.company_id,
            slot,
            ordering.fingerprint(served.serialize()),
            lambda: np.frombuffer(served.to_array(), dtype=np.uint32),
            own,
        )
    page = ordering.next_page(order, after, limit)
    # The rows are re-checked in SQL as well: this company's, and a canary only if it is one of this
    # connection's own on this page (``served_to`` narrowed to the page, without its subquery).
    own_here = [i for i in page.ids if i in order.canaries] if canaries_enabled else []
    rows = customer_rows(session, ctx.company_id, page.ids, fields, served=real_or_among(own_here))
    return Rows(_in_order(rows, page.ids), _next(master, ctx, CUSTOMERS, order, page))


def transactions(
    session: Session, ctx: AccessContext, master: bytes, *, limit: int, cursor: str | None
) -> Rows:
    """The next page of the company's transactions: (id, store public id, amount, occurred_at,
    customer internal id or None) rows."""
    after, snapshot = _after(master, ctx, TRANSACTIONS, cursor)
    key, slot = pseudonym.app_key(master, ctx.app_id), pseudonym.TRANSACTION_SLOT
    order = ordering.cached(key, ctx.company_id, slot, snapshot) if snapshot else None
    if order is None:
        ids = transaction_ids(session, ctx.company_id)
        order = ordering.order_of(key, ctx.company_id, slot, ordering.fingerprint(ids.tobytes()), lambda: ids)
    page = ordering.next_page(order, after, limit)
    rows = transaction_rows(session, ctx.company_id, page.ids)
    return Rows(_in_order(rows, page.ids), _next(master, ctx, TRANSACTIONS, order, page))
