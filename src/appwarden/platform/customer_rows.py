"""Customers' values by internal id, for the data API (``broker``): the one place its reads of
``customers`` are written.

Plain-column reads on the session's current transaction (Core rows, no ORM objects: a page is up to
500 rows on the hot path), always scoped to one company. Which canaries a reader may see is the
caller's to say, as a predicate over customers (``canary.service.served_to``) or as the canaries of a
page it already knows (:func:`real_or_among`); every function here filters by it in the same query.

    rows = customer_rows(session, company_id, ids, ("name", "phone"), served=real_or_among(own))
    # [(id, name, phone), ...] for those of ids that exist, are the company's and are served
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from appwarden.platform.models import Customer

# What a customer row says about the person: the columns a reader may ask for by name, and the
# marketplace's customer-field scopes, in this order. Ids, the company, the home store, the canary flag
# and timestamps are the platform's own bookkeeping.
PERSON_FIELDS: tuple[str, ...] = (
    "name",
    "name_kana",
    "phone",
    "email",
    "address",
    "birthday",
    "gender",
    "points",
    "rank",
)
_COLUMNS: dict[str, Any] = {field: getattr(Customer, field) for field in PERSON_FIELDS}


def _columns(fields: Sequence[str]) -> list[Any]:
    try:
        return [Customer.id, *(_COLUMNS[f] for f in fields)]
    except KeyError as exc:
        raise ValueError(f"not a customer field: {exc.args[0]!r}") from None


def _among(ids: Collection[int]) -> ColumnElement[bool]:
    # One id is an equality (the same statement as a lookup by primary key); more are an IN list.
    if len(ids) == 1:
        return Customer.id == next(iter(ids))
    return Customer.id.in_(list(ids))


def real_or_among(canaries: Collection[int]) -> ColumnElement[bool]:
    """The predicate "no canary, or one of ``canaries``" over customers, for a reader that already holds
    the canaries it may see as ids (the broker's listing, for one page) instead of a subquery."""
    real = Customer.is_canary.is_(False)
    return or_(real, Customer.id.in_(list(canaries))) if canaries else real


def real_or_in(ids: Select[Any]) -> ColumnElement[bool]:
    """The predicate "no canary, or one whose id the subquery ``ids`` gives" over customers."""
    return or_(Customer.is_canary.is_(False), Customer.id.in_(ids))


def customer_rows(
    session: Session,
    company_id: int,
    ids: Collection[int],
    fields: Sequence[str],
    *,
    served: ColumnElement[bool],
) -> Sequence[Any]:
    """``(id, *fields)`` rows of those of ``ids`` that are the company's customers and that ``served``
    lets through, in no particular order; one query. ``fields`` are names from :data:`PERSON_FIELDS`
    (any other is ``ValueError``)."""
    if not ids:
        return []
    statement = select(*_columns(fields)).where(Customer.company_id == company_id, _among(ids), served)
    return session.connection().execute(statement).all()


def served_ids(
    session: Session, company_id: int, ids: Collection[int], *, served: ColumnElement[bool]
) -> set[int]:
    """Those of ``ids`` that are the company's customers and that ``served`` lets through; one query."""
    if not ids:
        return set()
    statement = select(Customer.id).where(
        Customer.company_id == company_id, Customer.id.in_(list(ids)), served
    )
    return set(session.scalars(statement))


def field_values(session: Session, company_id: int, field: str, ids: Collection[int]) -> dict[int, Any]:
    """``{id: current value of field}`` for those of ``ids`` that are the company's customers (canaries
    included: a token names whom the caller was served); one query. ``field`` is one of
    :data:`PERSON_FIELDS` (any other is ``ValueError``)."""
    if not ids:
        return {}
    _, column = _columns([field])
    statement = select(Customer.id, column).where(
        Customer.company_id == company_id, Customer.id.in_(list(ids))
    )
    return {cid: value for cid, value in session.execute(statement)}
