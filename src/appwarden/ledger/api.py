"""Admin API over the ledger: verify, who-has, and paging through entries (admin key required)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from appwarden.ledger.queries import list_entries, who_has
from appwarden.ledger.verify import verify
from appwarden.web.deps import AdminDep, DatabaseDep

router = APIRouter(prefix="/admin/ledger", tags=["admin: ledger"])


@router.get("/verify")
def verify_ledger(actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Walk the chain and index; ``intact`` false lists each problem with its position."""
    return verify(db, actor=actor).to_dict()


@router.get("/who-has/{customer}")
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


@router.get("/entries")
def entries(
    actor: AdminDep,
    db: DatabaseDep,
    app: Annotated[str | None, Query(description="App slug.")] = None,
    company: Annotated[str | None, Query(description="Company public id (co_…).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(ge=0, description="Return entries after this seq.")] = None,
) -> dict[str, Any]:
    """A page of entries without payload bytes; ``next_after`` continues the walk."""
    return list_entries(db, app=app, company=company, limit=limit, after=after)
