"""App versions: what a vendor declares before review (scopes with justifications, volume, retention).

Only a draft version changes; a submitted one is frozen for review, a decided one for good. A scope
increase on a listed app is a new version: the app keeps serving the version in force meanwhile.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.marketplace.models import App, AppVersion
from appwarden.marketplace.scopes import FieldScope, parse_scope, parse_scopes
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.tiers import tier_of
from appwarden.marketplace.vocabulary import LifecycleState, VersionStatus

MIN_JUSTIFICATION = 20  # characters: a reason, not a word
VOLUME_MEASURES = ("people_per_day", "requests_per_minute")
AWAITING_REVIEW = (VersionStatus.SUBMITTED.value, VersionStatus.IN_REVIEW.value)


@dataclass(frozen=True, slots=True)
class VersionView:
    """One app version as other packages see it (screening, which reviews it): a copy of its row taken
    when it was read. A change made since is read again with :func:`version_by_id`; the functions that
    change a version return its new view."""

    id: int
    app_id: int
    number: int
    status: str  # a ``VersionStatus``
    requested: tuple[dict[str, str], ...]  # ``{"scope", "justification"}``
    volume: dict[str, Any]
    retention: dict[str, dict[str, Any]]
    approved_scopes: tuple[str, ...] | None  # set once, by review
    submitted_at: datetime | None
    decided_at: datetime | None


def _view(version: AppVersion) -> VersionView:
    # Deep copies: the row's JSON columns are mutable, the view is a snapshot.
    return VersionView(
        id=version.id,
        app_id=version.app_id,
        number=version.number,
        status=version.status,
        requested=tuple(copy.deepcopy(list(version.requested))),
        volume=copy.deepcopy(dict(version.volume)),
        retention=copy.deepcopy(dict(version.retention)),
        approved_scopes=None if version.approved_scopes is None else tuple(version.approved_scopes),
        submitted_at=version.submitted_at,
        decided_at=version.decided_at,
    )


def _row(session: Session, version_id: int) -> AppVersion:
    version = session.get(AppVersion, version_id)
    if version is None:
        raise NotFound(f"no app version {version_id}", code="version_not_found")
    return version


def versions_of(session: Session, app: App) -> list[AppVersion]:
    return list(
        session.scalars(select(AppVersion).where(AppVersion.app_id == app.id).order_by(AppVersion.number))
    )


def get_version(session: Session, app: App | AppStanding, number: int | None = None) -> AppVersion:
    """Version ``number`` of the app (its row or its :class:`AppStanding`), or its latest; 404
    ``version_not_found``."""
    query = select(AppVersion).where(AppVersion.app_id == app.id)
    query = (
        query.where(AppVersion.number == number)
        if number is not None
        else query.order_by(AppVersion.number.desc())
    )
    version = session.scalar(query.limit(1))
    if version is None:
        raise NotFound(f"app {app.slug!r} has no version {number or ''}".rstrip(), code="version_not_found")
    return version


def version_view(session: Session, app: AppStanding, number: int | None = None) -> VersionView:
    """:func:`get_version` as a view: version ``number`` of the app, or its latest."""
    return _view(get_version(session, app, number))


def version_by_id(session: Session, version_id: int) -> VersionView:
    """The version with this internal id as it is now (e.g. after a decision changed it)."""
    return _view(_row(session, version_id))


def under_review(session: Session, app_id: int) -> VersionView | None:
    """The app's latest version waiting for a decision (submitted or in review), or None."""
    query = select(AppVersion).where(AppVersion.app_id == app_id, AppVersion.status.in_(AWAITING_REVIEW))
    version = session.scalar(query.order_by(AppVersion.number.desc()).limit(1))
    return None if version is None else _view(version)


