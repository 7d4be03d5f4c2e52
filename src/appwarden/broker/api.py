"""The data API for marketplace apps under ``/v1``.

Every route follows the same order, which is the broker's security contract:

1. authenticate the bearer token (401/403, fail closed) and plan the projection from its grant;
2. read exactly the rows and columns needed, scoped to the token's company (and to real members plus
   the canaries issued to this very connection, ``canary.service.served_to``);
3. record in the ledger — committed — which people's which fields went out in which mode;
   if that fails the app gets 503 ``ledger_unavailable`` and no data;
4. only then mask/tokenise and serialise the body.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from appwarden.broker import listing, pseudonym, service
from appwarden.broker.auth import AccessContext, authenticate_request
from appwarden.broker.schemas import (
    CustomerOne,
    CustomerPage,
    TransactionPage,
)
from appwarden.canary.service import served_to
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import Forbidden, InvalidInput, NotFound, Unavailable
from appwarden.ledger import service as ledger
from appwarden.ledger.vocabulary import EntryKind
from appwarden.monitor.runtime import Monitor, monitor_of
from appwarden.platform.customer_rows import customer_rows
from appwarden.web import request_log
from appwarden.web.deps import DatabaseDep, SettingsDep
from appwarden.web.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["data API"])

_PROBLEMS = problem_responses(
    {
        401: "`invalid_token` (missing, unknown, revoked) or `token_expired`.",
        403: "`insufficient_scope`, `app_suspended`, `app_delisted` or `connection_inactive`.",
        422: "`invalid_parameter` or `invalid_cursor`.",
        429: "`rate_limited` (requests per minute) or `people_quota_exceeded` (this page would take the "
        "connection or the app over its people per day; `remaining` says how many are left): see "
        "`Retry-After`.",
        503: "`ledger_unavailable`: the delivery could not be recorded, so nothing was sent; "
        "`quota_unavailable`: the quotas cannot be checked.",
    }
)


# --- helpers ----------------------------------------------------------------------------------------


def _json(body: Any, request_id: str) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers={"X-Request-Id": request_id})


class Caller:
    """An authenticated caller and the transaction it was authenticated in.

    The page is read in the same transaction as the token check (one connection checkout, one
    consistent snapshot: a token refused at that instant reads nothing), and the ledger entry for it is
    appended and COMMITTED in that same transaction (``_record(..., within=caller.session)``) before
    anything is rendered. :meth:`done` then releases the connection.
    """

    def __init__(self, ctx: AccessContext, session: Session, monitor: Monitor) -> None:
        self.ctx = ctx
        self.session = session
        self.monitor = monitor

    def done(self) -> None:
        """End the transaction if still open and release the connection (idempotent)."""
        if self.session.in_transaction():
            self.session.commit()
        self.session.close()


def _caller(request: Request, db: DatabaseDep) -> Iterator[Caller]:
    """Authenticate first, as a dependency, so a caller without a good token learns nothing else
    (not even whether its parameters were valid); fail closed on any error. A suspended or killed app's
    call is refused and recorded as evidence (``broker.auth``, ``broker.refusals``)."""
    session = db.sessionmaker()
    try:
        session.begin()
        caller = Caller(authenticate_request(request, session), session, monitor_of(request.app))
        with _refusals_noted(caller.monitor, caller.ctx):
            yield caller
    finally:
        session.close()


@contextmanager
def _refusals_noted(monitor: Monitor, ctx: AccessContext) -> Iterator[None]:
    """Count a route's 403 (scope) and 404 (another company's or app's id) for the monitor (probing)."""
    try:
        yield
    except (Forbidden, NotFound) as exc:
        monitor.refused(ctx.app_id, ctx.company_id, exc.status)
        raise


CallerDep = Annotated[Caller, Depends(_caller)]


def _caller_or_restricted(request: Request, db: DatabaseDep) -> Iterator[Caller]:
    """As :func:`_caller`, also accepting a restricted token (``GET /v1/customers/{id}`` only)."""
    session = db.sessionmaker()
    try:
        session.begin()
        ctx = authenticate_request(request, session, allow_restricted=True)
        caller = Caller(ctx, session, monitor_of(request.app))
        with _refusals_noted(caller.monitor, caller.ctx):
            yield caller
    finally:
        session.close()


RestrictedCallerDep = Annotated[Caller, Depends(_caller_or_restricted)]


def _access(request: Request, db: DatabaseDep) -> Iterator[AccessContext]:
    """Authentication alone, for routes that read in a transaction of their own."""
    with db.sessionmaker() as session:
        session.begin()
        ctx = authenticate_request(request, session)
        session.commit()
    with _refusals_noted(monitor_of(request.app), ctx):
        yield ctx


AccessDep = Annotated[AccessContext, Depends(_access)]


