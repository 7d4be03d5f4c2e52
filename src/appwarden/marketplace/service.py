"""Marketplace operations: register apps, change listing states, look them up."""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.digests import token_hash
from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.marketplace.models import App, ListingState, Vendor
from appwarden.marketplace.scopes import parse_scopes

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class Registration:
    """A newly registered app and its client secret (shown once, never stored)."""

    app: App
    client_secret: str


def validate_redirect_uri(uri: str) -> str:
    """An absolute https URI (http only for loopback), no fragment: matched exactly at authorisation."""
    parts = urlsplit(uri)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme not in {"https", "http"} or not parts.netloc or parts.fragment:
        raise InvalidInput(f"redirect URI {uri!r} must be an absolute http(s) URI without a fragment")
    if parts.scheme == "http" and not loopback:
        raise InvalidInput(f"redirect URI {uri!r} must use https (http is allowed only for loopback)")
    return uri


def register_app(
    session: Session,
    *,
    slug: str,
    name: str,
    redirect_uris: list[str],
    scopes: list[str] | str,
    vendor_name: str | None = None,
    actor: str = "cli",
) -> Registration:
    """Register an app as listed with its approved scopes; return it with its one-time client secret."""
    if not SLUG.match(slug):
        raise InvalidInput(f"slug {slug!r} must be 3-64 lowercase letters, digits and hyphens")
    if not name.strip():
        raise InvalidInput("name must not be empty")
    if not redirect_uris:
        raise InvalidInput("at least one redirect URI is required")
    uris = [validate_redirect_uri(u) for u in redirect_uris]
    approved = parse_scopes(scopes)
    if not approved:
        raise InvalidInput("at least one scope is required")
    if session.scalar(select(App.id).where(App.slug == slug)) is not None:
        raise Conflict(f"an app with slug {slug!r} already exists", code="app_exists")
    vendor = None
    if vendor_name:
        vendor = session.scalar(select(Vendor).where(Vendor.name == vendor_name))
        if vendor is None:
            vendor = Vendor(name=vendor_name)
            session.add(vendor)
            session.flush()
    secret = generate_token(48)
    app = App(
        slug=slug,
        name=name.strip(),
        vendor_id=vendor.id if vendor else None,
        client_id=f"app_{generate_token(20)}",
        client_secret_hash=token_hash(secret),
        redirect_uris=uris,
        approved_scopes=approved,
        listing_state=ListingState.LISTED.value,
    )
    session.add(app)
    session.flush()
    record(session, EventTag.APP_REGISTERED, actor=actor, app_id=app.id, slug=slug, scopes=approved)
    record(session, EventTag.APP_SCOPE_APPROVED, actor=actor, app_id=app.id, scopes=approved)
    return Registration(app=app, client_secret=secret)


def check_client_secret(app: App, secret: str) -> bool:
    """Constant-time comparison of a presented client secret with the stored hash."""
    return hmac.compare_digest(app.client_secret_hash, token_hash(secret))


def get_app(session: Session, ref: str) -> App:
    """Find an app by slug or client id."""
    app = session.scalar(select(App).where((App.slug == ref) | (App.client_id == ref)))
    if app is None:
        raise NotFound(f"no app {ref!r}", code="app_not_found")
    return app


def app_slugs(session: Session, app_ids: Collection[int] | None = None) -> dict[int, str]:
    """``{app id: slug}`` for ``app_ids`` (every app when None), for callers that hold internal ids."""
    query = select(App.id, App.slug)
    if app_ids is not None:
        query = query.where(App.id.in_(list(app_ids)))
    return {app_id: slug for app_id, slug in session.execute(query)}


def app_id_of(session: Session, slug: str) -> int | None:
    """The internal id of the app with this slug, or None."""
    return session.scalar(select(App.id).where(App.slug == slug))


def list_apps(session: Session) -> list[App]:
    return list(session.scalars(select(App).order_by(App.slug)))


def set_listing_state(
    session: Session, app: App, state: ListingState, *, actor: str, reason: str = ""
) -> App:
    """Move an app to ``state`` and record why. Suspended and delisted apps are refused by the broker."""
    if app.listing_state == state.value:
        return app
    previous = app.listing_state
    app.listing_state = state.value
    tag = {
        ListingState.SUSPENDED: EventTag.APP_SUSPENDED,
        ListingState.DELISTED: EventTag.APP_DELISTED,
        ListingState.LISTED: EventTag.APP_RELISTED,
    }[state]
    record(session, tag, actor=actor, app_id=app.id, previous=previous, reason=reason)
    return app


def app_summary(app: App, vendor: Vendor | None = None) -> dict[str, object]:
    """The public description of an app (never its secret hash)."""
    return {
        "slug": app.slug,
        "name": app.name,
        "client_id": app.client_id,
        "vendor": vendor.name if vendor else None,
        "redirect_uris": list(app.redirect_uris),
        "approved_scopes": list(app.approved_scopes),
        "listing_state": app.listing_state,
        "created_at": app.created_at.isoformat(),
    }
