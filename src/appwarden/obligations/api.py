"""Vendor obligations over HTTP, the same rows as the CLI. Admin key: ``GET /admin/holdings``,
``GET /admin/erasure-requests``, ``POST /admin/erasure-requests`` (a person's erasure or disclosure
request, raised to every app that received them) and ``POST /admin/apps/{slug}/erasure-endpoint/check``
(the review's check of the vendor's endpoint). Vendor key (``/vendor``): its erasure requests and their
attestations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Path, Query
from pydantic import ConfigDict, Field

from appwarden.db.base import utcnow
from appwarden.marketplace.vendor_api import VENDOR_AUTH, VendorDep
from appwarden.obligations.attestation import attest, vendor_requests
from appwarden.obligations.endpoint_check import check_endpoint
from appwarden.obligations.erasure import list_requests, set_own_endpoint
from appwarden.obligations.erasure_triggers import person_requests
from appwarden.obligations.service import holdings
from appwarden.obligations.vocabulary import ErasureStatus, ErasureTopic
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


@router.get(
    "/erasure-requests",
    responses=problem_responses({404: "`app_not_found`: no app has this reference."}),
)
def list_erasure_requests(
    actor: AdminDep,
    db: DatabaseDep,
    app: Annotated[
        str | None, Query(max_length=200, description="Only this app (slug or client id).")
    ] = None,
    status: Annotated[ErasureStatus | None, Query(description="Only requests in this state.")] = None,
) -> list[dict[str, Any]]:
    """Every erasure request owed to vendors (of one app, in one state), newest first: the rows of
    ``appwarden erasure list --json``."""
    with db.session() as session:
        return [row.to_dict() for row in list_requests(session, app_ref=app, status=status)]


class PersonRequestIn(Body):
    """A person's request, raised to every app the ledger says received them."""

    model_config = ConfigDict(extra="forbid")

    topic: Literal["customer.redact", "customer.data_request"]
    customer: str = Field(
        min_length=1, max_length=320, description="Customer id (cus_…), phone number or e-mail address."
    )


@router.post(
    "/erasure-requests",
    status_code=201,
    responses=problem_responses(
        {
            404: "`customer_not_found`: no customer matches.",
            422: "`invalid_parameter`: malformed body, or the customer is not an id, phone or address.",
        }
    ),
)
def raise_person_request(body: PersonRequestIn, actor: AdminDep, db: DatabaseDep) -> list[dict[str, Any]]:
    """Owe ``customer.redact`` or ``customer.data_request`` to every app that received the person; the
    requests (those already owed too: raising it again makes none), as ``GET`` lists them."""
    with db.session() as session:
        ids = person_requests(session, body.customer, ErasureTopic(body.topic), now=utcnow(), actor=actor)
        return [row.to_dict() for row in list_requests(session, public_ids=ids)]


@router.post(
    "/apps/{slug}/erasure-endpoint/check",
    responses=problem_responses(
        {
            404: "`app_not_found`: no app has this reference.",
            409: "`no_erasure_endpoint`: the vendor has registered no endpoint for the app.",
        }
    ),
)
def check_erasure_endpoint(
    actor: AdminDep,
    db: DatabaseDep,
    settings: SettingsDep,
    slug: Annotated[str, Path(max_length=200, description="The app (slug or client id).")],
) -> dict[str, Any]:
    """The review's check: a signed ``endpoint.test`` must get 2xx, an unsigned and a wrongly signed one
    401. The outcome (``passed``, ``reason``, ``checked_at``) is recorded and returned (200 either way)."""
    with db.session() as session, httpx.Client() as client:
        return check_endpoint(session, settings, slug, client, actor=actor, now=utcnow()).to_dict()


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


class EndpointIn(Body):
    """Where your app receives erasure requests."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, examples=["https://vendor.example/appwarden/erasure"])


@vendor_router.put(
    "/apps/{slug}/erasure-endpoint",
    responses=problem_responses(
        {
            404: "`app_not_found`: you have no app with this slug (another vendor's reads the same).",
            422: "`invalid_parameter`: the URL is not http(s) with a host.",
        }
    ),
)
def put_erasure_endpoint(
    slug: Annotated[str, Path(max_length=200)],
    body: EndpointIn,
    vendor_id: VendorDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Register (or replace) your app's erasure endpoint. The answer carries its signing secret, shown
    this once; a new endpoint must pass the review's check again before the app can be listed."""
    with db.session() as session:
        app, secret = set_own_endpoint(session, settings, vendor_id, slug, body.url, now=utcnow())
    return {"app": app, "url": body.url, "secret": secret, "check": "not checked"}


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
