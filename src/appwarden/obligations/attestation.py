"""Attestations (issue 14, point 3): the vendor states that it erased what an erasure request asked.

Each delivered erasure request (``company.redact``, ``customer.redact``, ``retention.expired``; a
``customer.data_request`` asks for disclosure, not erasure, and is never attested) is owed one
attestation within ``attestation_deadline_days`` of its delivery: what was erased (the request's scope,
copied), when (``erased_at``), by whom (a named person at the vendor and their role), and an optional
statement. It is immutable: there is no edit, and a second one for the same request is 409
``already_attested``. Past the deadline the monitor raises ``attestation_overdue``; past the deadline
plus ``attestation_grace_days`` it restricts the app (``monitor.obligation_checks``).

Only the vendor whose app the request was owed to sees or attests it: another vendor's request id reads
404 ``erasure_request_not_found`` like a missing one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.marketplace import standing
from appwarden.obligations.models import ErasureAttestation, ErasureRequest
from appwarden.obligations.vocabulary import ERASING_TOPICS, AttestationState, ErasureStatus
from appwarden.platform.directory import company_names

TEXT_MAX = 200
STATEMENT_MAX = 4000


@dataclass(frozen=True, slots=True)
class AttestationView:
    """One erasure request with its attestation state, as the vendor, the CLI and the console read it."""

    request: str
    app: str
    company: str | None
    topic: str
    status: str  # the request's delivery status (``ErasureStatus``)
    delivered_at: datetime | None
    deadline: datetime | None  # None: not delivered yet, or not an erasure
    state: str  # an ``AttestationState``
    scope: dict[str, Any]
    attestation: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``GET /vendor/erasure-requests``, ``erasure attestations --json``)."""
        return {
            "id": self.request,
            "app": self.app,
            "company": self.company,
            "topic": self.topic,
            "status": self.status,
            "delivered_at": _iso(self.delivered_at),
            "deadline": _iso(self.deadline),
            "attestation_state": self.state,
            "scope": self.scope,
            "attestation": self.attestation,
        }


@dataclass(frozen=True, slots=True)
class Overdue:
    """A delivered erasure request past its attestation deadline with no attestation."""

    request: str
    app_id: int
    company_id: int | None
    topic: str
    delivered_at: datetime
    deadline: datetime
    restrict_at: datetime  # the deadline plus the grace period

    def days_overdue(self, now: datetime) -> int:
        """Whole days since the deadline."""
        return (now - self.deadline).days


@dataclass(frozen=True, slots=True)
class AttestedScope:
    """What one attestation covered, for the canary checks (``monitor.obligation_checks``)."""

    attestation: str
    request: str
    app_id: int
    company_id: int | None
    topic: str
    customers: frozenset[str]  # public ids
    erased_at: datetime
    attested_at: datetime


def scope_of(payload: dict[str, Any]) -> dict[str, Any]:
    """What a request asks to erase, from its payload: the company and the customers' public ids."""
    customers = [str(c) for c in payload.get("customers", [])]
    if payload.get("customer"):
        customers.append(str(payload["customer"]))
    return {"company": payload.get("company"), "customers": sorted(set(customers))}


def deadline_of(row: ErasureRequest, settings: Settings) -> datetime | None:
    """When the attestation of ``row`` is due: its delivery plus the deadline days (None before delivery
    or for a request that asks no erasure)."""
    if row.delivered_at is None or row.topic not in ERASING_TOPICS:
        return None
    return row.delivered_at + timedelta(days=settings.attestation_deadline_days)


def _state(row: ErasureRequest, attested: bool, settings: Settings, now: datetime) -> str:
    if row.topic not in ERASING_TOPICS:
        return AttestationState.NOT_REQUIRED
    if attested:
        return AttestationState.ATTESTED
    deadline = deadline_of(row, settings)
    if deadline is None:
        return AttestationState.NOT_DELIVERED
    return AttestationState.OVERDUE if now > deadline else AttestationState.DUE


def _describe(a: ErasureAttestation) -> dict[str, Any]:
    return {
        "id": a.public_id,
        "erased_at": _iso(a.erased_at),
        "attested_at": _iso(a.attested_at),
        "attested_by": {"name": a.attested_by, "role": a.attested_role},
        "statement": a.statement,
        "scope": a.scope,
    }


