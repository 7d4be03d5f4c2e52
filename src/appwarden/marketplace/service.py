"""Marketplace operations: register apps, move them through their lifecycle, look them up."""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.digests import token_hash
from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.events.service import EventTag, occurrences, record
from appwarden.marketplace.clients import ClientApp
from appwarden.marketplace.lifecycle import PRE_LISTING, check_transition
from appwarden.marketplace.models import App, AppVersion, Vendor
from appwarden.marketplace.scopes import FieldScope, parse_scope, parse_scopes
from appwarden.marketplace.tiers import tier_of
from appwarden.marketplace.vendors import VendorProfile
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy, VersionStatus

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


def _new_app(session: Session, slug: str, name: str, redirect_uris: list[str]) -> list[str]:
    """Check a new app's slug (free, well-formed), name and redirect URIs; return the URIs."""
    if not SLUG.match(slug):
        raise InvalidInput(f"slug {slug!r} must be 3-64 lowercase letters, digits and hyphens")
    if not name.strip():
        raise InvalidInput("name must not be empty")
    if not redirect_uris:
        raise InvalidInput("at least one redirect URI is required")
    uris = [validate_redirect_uri(u) for u in redirect_uris]
    if session.scalar(select(App.id).where(App.slug == slug)) is not None:
        raise Conflict(f"an app with slug {slug!r} already exists", code="app_exists")
    return uris


def register_app(
    session: Session,
    *,
    slug: str,
    name: str,
    redirect_uris: list[str],
    scopes: list[str] | str,
    vendor_name: str | None = None,
    actor: str = "cli",
    grandfathered: bool = True,
) -> Registration:
    """Register an app directly as listed with its approved scopes (the operator's path, outside
    screening): it is grandfathered (shown as unreviewed, first audit due at once; its access tokens keep
    raw identifying fields until the audit) and its scopes are version 1. ``grandfathered=False`` lists
    it as if screening had approved those scopes (the tests' worlds). Return it with its one-time client
    secret."""
    uris = _new_app(session, slug, name, redirect_uris)
    approved = parse_scopes(scopes)
    if not approved:
        raise InvalidInput("at least one scope is required")
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
        listing_state=LifecycleState.LISTED.value,
        approved_version=1,
        grandfathered=grandfathered,
    )
    session.add(app)
    session.flush()
    session.add(
        AppVersion(
            app_id=app.id,
            number=1,
            status=VersionStatus.APPROVED.value,
            requested=[{"scope": s, "justification": ""} for s in approved],
            approved_scopes=approved,
            decided_at=utcnow(),
        )
    )
    record(session, EventTag.APP_REGISTERED, actor=actor, app_id=app.id, slug=slug, scopes=approved)
    record(session, EventTag.APP_SCOPE_APPROVED, actor=actor, app_id=app.id, scopes=approved)
    return Registration(app=app, client_secret=secret)


def register_vendor_app(
    session: Session, vendor: Vendor, *, slug: str, name: str, redirect_uris: list[str], actor: str
) -> Registration:
    """A vendor's new app: a draft with an empty draft version 1 (it asks for scopes next)."""
    uris = _new_app(session, slug, name, redirect_uris)
    secret = generate_token(48)
    app = App(
        slug=slug,
        name=name.strip(),
        vendor_id=vendor.id,
        client_id=f"app_{generate_token(20)}",
        client_secret_hash=token_hash(secret),
        redirect_uris=uris,
        approved_scopes=[],
        listing_state=LifecycleState.DRAFT.value,
    )
    session.add(app)
    session.flush()
    session.add(AppVersion(app_id=app.id, number=1, status=VersionStatus.DRAFT.value))
    record(session, EventTag.APP_REGISTERED, actor=actor, app_id=app.id, slug=slug, vendor=vendor.public_id)
    return Registration(app=app, client_secret=secret)


def vendor_app(session: Session, vendor: Vendor | VendorProfile, slug: str) -> App:
    """The vendor's own app ``slug``; another vendor's app is 404 ``app_not_found`` like a missing one."""
    app = session.scalar(select(App).where(App.slug == slug, App.vendor_id == vendor.id))
    if app is None:
        raise NotFound(f"you have no app {slug!r}", code="app_not_found")
    return app


def apps_of_vendor(session: Session, vendor: Vendor) -> list[App]:
    return list(session.scalars(select(App).where(App.vendor_id == vendor.id).order_by(App.slug)))


def check_client_secret(app: App | ClientApp, secret: str) -> bool:
    """Constant-time comparison of a presented client secret with the stored hash (of the app's row
    or of its client view, ``clients.ClientApp``)."""
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


_TAGS = {
    LifecycleState.DRAFT: EventTag.APP_RETURNED_TO_DRAFT,
    LifecycleState.SUBMITTED: EventTag.APP_SUBMITTED,
    LifecycleState.IN_REVIEW: EventTag.APP_IN_REVIEW,
    LifecycleState.LISTED: EventTag.APP_LISTED,
    LifecycleState.RESTRICTED: EventTag.APP_RESTRICTED,
    LifecycleState.DELISTED: EventTag.APP_DELISTED,
}


