"""Admin API for marketplace apps (``/admin/apps``): the same operations as ``appwarden apps``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from appwarden.marketplace import service
from appwarden.marketplace.models import Vendor
from appwarden.web.deps import AdminDep, DatabaseDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses
from appwarden.web.text import Body

router = APIRouter(prefix="/admin/apps", tags=["admin: apps"], responses=problem_responses(ADMIN_AUTH))
APP_NOT_FOUND = problem_responses({404: "`app_not_found`: no app has this slug or client id."})


class AppRegistration(Body):
    slug: str = Field(examples=["invoice-plus"])
    name: str = Field(examples=["Invoice Plus"])
    redirect_uris: list[str] = Field(min_length=1, examples=[["https://invoice.example/callback"]])
    scopes: list[str] = Field(min_length=1, examples=[["customers.name:raw", "customers.phone:masked"]])
    vendor: str | None = None


class ListingChange(Body):
    reason: str = ""


@router.get("")
def list_apps(actor: AdminDep, db: DatabaseDep) -> list[dict[str, Any]]:
    """Every app, its listing state and approved scopes."""
    with db.session() as session:
        return [service.app_summary(a) for a in service.list_apps(session)]


@router.post("", status_code=201, responses=problem_responses({409: "`app_exists`: the slug is taken."}))
def register_app(body: AppRegistration, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Register an app. The response carries the client secret; it is never shown again."""
    with db.session() as session:
        reg = service.register_app(
            session,
            slug=body.slug,
            name=body.name,
            redirect_uris=body.redirect_uris,
            scopes=body.scopes,
            vendor_name=body.vendor,
            actor=actor,
        )
        return service.app_summary(reg.app) | {"client_secret": reg.client_secret}


@router.get("/{slug}", responses=APP_NOT_FOUND)
def show_app(slug: str, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    with db.session() as session:
        app = service.get_app(session, slug)
        vendor = session.get(Vendor, app.vendor_id) if app.vendor_id else None
        return service.app_summary(app, vendor)


@router.post("/{slug}/suspend", responses=APP_NOT_FOUND)
def suspend_app(slug: str, body: ListingChange, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Suspend an app; its tokens stay but every call is refused until it is listed again."""
    with db.session() as session:
        app = service.suspend_app(session, service.get_app(session, slug), actor=actor, reason=body.reason)
        return service.app_summary(app)
