"""Vendor API (``/vendor``): register an app, ask for scopes with justifications, declare volume and
retention, open a new version, rotate the client secret, change redirect URIs, list and revoke API keys.
``Authorization: Bearer vk_…``; another vendor's app answers 404 like a missing one. One route takes the
password instead: ``POST /vendor/keys`` issues a new key (throttled like every login)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field, StrictBool

from appwarden.db.session import Database
from appwarden.errors import Unauthenticated
from appwarden.events.service import EventTag, record
from appwarden.marketplace import service, versions
from appwarden.marketplace.models import Vendor
from appwarden.marketplace.vendors import (
    issue_key,
    key_prefix,
    keys_of,
    revoke_key,
    vendor_by_key,
    vendor_by_password,
)
from appwarden.web.deps import DatabaseDep, bearer_token
from appwarden.web.login_throttle import LoginThrottle
from appwarden.web.problems import problem_responses
from appwarden.web.text import Body

VENDOR_AUTH = {401: "`invalid_vendor_key`: no live vendor API key (`Authorization: Bearer vk_…`)."}
OWN_APP = {404: "`app_not_found`: you have no app with this slug (another vendor's app reads the same)."}
DRAFT_ONLY = {409: "`version_frozen`: the latest version is submitted or decided; open a new version."}
router = APIRouter(prefix="/vendor", tags=["vendor"], responses=problem_responses(VENDOR_AUTH))


async def require_vendor(request: Request) -> int:
    """The calling vendor's id, from its API key."""
    db: Database = request.app.state.db
    with db.session() as session:
        vendor = vendor_by_key(session, bearer_token(request))
        if vendor is None:
            raise Unauthenticated(
                "vendor API key required (Authorization: Bearer vk_...)", code="invalid_vendor_key"
            )
        return vendor.id


VendorDep = Annotated[int, Depends(require_vendor)]


class NewApp(Body):
    slug: str = Field(max_length=64, examples=["invoice-plus"])
    name: str = Field(max_length=200, examples=["Invoice Plus"])
    redirect_uris: list[str] = Field(min_length=1, max_length=10, examples=[["https://invoice.example/cb"]])


class RequestedScope(Body):
    scope: str = Field(max_length=80, examples=["customers.phone:masked"])
    justification: str = Field(max_length=2000, examples=["We print the last digits on the invoice."])


class ScopeRequest(Body):
    scopes: list[RequestedScope] = Field(min_length=1, max_length=40)


class Figures(Body):
    average: int = Field(ge=0, le=10_000_000)
    peak: int = Field(ge=0, le=10_000_000)


class Volume(Body):
    """Per connected company."""

    people_per_day: Figures
    requests_per_minute: Figures
    # The app reads each company's whole member list (a full sync); reviewers see it and approve it
    # with the version, and the monitor's mirror detector then leaves the app alone.
    full_sync: StrictBool = False  # "yes" or 1 is refused, not read as true


class Retention(Body):
    days: int = Field(ge=0, le=3650)
    purpose: str = Field(min_length=5, max_length=500)


class RetentionDeclaration(Body):
    fields: dict[str, Retention] = Field(min_length=1, max_length=20)


class Login(Body):
    email: str = Field(max_length=320, examples=["security@invoice.example"])
    password: str = Field(max_length=200)


class RedirectUris(Body):
    redirect_uris: list[str] = Field(min_length=1, max_length=10)


def _vendor(session: Any, vendor_id: int) -> Vendor:
    vendor = session.get(Vendor, vendor_id)
    assert vendor is not None
    return vendor


@router.get("/apps")
def my_apps(vendor_id: VendorDep, db: DatabaseDep) -> list[dict[str, Any]]:
    """Your apps, with state and tier."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        return [
            service.app_summary(a, vendor, session=session) for a in service.apps_of_vendor(session, vendor)
        ]


@router.post("/apps", status_code=201, responses=problem_responses({409: "`app_exists`: the slug is taken."}))
def register_app(body: NewApp, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """Register a draft app; the response carries its client secret, never shown again."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        reg = service.register_vendor_app(
            session,
            vendor,
            slug=body.slug,
            name=body.name,
            redirect_uris=body.redirect_uris,
            actor=vendor.name,
        )
        return service.app_summary(reg.app, vendor, session=session) | {"client_secret": reg.client_secret}