def awaiting_review(session: Session) -> list[tuple[str, VersionView]]:
    """Every version waiting for a decision with its app's slug, by slug then version number: the
    review queue's rows (one query)."""
    query = (
        select(App.slug, AppVersion)
        .join(App, App.id == AppVersion.app_id)
        .where(AppVersion.status.in_(AWAITING_REVIEW))
        .order_by(App.slug, AppVersion.number)
    )
    return [(slug, _view(version)) for slug, version in session.execute(query)]


def open_version(session: Session, app_id: int, *, actor: str) -> VersionView:
    """:func:`new_version` of the app with this internal id, as a view."""
    app = session.get(App, app_id)
    if app is None:
        raise NotFound(f"no app {app_id}", code="app_not_found")
    return _view(new_version(session, app, actor=actor))


def new_version(session: Session, app: App, *, actor: str) -> AppVersion:
    """A new draft version, a copy of the latest one's declarations (only if none is open)."""
    latest = session.scalar(
        select(AppVersion).where(AppVersion.app_id == app.id).order_by(AppVersion.number.desc()).limit(1)
    )
    if latest is not None and latest.status in (
        VersionStatus.DRAFT,
        VersionStatus.SUBMITTED,
        VersionStatus.IN_REVIEW,
    ):
        raise Conflict(f"version {latest.number} is still {latest.status}", code="version_open")
    if app.listing_state == LifecycleState.DELISTED:
        raise Conflict(f"app {app.slug!r} is delisted", code="app_delisted")
    version = AppVersion(
        app_id=app.id,
        number=(latest.number + 1) if latest else 1,
        status=VersionStatus.DRAFT.value,
        requested=list(latest.requested) if latest else [],
        volume=dict(latest.volume) if latest else {},
        retention=dict(latest.retention) if latest else {},
    )
    session.add(version)
    session.flush()
    record(session, EventTag.APP_VERSION_CREATED, actor=actor, app_id=app.id, version=version.number)
    return version


def _draft(version: AppVersion) -> AppVersion:
    if version.status != VersionStatus.DRAFT:
        raise Conflict(
            f"version {version.number} is {version.status}: only a draft version changes "
            "(create a new version for changes)",
            code="version_frozen",
        )
    return version


def request_scopes(version: AppVersion, requested: list[dict[str, str]]) -> AppVersion:
    """Set the scopes asked for, each with a written justification (why this field, in this mode)."""
    _draft(version)
    scopes = parse_scopes([item["scope"] for item in requested])
    if not scopes:
        raise InvalidInput("at least one scope is required", code="invalid_scope")
    if len(scopes) != len(requested):
        raise InvalidInput("a scope is listed twice", code="invalid_scope")
    for item in requested:
        if len(item["justification"].strip()) < MIN_JUSTIFICATION:
            raise InvalidInput(
                f"scope {item['scope']!r} needs a justification of at least {MIN_JUSTIFICATION} characters",
                code="justification_required",
                scope=item["scope"],
            )
    version.requested = [
        {"scope": i["scope"], "justification": i["justification"].strip()} for i in requested
    ]
    return version


def declare_volume(version: AppVersion, volume: Mapping[str, Any]) -> AppVersion:
    """People per day and requests per minute, average and peak, per connected company; and
    ``full_sync`` (default false): the app reads whole member lists. Stored only when true, so a
    declaration without it reads as before."""
    _draft(version)
    clean: dict[str, Any] = {}
    for measure in VOLUME_MEASURES:
        figures = volume.get(measure)
        if figures is None:
            raise InvalidInput(f"volume needs {measure!r}", code="invalid_volume")
        average, peak = figures["average"], figures["peak"]
        if average < 0 or peak < average:
            raise InvalidInput(f"{measure}: need 0 ≤ average ≤ peak", code="invalid_volume")
        clean[measure] = {"average": average, "peak": peak}
    full_sync = volume.get("full_sync", False)
    if not isinstance(full_sync, bool):
        raise InvalidInput("full_sync must be true or false", code="invalid_volume")
    if full_sync:
        clean["full_sync"] = True
    version.volume = clean
    return version