def transition(
    session: Session,
    app: App,
    target: LifecycleState,
    *,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
    policy: RestrictedPolicy | None = None,
) -> App:
    """Move ``app`` to ``target`` if the lifecycle allows it (409 ``invalid_transition`` if not) and
    record who, when and why. Moving to the state it is in changes nothing (the kill switch may run
    twice). ``policy`` is what a restricted app may still do (``token`` unless given)."""
    current = LifecycleState(app.listing_state)
    if current == target and (target != LifecycleState.RESTRICTED or policy in (None, app.restricted_policy)):
        return app
    if current != target:
        check_transition(current, target)
    at = now or utcnow()
    app.listing_state = target.value
    if target == LifecycleState.RESTRICTED:
        app.restricted_policy = (policy or RestrictedPolicy.TOKEN).value
    tag = (
        EventTag.APP_RELISTED
        if current == LifecycleState.RESTRICTED and target == LifecycleState.LISTED
        else _TAGS[target]
    )
    details: dict[str, Any] = {
        "previous": current.value,
        "state": target.value,
        "reason": reason,
        "at": at.isoformat(),
    }
    if target == LifecycleState.RESTRICTED:
        details["policy"] = app.restricted_policy
    record(session, tag, actor=actor, app_id=app.id, **details)
    return app


def suspend_app(
    session: Session, app: App, *, actor: str, reason: str = "", now: datetime | None = None
) -> App:
    """``apps suspend``: restrict the app with access paused (every call refused until it is relisted)."""
    return transition(
        session,
        app,
        LifecycleState.RESTRICTED,
        actor=actor,
        reason=reason,
        now=now,
        policy=RestrictedPolicy.PAUSE,
    )


def relist_app(session: Session, app: App, *, actor: str, reason: str, now: datetime | None = None) -> App:
    """A restricted app back to listed (after a passed audit, or by the operator with a reason)."""
    if not reason.strip():
        raise InvalidInput("relisting needs a reason (e.g. the audit it passed)", code="reason_required")
    return transition(session, app, LifecycleState.LISTED, actor=actor, reason=reason, now=now)


def rotate_client_secret(session: Session, app: App, *, actor: str) -> str:
    """A new client secret for ``app`` (returned once; the old one stops working at once)."""
    if app.listing_state == LifecycleState.DELISTED:
        raise Conflict(f"app {app.slug!r} is delisted", code="app_delisted")
    secret = generate_token(48)
    app.client_secret_hash = token_hash(secret)
    record(session, EventTag.APP_SECRET_ROTATED, actor=actor, app_id=app.id)
    return secret


def set_redirect_uris(session: Session, app: App, uris: list[str], *, actor: str) -> App:
    """Replace the app's redirect URIs (each validated; matched exactly at authorisation)."""
    if not uris:
        raise InvalidInput("at least one redirect URI is required")
    checked = [validate_redirect_uri(u) for u in uris]
    previous = list(app.redirect_uris)
    app.redirect_uris = list(dict.fromkeys(checked))
    record(
        session,
        EventTag.APP_REDIRECT_URIS_CHANGED,
        actor=actor,
        app_id=app.id,
        previous=previous,
        redirect_uris=app.redirect_uris,
    )
    return app


def approved_scopes_of(session: Session, app_id: int, version: int | None) -> list[str] | None:
    """The scopes review approved for ``version`` of the app (frozen), or None if it has none."""
    if version is None:
        return None
    scopes = session.scalar(
        select(AppVersion.approved_scopes).where(AppVersion.app_id == app_id, AppVersion.number == version)
    )
    return None if scopes is None else list(scopes)


def scopes_on_offer(session: Session, app: App | ClientApp) -> tuple[list[str], int | None]:
    """What a new consent may grant, and the number of the version it is of (for the app's row or its
    client view, ``clients.ClientApp``).

    Once reviewed, the approved scopes of the version in force. Before listing (when only test
    companies may connect), the scopes requested by the version in screening: the vendor tests with
    what it asked for, on test data, and reviewers see that traffic on the ledger.
    """
    if app.listing_state in PRE_LISTING and app.approved_version is None:
        version = _version_in_force(session, app)  # none approved: the latest
        if version is not None:
            return [str(r["scope"]) for r in version.requested], version.number
    return list(app.approved_scopes), app.approved_version


def declared_volume_of(session: Session, app_id: int) -> dict[str, Any] | None:
    """The volume the vendor declared (per connected company) in the app's version in force, or None
    when it has no approved version or declared none (grandfathered apps): ``people_per_day`` and
    ``requests_per_minute`` (``{"average", "peak"}``) and ``full_sync`` (present and true only when
    declared: approved with that version, it holds only while that version is in force)."""
    volume = session.scalar(
        select(AppVersion.volume)
        .join(App, (App.id == AppVersion.app_id) & (App.approved_version == AppVersion.number))
        .where(App.id == app_id)
    )
    return dict(volume) if volume else None