def _limit(settings: Settings, limit: int) -> int:
    if not 1 <= limit <= settings.page_limit_max:
        raise InvalidInput(f"limit must be between 1 and {settings.page_limit_max}", parameter="limit")
    return limit


def _record(
    db: Database,
    ctx: AccessContext,
    monitor: Monitor,
    *,
    request_id: str,
    endpoint: str,
    kind: EntryKind,
    deliveries: Mapping[tuple[str, str], Sequence[int]],
    within: Session | None = None,
    restricted: tuple[str, str] | None = None,
) -> None:
    """Count the page's people against the quotas (429 refuses the whole page), then write the ledger
    entry (committed by the ledger, in ``within``'s transaction if given) or refuse the response: fail
    closed. The monitor tallies what was recorded. A restricted token's delivery carries the token's id
    and purpose (``restricted``: (id, purpose) of a token being minted, else taken from ``ctx``)."""
    if restricted is None and ctx.restriction is not None:
        restricted = (ctx.restriction.public_id, ctx.restriction.purpose)
    monitor.admit_people(within, ctx.app_id, ctx.company_id, _people(deliveries))
    try:
        receipt = ledger.record_delivery(
            db,
            request_id=request_id,
            app_id=ctx.app_id,
            company_id=ctx.company_id,
            connection_id=ctx.connection_id,
            endpoint=endpoint,
            kind=kind,
            deliveries=deliveries,
            within=within,
            restricted_token=None if restricted is None else restricted[0],
            purpose=None if restricted is None else restricted[1],
        )
    except Exception as exc:  # any failure at all means nothing may be sent
        raise Unavailable(
            "the delivery could not be recorded in the access ledger; no data was sent",
            code="ledger_unavailable",
            request_id=request_id,
        ) from exc
    monitor.delivered(
        ctx.app_id, ctx.company_id, deliveries, receipt.recorded_at, token_id=ctx.token_id, client=ctx.client
    )


def _people(deliveries: Mapping[tuple[str, str], Sequence[int]]) -> int:
    """How many distinct people a response delivers (the routes pass one id list for every field)."""
    columns = {id(ids): ids for ids in deliveries.values()}
    if len(columns) == 1:
        return len(next(iter(columns.values())))
    return len({i for ids in columns.values() for i in ids})


def _new_request_id() -> str:
    # The request's own id (its log lines, X-Request-Id): one id from the log to the ledger entry.
    return request_log.request_id()


def _split(rows: Sequence[Any], projection: service.Projection) -> tuple[list[int], dict[str, Sequence[Any]]]:
    """Rows → (ids, {field: column}) — the page transposed so it can be projected column by column."""
    if not rows:
        return [], {f: [] for f in projection.names}
    columns = list(zip(*rows, strict=True))
    return list(columns[0]), dict(zip(projection.names, columns[1:], strict=True))


# --- routes -----------------------------------------------------------------------------------------


@router.get(
    "/customers",
    summary="List the company's customers",
    description=(
        "Cursor-paginated customers of the company the token belongs to, in an order of this app's own "
        "(stable, unrelated to any other app's; cursors are opaque and sealed). Each "
        "customer carries this app's pseudonymous `id` and exactly the fields the token is granted, each "
        "in its mode (`raw`, `masked` such as `山田 **` / `090-****-5678` / `y***@example.com`, or "
        "`token`: a `tok_…` pseudonym stable for this app). `fields=name,phone` narrows the response. "
        "Every response is recorded in the access ledger before it is sent; `X-Request-Id` names it."
    ),
    response_model=CustomerPage,
    responses=_PROBLEMS,
)
def list_customers(
    caller: CallerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(description="Page size, 1..500.")] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    fields: Annotated[str | None, Query(description="Comma-separated subset of the granted fields.")] = None,
) -> Response:
    ctx, master = caller.ctx, settings.master_key
    projection = service.plan_projection(ctx.field_modes, fields)
    page = listing.customers(
        caller.session,
        ctx,
        master,
        projection.names,
        limit=_limit(settings, limit),
        cursor=cursor,
        canaries_enabled=settings.canary_enabled,
    )
    ids, columns = _split(page.rows, projection)
    request_id = _new_request_id()
    _record(
        db,
        ctx,
        caller.monitor,
        request_id=request_id,
        endpoint="GET /v1/customers",
        kind=EntryKind.DELIVERY,
        deliveries=service.deliveries(projection, ids, columns),
        within=caller.session,
    )
    caller.done()
    data = service.render_customers(
        projection, ids, columns, key=pseudonym.app_key(master, ctx.app_id), company_id=ctx.company_id
    )
    return _json({"data": data, "next_cursor": page.next_cursor}, request_id)


