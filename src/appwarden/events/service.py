"""Recording and reading security events. Every tag is enumerated here."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from appwarden.events.models import SecurityEvent


class EventTag(StrEnum):
    """Every security event the system records, as ``source:subject:action``."""

    APP_REGISTERED = "app:listing:registered"
    APP_SUBMITTED = "app:listing:submitted"
    APP_IN_REVIEW = "app:listing:in-review"
    APP_LISTED = "app:listing:listed"
    APP_RESTRICTED = "app:listing:restricted"
    APP_DELISTED = "app:listing:delisted"
    APP_RELISTED = "app:listing:relisted"
    APP_RETURNED_TO_DRAFT = "app:listing:returned-to-draft"
    APP_SCOPE_APPROVED = "app:scope:approved"
    APP_SECRET_ROTATED = "app:secret:rotated"
    APP_REDIRECT_URIS_CHANGED = "app:redirect-uris:changed"
    APP_VERSION_CREATED = "app:version:created"
    APP_VERSION_SUBMITTED = "app:version:submitted"
    APP_VERSION_DECLARED = "app:version:declared"  # a draft's scopes, volume, retention or answers set
    VENDOR_CREATED = "vendor:account:created"
    VENDOR_KEY_ISSUED = "vendor:key:issued"
    VENDOR_KEY_REVOKED = "vendor:key:revoked"
    VENDOR_LOGIN_FAILED = "vendor:login:failed"
    VENDOR_LOGIN_THROTTLED = "vendor:login:throttled"
    REVIEW_DECIDED = "screening:review:decided"
    EVIDENCE_ATTACHED = "screening:evidence:attached"
    AUDIT_SCHEDULED = "screening:audit:scheduled"
    AUDIT_REMINDED = "screening:audit:reminded"
    AUDIT_LAPSED = "screening:audit:lapsed"
    AUDIT_PASSED = "screening:audit:passed"
    STAFF_KEY_ISSUED = "user:key:issued"
    CONNECTION_CREATED = "connection:grant:created"
    CONNECTION_UPDATED = "connection:grant:updated"
    CONNECTION_REVOKED = "connection:grant:revoked"
    CONNECTION_SUSPENDED = "connection:grant:suspended"
    TOKEN_ISSUED = "connection:token:issued"
    TOKEN_REFRESHED = "connection:token:refreshed"
    TOKEN_REVOKED = "connection:token:revoked"
    TOKEN_REUSED = "connection:token:reuse-detected"
    USER_LOGIN = "user:session:login"
    USER_LOGIN_FAILED = "user:session:login-failed"
    USER_LOGIN_THROTTLED = "user:session:login-throttled"
    USER_LOGOUT = "user:session:logout"
    USER_TOTP_ENABLED = "user:totp:enabled"
    # A store owner looked a customer up by phone or e-mail (who has this customer's data).
    USER_CUSTOMER_LOOKED_UP = "user:customer:looked-up"
    DETOKENIZE = "broker:token:detokenized"
    RESTRICTED_TOKEN_MINTED = "broker:restricted-token:minted"
    CALL_REFUSED = "broker:call:refused"
    CANARY_ISSUED = "canary:record:issued"
    CANARY_ALERT = "canary:alert:raised"
    DUMP_ATTRIBUTED = "attribution:dump:attributed"
    INCIDENT_OPENED = "incident:record:opened"
    INCIDENT_CLOSED = "incident:record:closed"
    INCIDENT_FACTS_EDITED = "incident:facts:edited"
    INCIDENT_NOTICES_SENT = "incident:notices:sent"
    INCIDENT_REPORT_DRAFTED = "incident:report:drafted"
    LEDGER_WRITE_FAILED = "ledger:entry:write-failed"
    LEDGER_VERIFIED = "ledger:chain:verified"
    LEDGER_TAMPERED = "ledger:chain:tamper-detected"
    LEDGER_CHECKPOINTED = "ledger:checkpoint:published"
    VENDOR_ERASURE_REQUESTED = "vendor:erasure:requested"
    VENDOR_ERASURE_DELIVERED = "vendor:erasure:delivered"
    VENDOR_ERASURE_FAILED = "vendor:erasure:delivery-failed"
    VENDOR_ERASURE_DEAD = "vendor:erasure:dead-lettered"
    VENDOR_ENDPOINT_SET = "vendor:erasure-endpoint:set"
    VENDOR_ENDPOINT_CHECKED = "vendor:erasure-endpoint:checked"
    VENDOR_ENDPOINT_CHECK_FAILED = "vendor:erasure-endpoint:check-failed"
    VENDOR_ERASURE_ATTESTED = "vendor:erasure:attested"
    MONITOR_ALERT_RAISED = "monitor:alert:raised"
    MONITOR_ALERT_ACKNOWLEDGED = "monitor:alert:acknowledged"
    MONITOR_ALERT_DELIVERED = "monitor:alert:delivered"
    MONITOR_ALERT_DELIVERY_FAILED = "monitor:alert:delivery-failed"
    MONITOR_ACTION_AUDITED = "monitor:action:audited"  # audit mode: what active mode would have done
    MONITOR_APP_THROTTLED = "monitor:app:throttled"
    MONITOR_APP_UNTHROTTLED = "monitor:app:unthrottled"
    MONITOR_APP_RESTRICTED = "monitor:app:restricted"
    MONITOR_APP_KILLED = "monitor:app:killed"


def record(
    session: Session,
    tag: EventTag,
    *,
    actor: str | None = None,
    app_id: int | None = None,
    company_id: int | None = None,
    **data: Any,
) -> SecurityEvent:
    """Add a security event to the session's transaction (it commits with the change it describes)."""
    event = SecurityEvent(tag=tag.value, actor=actor, app_id=app_id, company_id=company_id, data=data)
    session.add(event)
    return event