def _views(
    session: Session, rows: list[ErasureRequest], settings: Settings, now: datetime
) -> list[AttestationView]:
    ids = [r.id for r in rows]
    made = (
        {
            a.request_id: a
            for a in session.scalars(select(ErasureAttestation).where(ErasureAttestation.request_id.in_(ids)))
        }
        if ids
        else {}
    )
    apps = standing.standings(session, {r.app_id for r in rows})
    companies = company_names(session, {r.company_id for r in rows if r.company_id is not None})
    return [
        AttestationView(
            request=r.public_id,
            app=apps[r.app_id].slug,
            company=companies[r.company_id].public_id if r.company_id is not None else None,
            topic=r.topic,
            status=r.status,
            delivered_at=r.delivered_at,
            deadline=deadline_of(r, settings),
            state=_state(r, r.id in made, settings, now),
            scope=scope_of(dict(r.payload)),
            attestation=_describe(made[r.id]) if r.id in made else None,
        )
        for r in rows
    ]


def vendor_requests(
    session: Session, settings: Settings, vendor_id: int, now: datetime
) -> list[AttestationView]:
    """Every erasure request owed to the vendor's apps, newest first, with its attestation state."""
    app_ids = [a.id for a in standing.all_standings(session) if a.vendor_id == vendor_id]
    if not app_ids:
        return []
    rows = list(
        session.scalars(
            select(ErasureRequest)
            .where(ErasureRequest.app_id.in_(app_ids))
            .order_by(ErasureRequest.id.desc())
        )
    )
    return _views(session, rows, settings, now)


def attestations(
    session: Session, settings: Settings, now: datetime, *, app_ref: str | None = None
) -> list[AttestationView]:
    """Every erasure request that asks for erasure (of one app), newest first, with its attestation state
    (the security team's view); 404 ``app_not_found``."""
    query = (
        select(ErasureRequest)
        .where(ErasureRequest.topic.in_(sorted(ERASING_TOPICS)))
        .order_by(ErasureRequest.id.desc())
    )
    if app_ref is not None:
        query = query.where(ErasureRequest.app_id == standing.find(session, app_ref).id)
    return _views(session, list(session.scalars(query)), settings, now)


def _owned(session: Session, vendor_id: int, request_ref: str) -> ErasureRequest:
    row = session.scalar(select(ErasureRequest).where(ErasureRequest.public_id == request_ref[:40]))
    if row is not None and standing.standing_of(session, row.app_id).vendor_id == vendor_id:
        return row
    # Another vendor's request reads exactly like a missing one.
    raise NotFound(f"you have no erasure request {request_ref[:60]!r}", code="erasure_request_not_found")


def _no_nul(value: str, parameter: str) -> None:
    # PostgreSQL text cannot hold NUL: refuse it here, as a 422, not as a failed insert.
    if "\x00" in value:
        raise InvalidInput(f"{parameter} must not contain NUL characters", parameter=parameter)


def _text(value: str, parameter: str, limit: int) -> str:
    _no_nul(value, parameter)
    text = value.strip()
    if not text:
        raise InvalidInput(f"{parameter} must not be empty", parameter=parameter)
    if len(text) > limit:
        raise InvalidInput(f"{parameter} must be at most {limit} characters", parameter=parameter)
    return text


