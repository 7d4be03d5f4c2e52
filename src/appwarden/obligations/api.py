"""Vendor obligations over HTTP: ``GET /admin/holdings`` (admin key), the same rows as the CLI; for the
vendor (``/vendor``, vendor key): its erasure requests and their attestations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field

from appwarden.db.base import utcnow
from appwarden.marketplace.vendor_api import VENDOR_AUTH, VendorDep
from appwarden.obligations.attestation import attest, vendor_requests
from appwarden.obligations.service import holdings
from appwarden.web.deps import AdminDep, DatabaseDep, SettingsDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses
from appwarden.web.text import Body

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


vendor_router = APIRouter(prefix="/vendor", tags=["vendor"], responses=problem_responses(VENDOR_AUTH))
OWN_REQUEST = {
    404: "`erasure_request_not_found`: you have no erasure request with this id (another vendor's reads "
    "the same)."
}


class AttestedBy(Body):
    name: str = Field(min_length=1, max_length=200, examples=["Hanako Suzuki"])
    role: str = Field(min_length=1, max_length=200, examples=["Data Protection Officer"])


class Attestation(Body):
    """What was erased (the request's company and people), when, and by whom."""

    erased_at: datetime
    attested_by: AttestedBy
    statement: str | None = Field(default=None, max_length=4000)


@vendor_router.get("/erasure-requests")
def my_erasure_requests(vendor_id: VendorDep, db: DatabaseDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """Every erasure request owed to your apps, newest first: topic, company, delivery, the attestation
    deadline (30 days after delivery by default) and the attestation state (``due``, ``overdue``,
    ``attested``, ``not_delivered``, ``not_required`` for a data request)."""
    with db.session() as session:
        return [v.to_dict() for v in vendor_requests(session, settings, vendor_id, utcnow())]


@vendor_router.post(
    "/erasure-requests/{request_id}/attestation",
    status_code=201,
    responses=problem_responses(
        OWN_REQUEST
        | {
            409: "`already_attested` (an attestation is final), `erasure_not_delivered`, "
            "`attestation_not_required` (a data request asks for disclosure).",
            422: "An empty name or role, or `erased_at` in the future or before the request.",
        }
    ),
)
def attest_erasure(
    request_id: Annotated[str, Path(max_length=40)],
    body: Attestation,
    vendor_id: VendorDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Attest that you erased everything the request names (its scope), when, and who did it. Once made
    it cannot be changed; contact with a canary it covered afterwards raises ``erasure_contradicted``."""
    with db.session() as session:
        view = attest(
            session,
            settings,
            vendor_id=vendor_id,
            request_ref=request_id,
            erased_at=body.erased_at,
            name=body.attested_by.name,
            role=body.attested_by.role,
            statement=body.statement,
            now=utcnow(),
        )
        return view.to_dict()
