"""Vendor obligations over HTTP: ``GET /admin/holdings`` (admin key), the same rows as the CLI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from appwarden.db.base import utcnow
from appwarden.obligations.service import holdings
from appwarden.web.deps import AdminDep, DatabaseDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses

router = APIRouter(prefix="/admin", tags=["admin: obligations"], responses=problem_responses(ADMIN_AUTH))


@router.get(
    "/holdings",
    responses=problem_responses(
        {404: "`app_not_found` / `company_not_found`: no app or company has this reference."}
    ),
)
def list_holdings(
    actor: AdminDep,
    db: DatabaseDep,
    app: Annotated[
        str | None, Query(max_length=200, description="Only this app (slug or client id).")
    ] = None,
    company: Annotated[str | None, Query(max_length=200, description="Only this company.")] = None,
) -> list[dict[str, Any]]:
    """Per app × company × field: ``may_hold`` and ``should_not_hold`` people, with the retention."""
    with db.session() as session:
        return [row.to_dict() for row in holdings(session, app_ref=app, company_ref=company, now=utcnow())]