@router.put("/apps/{slug}/scopes", responses=problem_responses(OWN_APP | DRAFT_ONLY))
def request_scopes(slug: str, body: ScopeRequest, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """The scopes the latest (draft) version asks for, each with its justification."""
    with db.session() as session:
        app = service.vendor_app(session, _vendor(session, vendor_id), slug)
        version = versions.request_scopes(
            versions.get_version(session, app), [s.model_dump() for s in body.scopes]
        )
        return versions.version_summary(version)


@router.put("/apps/{slug}/volume", responses=problem_responses(OWN_APP | DRAFT_ONLY))
def declare_volume(slug: str, body: Volume, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """Expected volume per connected company: people per day and requests per minute, average and peak,
    and whether the app syncs whole member lists (``full_sync``)."""
    with db.session() as session:
        app = service.vendor_app(session, _vendor(session, vendor_id), slug)
        return versions.version_summary(
            versions.declare_volume(versions.get_version(session, app), body.model_dump())
        )


@router.put("/apps/{slug}/retention", responses=problem_responses(OWN_APP | DRAFT_ONLY))
def declare_retention(
    slug: str, body: RetentionDeclaration, vendor_id: VendorDep, db: DatabaseDep
) -> dict[str, Any]:
    """Retention period (days) and purpose for each requested customer field."""
    with db.session() as session:
        app = service.vendor_app(session, _vendor(session, vendor_id), slug)
        fields = {k: v.model_dump() for k, v in body.fields.items()}
        return versions.version_summary(
            versions.declare_retention(versions.get_version(session, app), fields)
        )


@router.post("/apps/{slug}/rotate-secret", responses=problem_responses(OWN_APP | {409: "`app_delisted`."}))
def rotate_secret(slug: str, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, str]:
    """A new client secret (shown once); the old one stops working now."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        app = service.vendor_app(session, vendor, slug)
        return {
            "slug": app.slug,
            "client_secret": service.rotate_client_secret(session, app, actor=vendor.name),
        }


@router.put("/apps/{slug}/redirect-uris", responses=problem_responses(OWN_APP))
def set_redirect_uris(slug: str, body: RedirectUris, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """Replace the redirect URIs (absolute https; http only for loopback)."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        app = service.vendor_app(session, vendor, slug)
        service.set_redirect_uris(session, app, body.redirect_uris, actor=vendor.name)
        return service.app_summary(app, vendor, session=session)


@router.post(
    "/keys",
    status_code=201,
    responses=problem_responses(
        {
            401: "`invalid_vendor_login`: no vendor with this address and password.",
            429: "`login_throttled`: too many failed logins for this account or address (`Retry-After`).",
            503: "`unavailable`: the login throttle (Redis) cannot be reached.",
        }
    ),
)
def new_key(body: Login, request: Request, db: DatabaseDep) -> dict[str, Any]:
    """A new API key for the vendor with this contact address and password (shown once). The other keys
    keep working until revoked: rotate by issuing, deploying, then revoking the old one."""
    throttle: LoginThrottle = request.app.state.login_throttle
    account = f"vendor:{body.email.strip()}"
    address = request.client.host if request.client else "unknown"
    lockout = throttle.lockout(account, address)
    if lockout is not None:
        with db.session() as session:
            record(session, EventTag.VENDOR_LOGIN_THROTTLED, actor=account, address=address)
        raise LoginThrottle.refusal(lockout)
    with db.session() as session:
        vendor = vendor_by_password(session, body.email, body.password)
        if vendor is None:
            throttle.failed(account, address)
            record(session, EventTag.VENDOR_LOGIN_FAILED, actor=account, address=address)
        else:
            throttle.succeeded(account, address)
            key = issue_key(session, vendor, actor=vendor.name)
            return {"vendor": vendor.public_id, "api_key": key, "prefix": key_prefix(key)}
    raise Unauthenticated("no vendor with this address and password", code="invalid_vendor_login")


@router.get("/keys")
def list_keys(vendor_id: VendorDep, db: DatabaseDep) -> list[dict[str, Any]]:
    """Your API keys: prefix, when issued, when revoked (never the key)."""
    with db.session() as session:
        return keys_of(session, _vendor(session, vendor_id))


@router.delete(
    "/keys/{prefix}",
    responses=problem_responses(
        {
            404: "`key_not_found`: you have no live key with this prefix.",
            409: "`key_ambiguous`: two live keys share this prefix; revoke by the CLI.",
        }
    ),
)
def delete_key(prefix: str, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """Revoke one of your keys at once (the key making this call included)."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        return revoke_key(session, vendor, prefix, actor=vendor.name)
