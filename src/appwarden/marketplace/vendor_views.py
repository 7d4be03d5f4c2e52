"""A vendor's own apps as its people read them in the console: frozen views, looked up by the vendor's
public id so that an app of another vendor is simply not found."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from appwarden.errors import NotFound
from appwarden.marketplace.models import App, Vendor


@dataclass(frozen=True, slots=True)
class VendorApp:
    """One app of a vendor: what it is, where it stands, what it may ask for."""

    slug: str
    name: str
    client_id: str
    listing_state: str  # a ``LifecycleState`` value
    approved_scopes: tuple[str, ...]
    approved_version: int | None


def vendor_name(session: Session, vendor: str) -> str | None:
    """The name of the vendor with public id ``vendor``, or None."""
    return session.scalar(select(Vendor.name).where(Vendor.public_id == vendor))


def _apps(vendor: str) -> Select[App]:
    return (
        select(App)
        .join(Vendor, Vendor.id == App.vendor_id)
        .where(Vendor.public_id == vendor)
        .order_by(App.slug)
    )


def _view(app: App) -> VendorApp:
    return VendorApp(
        app.slug,
        app.name,
        app.client_id,
        app.listing_state,
        tuple(app.approved_scopes),
        app.approved_version,
    )


def apps_of(session: Session, vendor: str) -> list[VendorApp]:
    """The apps of the vendor with public id ``vendor``, by slug."""
    return [_view(a) for a in session.scalars(_apps(vendor))]


def app_of(session: Session, vendor: str, slug: str) -> VendorApp:
    """The vendor's app ``slug``; 404 ``app_not_found`` for another vendor's (as for none at all)."""
    app = session.scalar(_apps(vendor).where(App.slug == slug))
    if app is None:
        raise NotFound(f"no app {slug!r} of this vendor", code="app_not_found")
    return _view(app)