def attest(
    session: Session,
    settings: Settings,
    *,
    vendor_id: int,
    request_ref: str,
    erased_at: datetime,
    name: str,
    role: str,
    statement: str | None,
    now: datetime,
) -> AttestationView:
    """Record the vendor's attestation of its request ``request_ref``. 404 ``erasure_request_not_found``
    (also for another vendor's); 409 ``attestation_not_required`` (a data request),
    ``erasure_not_delivered``, ``already_attested``; 422 for an empty name or role, or an ``erased_at``
    in the future or before the request was made."""
    row = _owned(session, vendor_id, request_ref)
    if row.topic not in ERASING_TOPICS:
        raise Conflict(
            f"{row.topic} asks for disclosure, not erasure: nothing to attest",
            code="attestation_not_required",
        )
    if row.status != ErasureStatus.DELIVERED or row.delivered_at is None:
        raise Conflict("this erasure request has not been delivered yet", code="erasure_not_delivered")
    when = erased_at if erased_at.tzinfo else erased_at.replace(tzinfo=UTC)
    if when > now:
        raise InvalidInput("erased_at is in the future", parameter="erased_at")
    # To the minute: a form gives minutes, and an erasure in the request's own minute is possible.
    if when < row.created_at.replace(second=0, microsecond=0):
        raise InvalidInput("erased_at is before the request was made", parameter="erased_at")
    who, title = _text(name, "name", TEXT_MAX), _text(role, "role", TEXT_MAX)
    _no_nul(statement or "", "statement")
    words = (statement or "").strip() or None
    if words is not None and len(words) > STATEMENT_MAX:
        raise InvalidInput(f"statement must be at most {STATEMENT_MAX} characters", parameter="statement")
    attestation = ErasureAttestation(
        request_id=row.id,
        app_id=row.app_id,
        vendor_id=vendor_id,
        scope=scope_of(dict(row.payload)),
        erased_at=when,
        attested_by=who,
        attested_role=title,
        statement=words,
        attested_at=now,
    )
    taken = Conflict(
        f"erasure request {row.public_id} is attested already; an attestation cannot be changed",
        code="already_attested",
    )
    if has_attestation(session, row.id):
        raise taken
    try:
        # A savepoint: of two concurrent attestations the unique index keeps one; the other is a 409.
        with session.begin_nested():
            session.add(attestation)
    except IntegrityError:
        raise taken from None
    record(
        session,
        EventTag.VENDOR_ERASURE_ATTESTED,
        actor=who,
        app_id=row.app_id,
        company_id=row.company_id,
        request=row.public_id,
        attestation=attestation.public_id,
        topic=row.topic,
        role=title,
        erased_at=when.isoformat(),
    )
    (view,) = _views(session, [row], settings, now)
    return view


def has_attestation(session: Session, request_id: int) -> bool:
    """Whether the request with this internal id is attested."""
    return (
        session.scalar(select(ErasureAttestation.id).where(ErasureAttestation.request_id == request_id))
        is not None
    )


def overdue(
    session: Session, settings: Settings, now: datetime, app_ids: Collection[int] | None = None
) -> list[Overdue]:
    """Every delivered erasure request past its deadline without an attestation (of ``app_ids``)."""
    cutoff = now - timedelta(days=settings.attestation_deadline_days)
    query = (
        select(ErasureRequest)
        .outerjoin(ErasureAttestation, ErasureAttestation.request_id == ErasureRequest.id)
        .where(
            ErasureAttestation.id.is_(None),
            ErasureRequest.status == ErasureStatus.DELIVERED.value,
            ErasureRequest.topic.in_(sorted(ERASING_TOPICS)),
            ErasureRequest.delivered_at < cutoff,
        )
        .order_by(ErasureRequest.id)
    )
    if app_ids is not None:
        query = query.where(ErasureRequest.app_id.in_(list(app_ids)))
    found = []
    for r in session.scalars(query):
        deadline = deadline_of(r, settings)
        assert r.delivered_at is not None and deadline is not None  # delivered, erasing (the query)
        found.append(
            Overdue(
                request=r.public_id,
                app_id=r.app_id,
                company_id=r.company_id,
                topic=r.topic,
                delivered_at=r.delivered_at,
                deadline=deadline,
                restrict_at=deadline + timedelta(days=settings.attestation_grace_days),
            )
        )
    return found


def attested_scopes(session: Session, app_id: int) -> list[AttestedScope]:
    """Every attestation of the app, oldest first, with what it covered."""
    query = (
        select(ErasureAttestation, ErasureRequest.public_id, ErasureRequest.company_id, ErasureRequest.topic)
        .join(ErasureRequest, ErasureRequest.id == ErasureAttestation.request_id)
        .where(ErasureAttestation.app_id == app_id)
        .order_by(ErasureAttestation.attested_at, ErasureAttestation.id)
    )
    return [
        AttestedScope(
            attestation=a.public_id,
            request=request,
            app_id=a.app_id,
            company_id=company_id,
            topic=topic,
            customers=frozenset(str(c) for c in a.scope.get("customers", [])),
            erased_at=a.erased_at,
            attested_at=a.attested_at,
        )
        for a, request, company_id, topic in session.execute(query)
    ]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
