"""Admin API for marketplace apps (``/admin/apps``): the same operations as ``appwarden apps``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from appwarden.db.base import utcnow
from appwarden.marketplace import facts, service
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy
from appwarden.web.deps import AdminDep, DatabaseDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses
from appwarden.web.text import Body

router = APIRouter(prefix="/admin/apps", tags=["admin: apps"], responses=problem_responses(ADMIN_AUTH))
APP_NOT_FOUND = problem_responses({404: "`app_not_found`: no app has this slug or client id."})
TRANSITION = problem_responses(
    {404: "`app_not_found`.", 409: "`invalid_transition`: the lifecycle does not allow this move."}
)


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
    """Every app, its listing state and approved scopes, riskiest first: each with its ``risk``
    (``score`` and ``parts``) and ``unused_scopes``."""
    with db.session() as session:
        return facts.app_views(session, service.list_apps(session), utcnow())


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
    """One app, with its ``risk`` (``score`` and the ``parts`` behind it) and its ``unused_scopes``
    (approved, not delivered in 90 days: candidates to drop)."""
    with db.session() as session:
        return facts.app_view(session, service.get_app(session, slug), utcnow())


@router.post("/{slug}/suspend", responses=TRANSITION)
def suspend_app(slug: str, body: ListingChange, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Suspend an app; its tokens stay but every call is refused until it is listed again."""
    with db.session() as session:
        app = service.suspend_app(session, service.get_app(session, slug), actor=actor, reason=body.reason)
        return service.app_summary(app)


class Restriction(Body):
    reason: str = Field(min_length=1, max_length=2000)
    policy: RestrictedPolicy = RestrictedPolicy.TOKEN


class Relisting(Body):
    reason: str = Field(min_length=1, max_length=2000)


class RedirectUris(Body):
    redirect_uris: list[str] = Field(min_length=1, max_length=10)


@router.post("/{slug}/restrict", responses=TRANSITION)
def restrict_app(slug: str, body: Restriction, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Restrict a listed app: raw identifying fields drop to tokens (``token``) or access pauses."""
    with db.session() as session:
        app = service.transition(
            session,
            service.get_app(session, slug),
            LifecycleState.RESTRICTED,
            actor=actor,
            reason=body.reason,
            policy=body.policy,
        )
        return service.app_summary(app, session=session)


@router.post("/{slug}/relist", responses=TRANSITION)
def relist_app(slug: str, body: Relisting, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Relist a restricted app (after a passed audit; the reason is recorded)."""
    with db.session() as session:
        app = service.relist_app(session, service.get_app(session, slug), actor=actor, reason=body.reason)
        return service.app_summary(app, session=session)


@router.post(
    "/{slug}/rotate-secret", responses=problem_responses({404: "`app_not_found`.", 409: "`app_delisted`."})
)
def rotate_secret(slug: str, actor: AdminDep, db: DatabaseDep) -> dict[str, str]:
    """A new client secret, shown once; the old one stops working now."""
    with db.session() as session:
        app = service.get_app(session, slug)
        return {"slug": app.slug, "client_secret": service.rotate_client_secret(session, app, actor=actor)}


@router.put("/{slug}/redirect-uris", responses=APP_NOT_FOUND)
def set_redirect_uris(slug: str, body: RedirectUris, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Replace the app's redirect URIs."""
    with db.session() as session:
        app = service.set_redirect_uris(
            session, service.get_app(session, slug), body.redirect_uris, actor=actor
        )
        return service.app_summary(app, session=session)
