"""Admin API routes for incidents: ``GET /admin/incidents/{incident}/blast-radius?as_of=``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from appwarden.incident.blast_radius import compute_blast_radius, parse_time, record_counts
from appwarden.web.deps import AdminDep, DatabaseDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses

router = APIRouter(
    prefix="/admin/incidents", tags=["admin: incidents"], responses=problem_responses(ADMIN_AUTH)
)


@router.get(
    "/{incident}/blast-radius",
    responses=problem_responses(
        {404: "`incident_not_found`.", 422: "`invalid_parameter`: `as_of` is not ISO 8601."}
    ),
)
def blast_radius(
    incident: str,
    actor: AdminDep,
    db: DatabaseDep,
    as_of: Annotated[
        str | None, Query(description="Only deliveries recorded at or before this ISO 8601 time.")
    ] = None,
) -> dict[str, Any]:
    """Distinct people per field and mode, per company and store (404 ``incident_not_found``)."""
    at = parse_time(as_of) if as_of is not None else None
    radius = compute_blast_radius(db, incident, as_of=at)
    record_counts(db, radius, actor=actor)
    return radius.to_dict()
