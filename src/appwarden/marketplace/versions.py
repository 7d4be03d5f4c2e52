"""App versions: what a vendor declares before review (scopes with justifications, volume, retention).

Only a draft version changes; a submitted one is frozen for review, a decided one for good. A scope
increase on a listed app is a new version: the app keeps serving the version in force meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.marketplace.models import App, AppVersion, LifecycleState, VersionStatus
from appwarden.marketplace.scopes import FieldScope, parse_scope, parse_scopes
from appwarden.marketplace.tiers import tier_of

MIN_JUSTIFICATION = 20  # characters: a reason, not a word
VOLUME_MEASURES = ("people_per_day", "requests_per_minute")


def versions_of(session: Session, app: App) -> list[AppVersion]:
    return list(
        session.scalars(select(AppVersion).where(AppVersion.app_id == app.id).order_by(AppVersion.number))
    )


def get_version(session: Session, app: App, number: int | None = None) -> AppVersion:
    """Version ``number`` of the app, or its latest; 404 ``version_not_found``."""
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


def requested_scopes(version: AppVersion) -> list[str]:
    return [item["scope"] for item in version.requested]


def requested_fields(version: AppVersion) -> list[str]:
    """The customer fields the version asks for, in order."""
    out: list[str] = []
    for scope in requested_scopes(version):
        parsed = parse_scope(scope)
        if isinstance(parsed, FieldScope):
            out.append(parsed.field)
    return out


def missing_declarations(version: AppVersion) -> list[str]:
    """What the vendor still has to declare before the version can be submitted."""
    missing: list[str] = []
    if not version.requested:
        missing.append("scopes")
    if not version.volume:
        missing.append("volume")
    missing.extend(f"retention.{f}" for f in requested_fields(version) if f not in version.retention)
    return missing


def mark_submitted(session: Session, app: App, version: AppVersion, *, actor: str, now: datetime) -> None:
    """Freeze a complete draft for review (the caller checked the questionnaire and evidence)."""
    _draft(version)
    version.status = VersionStatus.SUBMITTED.value
    version.submitted_at = now
    record(
        session,
        EventTag.APP_VERSION_SUBMITTED,
        actor=actor,
        app_id=app.id,
        version=version.number,
        tier=tier_of(requested_scopes(version)).tier,
    )


def version_summary(version: AppVersion) -> dict[str, Any]:
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