@dataclass(frozen=True, slots=True)
class Event:
    """A recorded security event as readers see it: a copy of its row."""

    id: int
    tag: str  # an ``EventTag`` value (older rows may hold a tag retired since)
    occurred_at: datetime
    actor: str | None
    app_id: int | None
    company_id: int | None
    data: Mapping[str, Any]


def _event(row: SecurityEvent) -> Event:
    return Event(
        row.id, row.tag, row.occurred_at, row.actor, row.app_id, row.company_id, dict(row.data or {})
    )


def history(
    session: Session, *, app_id: int | None = None, company_id: int | None = None, limit: int = 200
) -> list[Event]:
    """Newest-first events, optionally for one app or company."""
    query = select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(limit)
    if app_id is not None:
        query = query.where(SecurityEvent.app_id == app_id)
    if company_id is not None:
        query = query.where(SecurityEvent.company_id == company_id)
    return [_event(row) for row in session.scalars(query)]


def occurrences(session: Session, tag: EventTag, *, app_id: int) -> list[Event]:
    """Every event of one tag about one app, oldest first (e.g. its scope approvals)."""
    query = (
        select(SecurityEvent)
        .where(SecurityEvent.tag == tag.value, SecurityEvent.app_id == app_id)
        .order_by(SecurityEvent.occurred_at, SecurityEvent.id)
    )
    return [_event(row) for row in session.scalars(query)]


def occurrences_by_app(
    session: Session, tag: EventTag, *, app_ids: Collection[int]
) -> dict[int, list[Event]]:
    """:func:`occurrences` for several apps in one query: ``{app id: events oldest first}`` (every app
    answered, an empty list when it has none)."""
    found: dict[int, list[Event]] = {app_id: [] for app_id in app_ids}
    if found:
        query = (
            select(SecurityEvent)
            .where(SecurityEvent.tag == tag.value, SecurityEvent.app_id.in_(list(found)))
            .order_by(SecurityEvent.occurred_at, SecurityEvent.id)
        )
        for row in session.scalars(query):
            if row.app_id is not None:  # always, by the filter; None never indexes an app
                found[row.app_id].append(_event(row))
    return found


def occurrences_for_company(session: Session, tags: Collection[EventTag], *, company_id: int) -> list[Event]:
    """Every event of ``tags`` about one company, oldest first (e.g. its owners' consents)."""
    query = (
        select(SecurityEvent)
        .where(SecurityEvent.tag.in_([t.value for t in tags]), SecurityEvent.company_id == company_id)
        .order_by(SecurityEvent.occurred_at, SecurityEvent.id)
    )
    return [_event(row) for row in session.scalars(query)]


def naming(session: Session, public_id: str, *, limit: int = 200) -> list[Event]:
    """Newest-first events whose data names ``public_id`` (a customer's, e.g. the people a restricted
    token or a detokenization named, or a store owner's lookup found). Public ids are long random
    strings, so a match on the data's text is a match on the id."""
    query = (
        select(SecurityEvent)
        .where(cast(SecurityEvent.data, Text).contains(public_id))
        .order_by(SecurityEvent.id.desc())
        .limit(limit)
    )
    return [_event(row) for row in session.scalars(query)]


@dataclass(frozen=True, slots=True)
class Tally:
    """Events of one tag about some apps since a time, counted: ``count`` sums each row's ``data.count``
    (a row may stand for many occurrences, e.g. capped refusal rows), ``rows`` counts the rows."""

    count: int
    rows: int
    first_at: datetime | None
    last_at: datetime | None
    by_company: dict[int, int]  # company id -> summed count
    recent: list[Event]  # newest first


def tally(
    session: Session, tag: EventTag, *, app_ids: Collection[int], since: datetime, samples: int = 5
) -> Tally:
    """Count ``tag``'s events about ``app_ids`` from ``since`` on, per company, with the newest few."""
    where = (
        SecurityEvent.tag == tag.value,
        SecurityEvent.app_id.in_(list(app_ids)),
        SecurityEvent.occurred_at >= since,
    )
    calls = func.coalesce(func.sum(SecurityEvent.data["count"].as_integer()), 0)
    total, rows, first, last = session.execute(
        select(calls, func.count(SecurityEvent.id), func.min(SecurityEvent.occurred_at),
               func.max(SecurityEvent.occurred_at)).where(*where)
    ).one()  # fmt: skip
    by_company = session.execute(
        select(SecurityEvent.company_id, calls)
        .where(*where, SecurityEvent.company_id.is_not(None))
        .group_by(SecurityEvent.company_id)
    ).all()
    recent = session.scalars(
        select(SecurityEvent).where(*where).order_by(SecurityEvent.id.desc()).limit(samples)
    )
    return Tally(
        count=int(total),
        rows=int(rows),
        first_at=first,
        last_at=last,
        by_company={int(company): int(n) for company, n in by_company},
        recent=[_event(row) for row in recent],
    )
