"""An app's standing as the package that decides about it (screening) sees and moves it.

Screening holds an :class:`AppStanding`, a frozen copy of the app's row, never the row; every move it
makes (a lifecycle transition, a relist, a version put in force, the end of grandfathering) goes through
the functions here, which apply the marketplace's own rules (``service``, ``lifecycle``) to the row in
the caller's session and transaction, and return the app's new standing. A standing is a snapshot: read
it again (or use the one a move returned) after something changed the app.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import NotFound
from appwarden.marketplace import service
from appwarden.marketplace.models import App, AppVersion
from appwarden.marketplace.vendors import VendorProfile
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy


@dataclass(frozen=True, slots=True)
class AppStanding:
    """Who an app is and where it stands: a copy of its row taken when it was read."""

    id: int
    slug: str
    name: str
    vendor_id: int | None
    listing_state: str  # a ``LifecycleState``
    restricted_policy: str  # a ``RestrictedPolicy``; what it means only while restricted
    grandfathered: bool  # listed without screening: unreviewed until its first audit
    approved_version: int | None  # the version in force
    approved_scopes: tuple[str, ...]  # of the version in force, as review approved them
    created_at: datetime

    @property
    def policy_in_force(self) -> str | None:
        """What the app may still do while restricted (``token`` or ``pause``); None when it is not."""
        return self.restricted_policy if self.listing_state == LifecycleState.RESTRICTED else None


def standing(app: App) -> AppStanding:
    """The standing of an app row this package read (for the marketplace's own modules)."""
    return AppStanding(
        id=app.id,
        slug=app.slug,
        name=app.name,
        vendor_id=app.vendor_id,
        listing_state=app.listing_state,
        restricted_policy=app.restricted_policy,
        grandfathered=bool(app.grandfathered),
        approved_version=app.approved_version,
        approved_scopes=tuple(str(scope) for scope in app.approved_scopes),
        created_at=app.created_at,
    )


def _row(session: Session, app_id: int) -> App:
    # The session's identity map answers when the row was read in this transaction: no second query.
    app = session.get(App, app_id)
    if app is None:
        raise NotFound(f"no app {app_id}", code="app_not_found")
    return app


def find(session: Session, ref: str) -> AppStanding:
    """The app with this slug or client id; 404 ``app_not_found``."""
    return standing(service.get_app(session, ref))


def of_vendor(session: Session, vendor: VendorProfile, slug: str) -> AppStanding:
    """The vendor's own app ``slug``; another vendor's app is 404 ``app_not_found`` like a missing one."""
    return standing(service.vendor_app(session, vendor, slug))


def standing_of(session: Session, app_id: int) -> AppStanding:
    """The app with this internal id (an id another package recorded); 404 ``app_not_found``."""
    return standing(_row(session, app_id))


def standings(session: Session, app_ids: Collection[int]) -> dict[int, AppStanding]:
    """``{app id: standing}`` for those of ``app_ids`` that exist (one query)."""
    if not app_ids:
        return {}
    rows = session.scalars(select(App).where(App.id.in_(list(app_ids))))
    return {app.id: standing(app) for app in rows}


def summary(session: Session, app_id: int, vendor: VendorProfile | None = None) -> dict[str, object]:
    """:func:`service.app_summary` of the app as it is now, with its tier; ``vendor`` names the vendor
    in it (None: no vendor shown)."""
    return service.app_summary(_row(session, app_id), vendor, session=session)


def tier(session: Session, app_id: int) -> int:
    """The app's data tier (0-3): of the version in force, else of its latest version."""
    value = service.tier_in_force(session, _row(session, app_id))["tier"]
    assert isinstance(value, int)
    return value


def transition(
    session: Session,
    app_id: int,
    target: LifecycleState,
    *,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
    policy: RestrictedPolicy | None = None,
) -> AppStanding:
    """:func:`service.transition` of the app with this id (409 ``invalid_transition`` when the
    lifecycle forbids the move); its new standing."""
    app = _row(session, app_id)
    service.transition(session, app, target, actor=actor, reason=reason, now=now, policy=policy)
    return standing(app)


def relist(
    session: Session, app_id: int, *, actor: str, reason: str, now: datetime | None = None
) -> AppStanding:
    """:func:`service.relist_app`: a restricted app back to listed, with the reason (e.g. the audit it
    passed); its new standing."""
    app = _row(session, app_id)
    service.relist_app(session, app, actor=actor, reason=reason, now=now)
    return standing(app)


def put_in_force(
    session: Session, version_id: int, approved: list[str], *, actor: str, now: datetime
) -> AppStanding:
    """:func:`service.put_version_in_force`: review approved the version with this id with ``approved``
    (409 ``version_decided`` if it was decided already); the app's new standing."""
    version = session.get(AppVersion, version_id)
    if version is None:
        raise NotFound(f"no app version {version_id}", code="version_not_found")
    app = _row(session, version.app_id)
    service.put_version_in_force(session, app, version, approved, actor=actor, now=now)
    return standing(app)


def end_grandfathering(session: Session, app_id: int) -> AppStanding:
    """Screening has reviewed the app (a version approved, or an audit passed): it is no longer shown
    as unreviewed, and its access tokens no longer keep raw identifying fields."""
    app = _row(session, app_id)
    app.grandfathered = False
    return standing(app)


def all_standings(session: Session) -> list[AppStanding]:
    """Every app's standing, by slug."""
    return [standing(app) for app in session.scalars(select(App).order_by(App.slug))]
