"""``GET /v1/stores`` and ``GET /v1/products``: the company's own catalogue data (scopes ``stores:read``,
``products:read``), no customer in it.

Same contract as every data API route (``broker.api``): authenticate, read on the caller's transaction
scoped to the token's company, record the call in the ledger (committed; no person in it, like
``/v1/transactions``) before anything is rendered, then answer. Pages are keyset-ordered by internal id
(stores and products are the same for every app and carry nobody); the cursor holding that position is
sealed like every other (``broker.cursor``), so it still reveals nothing and is bound to app, company and
listing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from appwarden.broker import cursor as cursors
from appwarden.broker.api import _PROBLEMS, Caller, CallerDep, _json, _limit, _new_request_id, _record
from appwarden.broker.schemas import ProductPage, StorePage
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.ledger.vocabulary import EntryKind
from appwarden.platform.catalog import products_after, stores_after
from appwarden.web.deps import DatabaseDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["data API"])


class KeysetRead(Protocol):
    """The platform's read of one catalogue listing (``platform.catalog``): the company's next
    ``limit`` rows with an id above ``after``, ascending, first column the id."""

    def __call__(self, session: Session, company_id: int, *, after: int, limit: int) -> Sequence[Any]: ...


def _catalog_page(
    caller: Caller,
    db: Database,
    settings: Settings,
    *,
    listing: str,
    fetch: KeysetRead,
    limit: int,
    cursor: str | None,
    render: Callable[[Any], dict[str, Any]],
) -> Response:
    """One page of a catalogue listing: the next ``limit`` rows ``fetch`` reads after the cursor's id
    (first column the id), recorded in the ledger (no person in it) before it is rendered, with the
    sealed cursor of the page after (None on the last page)."""
    ctx, master = caller.ctx, settings.master_key
    app_id, company_id = ctx.app_id, ctx.company_id
    after = 0
    if cursor is not None:
        position = cursors.decode(master, cursor, listing=listing, app_id=app_id, company_id=company_id)
        if len(position) != cursors.POSITION_SIZE:
            raise cursors.invalid()
        after = int.from_bytes(position, "big")
    page = _limit(settings, limit)
    rows = fetch(caller.session, company_id, after=after, limit=page + 1)
    next_cursor = None
    if len(rows) > page:
        rows = rows[:page]
        last = int(rows[-1][0]).to_bytes(cursors.POSITION_SIZE, "big")
        next_cursor = cursors.encode(
            master, listing=listing, app_id=app_id, company_id=company_id, payload=last
        )
    request_id = _new_request_id()
    _record(
        db,
        ctx,
        caller.monitor,
        request_id=request_id,
        endpoint=f"GET /v1/{listing}",
        kind=EntryKind.DELIVERY,
        deliveries={},
        within=caller.session,
    )
    caller.done()
    return _json({"data": [render(r) for r in rows], "next_cursor": next_cursor}, request_id)


@router.get(
    "/stores",
    summary="List the company's stores",
    description="Cursor-paginated stores of the company the token belongs to (scope `stores:read`).",
    response_model=StorePage,
    responses=_PROBLEMS,
)
def list_stores(
    caller: CallerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(description="Page size, 1..500.")] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> Response:
    caller.ctx.require("stores:read")
    # Store data only, nobody's personal data; the call is recorded all the same.
    return _catalog_page(
        caller,
        db,
        settings,
        listing="stores",
        fetch=stores_after,
        limit=limit,
        cursor=cursor,
        render=lambda r: {"id": r[1], "name": r[2]},
    )


@router.get(
    "/products",
    summary="List the company's products",
    description=(
        "Cursor-paginated products of the company the token belongs to (scope `products:read`): name, "
        "price in yen (tax included) and `store`, the one store that sells it, or null when every store does."
    ),
    response_model=ProductPage,
    responses=_PROBLEMS,
)
def list_products(
    caller: CallerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(description="Page size, 1..500.")] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> Response:
    caller.ctx.require("products:read")
    return _catalog_page(
        caller,
        db,
        settings,
        listing="products",
        fetch=products_after,
        limit=limit,
        cursor=cursor,
        render=lambda r: {"id": r[1], "name": r[2], "price": r[3], "store": r[4]},
    )
