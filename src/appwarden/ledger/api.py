"""The ledger over HTTP: the admin API (verify, who-has, paging through entries; admin key required) and
the public checkpoint (``GET /ledger/checkpoint`` and its verifier key, for anyone)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from appwarden.db.base import utcnow
from appwarden.errors import InvalidInput, NotFound
from appwarden.ledger.checkpoint import latest_note, verifier
from appwarden.ledger.note import NoteError, Verifier
from appwarden.ledger.queries import list_entries, who_has
from appwarden.ledger.usage import unused_report
from appwarden.ledger.verify import verify
from appwarden.web.deps import AdminDep, DatabaseDep, SettingsDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses

admin = APIRouter(prefix="/admin/ledger", tags=["admin: ledger"], responses=problem_responses(ADMIN_AUTH))
public = APIRouter(prefix="/ledger", tags=["ledger checkpoints"])


@admin.get("/verify")
def verify_ledger(actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Walk the chain and index and check every checkpoint in the checkpoint directory; ``intact`` false
    lists each problem with its position."""
    return verify(db, actor=actor).to_dict()


class VerifyIn(BaseModel):
    checkpoints: list[Annotated[str, Field(max_length=16384)]] = Field(
        min_length=1,
        max_length=100,
        description="Signed checkpoints (signed notes) the chain must extend.",
    )
    key: str | None = Field(
        default=None, max_length=200, description="Verifier key for them; default the platform's."
    )


@admin.post("/verify")
def verify_against(body: VerifyIn, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """As ``GET``, against the checkpoints given (e.g. one a company kept from its notice)."""
    try:
        key = Verifier.parse(body.key) if body.key else None
    except NoteError as exc:
        raise InvalidInput(f"key: {exc}", parameter="key") from None
    given = [(f"checkpoints[{i}]", note) for i, note in enumerate(body.checkpoints)]
    return verify(db, actor=actor, checkpoints=given, key=key).to_dict()


@public.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}},
        **problem_responses({404: "`checkpoint_not_found`: no checkpoint published yet."}),
    },
)
def checkpoint(settings: SettingsDep) -> PlainTextResponse:
    """The latest signed checkpoint of the ledger's head (C2SP tlog-checkpoint), for anyone to keep."""
    note = latest_note(settings)
    if note is None:
        raise NotFound("no checkpoint has been published yet", code="checkpoint_not_found")
    return PlainTextResponse(note, headers={"Cache-Control": "no-cache"})


@public.get(
    "/checkpoint/key", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}}
)
def checkpoint_key(settings: SettingsDep) -> PlainTextResponse:
    """The verifier key checkpoints are signed with (``<name>+<key ID>+<base64 key>``)."""
    return PlainTextResponse(verifier(settings).vkey + "\n")


@admin.get(
    "/who-has/{customer}",
    responses=problem_responses({404: "`customer_not_found`: no customer has this public id."}),
)
def who_has_customer(customer: str, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Every app, field and mode the customer's data went to (404 ``customer_not_found`` if unknown)."""
    rows = who_has(db, customer)
    return {
        "customer": customer,
        "data": [
            {**row, "first_at": row["first_at"].isoformat(), "last_at": row["last_at"].isoformat()}
            for row in rows
        ],
    }


@admin.get(
    "/entries",
    responses=problem_responses({404: "`app_not_found` or `company_not_found`: the filter names nothing."}),
)
def entries(
    actor: AdminDep,
    db: DatabaseDep,
    app: Annotated[str | None, Query(description="App slug.")] = None,
    company: Annotated[str | None, Query(description="Company public id (co_…).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # Bounded as the seq column (a 32-bit INTEGER on PostgreSQL) is: larger is a 422, not a DB overflow.
    after: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="Return entries after this seq.")
    ] = None,
) -> dict[str, Any]:
    """A page of entries without payload bytes; ``next_after`` continues the walk."""
    return list_entries(db, app=app, company=company, limit=limit, after=after)


@admin.get(
    "/unused/{app}",
    responses=problem_responses(
        {404: "`app_not_found`: no app has this slug or client id.", 422: "`invalid_parameter`: days."}
    ),
)
def unused(
    app: str,
    actor: AdminDep,
    db: DatabaseDep,
    days: Annotated[int, Query(ge=1, le=3650, description="The window, in days before now.")] = 90,
) -> dict[str, Any]:
    """The app's approved scopes with their usage in the last ``days`` (``used``, ``unused``,
    ``not_yet_judged`` when approved more recently, ``not_judged`` for resource scopes) and the
    ``unused`` list."""
    with db.session() as session:
        return unused_report(session, app, now=utcnow(), days=days)


router = APIRouter()
router.include_router(admin)
router.include_router(public)