@router.get(
    "/customers/{customer_id}",
    summary="Get one customer",
    description=(
        "One customer by this app's id for them (`cus_…` from a listing). An id of another company or "
        "made for another app is 404 `customer_not_found`. Fields and modes as in the listing.\n\n"
        "The one route that also accepts a **restricted token** (`POST /v1/restricted-tokens`): then "
        "only for the customers it was minted for (any other id, of any company, is 403 "
        "`customer_not_minted`), with exactly its minted fields raw (`fields=` may narrow them; a field "
        "not minted is 403 `field_not_minted`), recorded in the ledger with the token's id and purpose."
    ),
    response_model=CustomerOne,
    responses=_PROBLEMS
    | problem_responses(
        {
            403: "`insufficient_scope`, `app_suspended`, `app_delisted`, `connection_inactive`; with a "
            "restricted token also `customer_not_minted` or `field_not_minted`.",
            404: "`customer_not_found`.",
        }
    ),
)
def get_customer(
    customer_id: str,
    caller: RestrictedCallerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    fields: Annotated[str | None, Query(description="Comma-separated subset of the granted fields.")] = None,
) -> Response:
    ctx, master = caller.ctx, settings.master_key
    not_found = NotFound("no such customer", code="customer_not_found")
    restriction = ctx.restriction
    if restriction is None:
        projection = service.plan_projection(ctx.field_modes, fields)
    else:
        projection = service.plan_restricted_projection(restriction.fields, ctx.field_modes, fields)
    key = pseudonym.app_key(master, ctx.app_id)
    decoded = pseudonym.decode_one(key, customer_id, pseudonym.ID_PREFIX)
    if restriction is not None and (
        decoded is None
        or decoded.company_id != ctx.company_id
        or decoded.customer_id not in restriction.customer_ids
    ):
        # Decided before any read: whether such a customer exists is not this token's to learn.
        raise Forbidden("this restricted token was not minted for that customer", code="customer_not_minted")
    if decoded is None or decoded.company_id != ctx.company_id:
        raise not_found
    rows = customer_rows(
        caller.session,
        ctx.company_id,
        [decoded.customer_id],
        projection.names,
        # Another connection's canary is as absent as another company's customer: 404.
        served=served_to(ctx.connection_id, enabled=settings.canary_enabled),
    )
    if not rows:
        raise not_found
    ids, columns = _split(rows, projection)
    request_id = _new_request_id()
    _record(
        db,
        ctx,
        caller.monitor,
        request_id=request_id,
        endpoint="GET /v1/customers/{id}",
        kind=EntryKind.DELIVERY if restriction is None else EntryKind.RESTRICTED,
        deliveries=service.deliveries(projection, ids, columns),
        within=caller.session,
    )
    caller.done()
    data = service.render_customers(projection, ids, columns, key=key, company_id=ctx.company_id)
    return _json({"data": data[0]}, request_id)


@router.get(
    "/transactions",
    summary="List the company's transactions",
    description=(
        "Cursor-paginated sales of the company's stores (scope `transactions:read`), in an order of this "
        "app's own. `id` (`txn_…`) and `customer` are this app's pseudonymous ids for the sale and the "
        "member (or null): stable for this app, unrelated to another app's."
    ),
    response_model=TransactionPage,
    responses=_PROBLEMS,
)
def list_transactions(
    caller: CallerDep,
    db: DatabaseDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(description="Page size, 1..500.")] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> Response:
    ctx, master = caller.ctx, settings.master_key
    ctx.require("transactions:read")
    page = listing.transactions(caller.session, ctx, master, limit=_limit(settings, limit), cursor=cursor)
    rows = page.rows
    request_id = _new_request_id()
    # No customer field leaves here (only this app's pseudonymous ids), but the call is still recorded.
    _record(
        db,
        ctx,
        caller.monitor,
        request_id=request_id,
        endpoint="GET /v1/transactions",
        kind=EntryKind.DELIVERY,
        deliveries={},
        within=caller.session,
    )
    caller.done()
    key = pseudonym.app_key(master, ctx.app_id)
    # This app's own ids for the transactions and their members, in one AES call each: a shared
    # transaction id next to per-app customer ids would let two apps join their customers.
    txn_ids = pseudonym.text_of(
        pseudonym.prp(key, ctx.company_id, pseudonym.TRANSACTION_SLOT, [r[0] for r in rows]),
        pseudonym.TRANSACTION_PREFIX,
    )
    members = [r[4] for r in rows if r[4] is not None]
    member_ids = iter(pseudonym.encode_column(key, ctx.company_id, [("id", members)])[0])
    data = [
        {
            "id": txn_id,
            "store": r[1],
            "amount": r[2],
            "occurred_at": r[3].isoformat(),
            "customer": None if r[4] is None else next(member_ids),
        }
        for txn_id, r in zip(txn_ids, rows, strict=True)
    ]
    return _json({"data": data, "next_cursor": page.next_cursor}, request_id)