def declare_retention(version: AppVersion, retention: dict[str, dict[str, Any]]) -> AppVersion:
    """Retention period (days) and purpose for each customer field the version asks for."""
    _draft(version)
    fields = requested_fields(version)
    unknown = sorted(set(retention) - set(fields))
    if unknown:
        raise InvalidInput(
            f"retention given for fields not requested: {', '.join(unknown)}", code="invalid_retention"
        )
    for field, item in retention.items():
        if not 0 <= int(item["days"]) <= 3650 or len(str(item["purpose"]).strip()) < 5:
            raise InvalidInput(f"retention of {field!r}: days 0-3650 and a purpose", code="invalid_retention")
    version.retention = {
        f: {"days": int(i["days"]), "purpose": str(i["purpose"]).strip()} for f, i in retention.items()
    }
    return version


def requested_scopes(version: AppVersion | VersionView) -> list[str]:
    return [item["scope"] for item in version.requested]


def requested_fields(version: AppVersion | VersionView) -> list[str]:
    """The customer fields the version asks for, in order."""
    out: list[str] = []
    for scope in requested_scopes(version):
        parsed = parse_scope(scope)
        if isinstance(parsed, FieldScope):
            out.append(parsed.field)
    return out


def missing_declarations(version: AppVersion | VersionView) -> list[str]:
    """What the vendor still has to declare before the version can be submitted."""
    missing: list[str] = []
    if not version.requested:
        missing.append("scopes")
    if not version.volume:
        missing.append("volume")
    missing.extend(f"retention.{f}" for f in requested_fields(version) if f not in version.retention)
    return missing


def mark_submitted(session: Session, version_id: int, *, actor: str, now: datetime) -> VersionView:
    """Freeze a complete draft for review (the caller checked the questionnaire and evidence)."""
    version = _draft(_row(session, version_id))
    version.status = VersionStatus.SUBMITTED.value
    version.submitted_at = now
    record(
        session,
        EventTag.APP_VERSION_SUBMITTED,
        actor=actor,
        app_id=version.app_id,
        version=version.number,
        tier=tier_of(requested_scopes(version)).tier,
    )
    return _view(version)


def mark_in_review(session: Session, version_id: int) -> VersionView:
    """A submitted version's first review decision is being recorded: it is in review from now on
    (409 ``version_decided`` unless it was submitted)."""
    version = _row(session, version_id)
    if version.status != VersionStatus.SUBMITTED:
        raise Conflict(f"version {version.number} is {version.status}, not submitted", code="version_decided")
    version.status = VersionStatus.IN_REVIEW.value
    return _view(version)


def mark_rejected(session: Session, version_id: int, *, now: datetime) -> VersionView:
    """Review rejected the version: frozen as rejected for good (409 ``version_decided`` unless it was
    waiting for a decision). The app keeps serving the version in force, if it has one."""
    version = _row(session, version_id)
    if version.status not in AWAITING_REVIEW:
        raise Conflict(
            f"version {version.number} is {version.status}, not under review", code="version_decided"
        )
    version.status = VersionStatus.REJECTED.value
    version.decided_at = now
    return _view(version)


def version_summary(version: AppVersion | VersionView) -> dict[str, Any]:
    """A version as the vendor and reviewers see it, with its tier and reasons."""
    tier = tier_of(requested_scopes(version))
    return {
        "version": version.number,
        "status": version.status,
        "tier": tier.tier,
        "tier_reasons": list(tier.reasons),
        "requested": list(version.requested),
        "volume": dict(version.volume),
        "retention": dict(version.retention),
        "approved_scopes": None if version.approved_scopes is None else list(version.approved_scopes),
        "submitted_at": version.submitted_at.isoformat() if version.submitted_at else None,
        "decided_at": version.decided_at.isoformat() if version.decided_at else None,
        "missing": missing_declarations(version) if version.status == VersionStatus.DRAFT else [],
    }
