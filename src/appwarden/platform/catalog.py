"""A company's stores and products page by page, for the data API (``broker``): the one place its
reads of ``stores`` and ``products`` for ``/v1/stores`` and ``/v1/products`` are written.

Keyset pages by internal id (stores and products are the same for every app and carry nobody): the
next ``limit`` rows after an id, ascending, one query each, as Core rows on the session's current
transaction (no ORM objects). The first column is always the internal id, for the caller's cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from appwarden.platform.models import Product, Store

_SOLD_AT = aliased(Store)


def stores_after(session: Session, company_id: int, *, after: int, limit: int) -> Sequence[Any]:
    """``(id, public id, name)`` of the company's next ``limit`` stores with an id above ``after``."""
    statement = (
        select(Store.id, Store.public_id, Store.name)
        .where(Store.company_id == company_id, Store.id > after)
        .order_by(Store.id)
        .limit(limit)
    )
    return session.connection().execute(statement).all()


def products_after(session: Session, company_id: int, *, after: int, limit: int) -> Sequence[Any]:
    """``(id, public id, name, price in yen, public id of the one store selling it or None when every
    store does)`` of the company's next ``limit`` products with an id above ``after``."""
    statement = (
        select(Product.id, Product.public_id, Product.name, Product.price, _SOLD_AT.public_id)
        .outerjoin(_SOLD_AT, _SOLD_AT.id == Product.store_id)
        .where(Product.company_id == company_id, Product.id > after)
        .order_by(Product.id)
        .limit(limit)
    )
    return session.connection().execute(statement).all()
