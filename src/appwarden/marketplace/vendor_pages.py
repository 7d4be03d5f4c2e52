"""What a vendor's person does to its own apps in the console: register one, declare what a draft
version asks for, rotate the client secret. Every function looks the vendor up by its public id (the
person's ``vendor_affiliation``), so another vendor's app is 404 ``app_not_found`` like a missing one,
and records a security event with the person's username as ``actor``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from appwarden.events.service import EventTag, record
from appwarden.marketplace import service, versions
from appwarden.marketplace.vendors import VendorProfile, get_vendor, profile_of


@dataclass(frozen=True, slots=True)
class NewSecret:
    """An app's client id and its client secret, shown once."""

    slug: str
    client_id: str
    client_secret: str


def vendor_profile(session: Session, vendor: str) -> VendorProfile:
    """The vendor with public id ``vendor`` (404 ``vendor_not_found``)."""
    found = profile_of(session, get_vendor(session, vendor).id)
    assert found is not None
    return found


def register(
    session: Session, vendor: str, *, slug: str, name: str, redirect_uris: list[str], actor: str
) -> NewSecret:
    """A new draft app of the vendor with an empty draft version 1; its client secret (shown once)."""
    reg = service.register_vendor_app(
        session,
        get_vendor(session, vendor),
        slug=slug.strip(),
        name=name,
        redirect_uris=redirect_uris,
        actor=actor,
    )
    return NewSecret(reg.app.slug, reg.app.client_id, reg.client_secret)


def _declared(session: Session, vendor: str, slug: str, what: str, actor: str, change: Any) -> None:
    app = service.vendor_app(session, vendor_profile(session, vendor), slug)
    version = change(versions.get_version(session, app))
    record(
        session, EventTag.APP_VERSION_DECLARED, actor=actor, app_id=app.id, version=version.number, what=what
    )


def request_scopes(
    session: Session, vendor: str, slug: str, requested: list[dict[str, str]], *, actor: str
) -> None:
    """The scopes the draft version asks for, each with its justification (``versions.request_scopes``)."""
    _declared(session, vendor, slug, "scopes", actor, lambda v: versions.request_scopes(v, requested))


def declare_volume(session: Session, vendor: str, slug: str, volume: dict[str, Any], *, actor: str) -> None:
    """The draft version's declared volume (``versions.declare_volume``)."""
    _declared(session, vendor, slug, "volume", actor, lambda v: versions.declare_volume(v, volume))


def declare_retention(
    session: Session, vendor: str, slug: str, retention: dict[str, dict[str, Any]], *, actor: str
) -> None:
    """The draft version's retention per requested field (``versions.declare_retention``)."""
    _declared(session, vendor, slug, "retention", actor, lambda v: versions.declare_retention(v, retention))


def rotate_secret(session: Session, vendor: str, slug: str, *, actor: str) -> NewSecret:
    """A new client secret for the vendor's app (the old one stops working now), shown once."""
    app = service.vendor_app(session, vendor_profile(session, vendor), slug)
    secret = service.rotate_client_secret(session, app, actor=actor)
    return NewSecret(app.slug, app.client_id, secret)