def listed_at(session: Session, app_ids: Collection[int]) -> dict[int, datetime]:
    """``{app id: when it was first listed}`` for those of ``app_ids`` that are or were listed: the
    first ``app:listing:listed`` event's time (a relist after a restriction is not a new listing). An
    app listed without one (seeded or grandfathered, listed before screening recorded it) counts from
    its registration. Apps never listed are left out."""
    if not app_ids:
        return {}
    out: dict[int, datetime] = {}
    for app in session.scalars(select(App).where(App.id.in_(list(app_ids)))):
        events = occurrences(session, EventTag.APP_LISTED, app_id=app.id)
        if events:
            at = events[0].data.get("at")  # the move's own clock (injected in tests and the demo)
            out[app.id] = datetime.fromisoformat(at) if isinstance(at, str) else events[0].occurred_at
        elif app.listing_state in (LifecycleState.LISTED, LifecycleState.RESTRICTED):
            out[app.id] = app.created_at
    return out


def put_version_in_force(
    session: Session, app: App, version: AppVersion, approved: list[str], *, actor: str, now: datetime
) -> App:
    """Review approved ``version`` with ``approved`` (possibly weaker than asked): freeze it and make its
    scopes the app's approved scopes (new consents get them; existing connections keep theirs)."""
    if version.status in (VersionStatus.APPROVED, VersionStatus.REJECTED):
        raise Conflict(f"version {version.number} is already {version.status}", code="version_decided")
    version.approved_scopes = parse_scopes(approved) if approved else []
    version.status = VersionStatus.APPROVED.value
    version.decided_at = now
    app.approved_scopes = list(version.approved_scopes)
    app.approved_version = version.number
    record(
        session,
        EventTag.APP_SCOPE_APPROVED,
        actor=actor,
        app_id=app.id,
        version=version.number,
        scopes=list(version.approved_scopes),
    )
    return app


def _version_in_force(session: Session, app: App | ClientApp) -> AppVersion | None:
    """The app's version in force, else its latest version (one not yet reviewed)."""
    query = select(AppVersion).where(AppVersion.app_id == app.id)
    if app.approved_version is not None:
        query = query.where(AppVersion.number == app.approved_version)
    return session.scalar(query.order_by(AppVersion.number.desc()).limit(1))


def _tier(app: App | ClientApp, version: AppVersion | None) -> dict[str, object]:
    scopes = [r["scope"] for r in version.requested] if version is not None else list(app.approved_scopes)
    return tier_of(scopes).to_dict()


def tier_in_force(session: Session, app: App) -> dict[str, object]:
    """The app's tier and reasons: from the version in force, else from its latest version."""
    return _tier(app, _version_in_force(session, app))


def consent_disclosure(session: Session, app: App | ClientApp) -> dict[str, Any]:
    """What the consent page tells an owner about ``app`` (its row or its client view, ``ClientApp``),
    as its vendor declared it: the vendor, the tier and its reasons, each field's purpose (the written
    justification) and retention, and whether raw identifying fields come only by restricted token
    (every app but a grandfathered one)."""
    version = _version_in_force(session, app)
    vendor = session.get(Vendor, app.vendor_id) if app.vendor_id else None
    purposes: dict[str, str] = {}
    retention: dict[str, dict[str, Any]] = {}
    if version is not None:
        for item in version.requested:
            parsed = parse_scope(str(item.get("scope", "")))
            key = parsed.field if isinstance(parsed, FieldScope) else str(parsed)
            if item.get("justification"):
                purposes[key] = str(item["justification"])
        retention = {str(f): dict(r) for f, r in (version.retention or {}).items()}
    tier = _tier(app, version)
    return {
        "vendor": vendor.name if vendor else None,
        "tier": tier["tier"],
        "tier_reasons": tier["reasons"],
        "reviewed": not app.grandfathered and app.approved_version is not None,
        "purposes": purposes,
        "retention": retention,
        "raw_by_restricted_token_only": not app.grandfathered,
    }


def app_summary(
    app: App, vendor: Vendor | VendorProfile | None = None, *, session: Session | None = None
) -> dict[str, object]:
    """The public description of an app (never its secret hash); ``vendor`` (its row or its profile)
    names the vendor; with ``session``, its tier too."""
    summary: dict[str, object] = {
        "slug": app.slug,
        "name": app.name,
        "client_id": app.client_id,
        "vendor": vendor.name if vendor else None,
        "redirect_uris": list(app.redirect_uris),
        "approved_scopes": list(app.approved_scopes),
        "listing_state": app.listing_state,
        "restricted_policy": app.restricted_policy
        if app.listing_state == LifecycleState.RESTRICTED
        else None,
        "version": app.approved_version,
        "grandfathered": bool(app.grandfathered),
        "reviewed": not app.grandfathered and app.approved_version is not None,
        "created_at": app.created_at.isoformat(),
    }
    tier = tier_in_force(session, app) if session is not None else tier_of(app.approved_scopes).to_dict()
    summary["tier"] = tier["tier"]
    summary["tier_reasons"] = tier["reasons"]
    return summary
