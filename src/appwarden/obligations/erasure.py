"""Erasure requests to vendors (issue 14, point 2): each app's webhook endpoint and the requests owed to it.

A vendor registers one endpoint per app (:func:`set_endpoint`); the secret is generated here, shown once,
and stored sealed (AES-GCM under a key derived from the master key and bound to the app, as
``platform.totp`` seals TOTP secrets): the platform must sign with it, so it cannot be a hash.

:func:`request_erasure` enqueues a request once per idempotency key (enqueuing again returns the row
already there); ``obligations.erasure_delivery.deliver_due`` sends them. :func:`schedule_company_redacts`
owes a ``company.redact`` to the app for every connection its company revoked at least 48 hours ago
(``erasure_company_redact_delay_hours``), naming the people the app received from the ledger.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.errors import InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.ledger.exposure import received_per_app
from appwarden.marketplace import standing
from appwarden.marketplace.vendors import profile_of
from appwarden.oauth.connections import revoked_connections
from appwarden.obligations.models import ErasureRequest, VendorEndpoint
from appwarden.obligations.vocabulary import ErasureStatus, ErasureTopic
from appwarden.platform.directory import company_names, customer_cards
from appwarden.sealing import derive_key, seal, unseal


@dataclass(frozen=True, slots=True)
class ErasureView:
    """One erasure request as the CLI and the tests read it."""

    id: str
    app: str
    company: str | None
    topic: str
    status: str
    attempts: int
    idempotency_key: str
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``erasure list --json``)."""
        return {
            "id": self.id,
            "app": self.app,
            "company": self.company,
            "topic": self.topic,
            "status": self.status,
            "attempts": self.attempts,
            "idempotency_key": self.idempotency_key,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error,
            "created_at": self.created_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "payload": self.payload,
        }


def sealing_key(master_key: bytes) -> bytes:
    """The AES-256 key for endpoint secrets, derived from the master key (never the master key itself)."""
    return derive_key(master_key, b"appwarden vendor erasure endpoint secret sealing v1")


def open_secret(key: bytes, app_id: int, stored: str) -> str | None:
    """The endpoint secret sealed in ``stored``, or None under another key or another app's row."""
    return unseal(key, f"app:{app_id}", stored)


def set_endpoint(
    session: Session, settings: Settings, app_ref: str, url: str, *, actor: str, now: datetime
) -> tuple[str, str]:
    """Register (or replace) the app's erasure endpoint with a fresh secret; return (app slug, secret).
    The secret is returned this once and stored only sealed. 400 for a URL that is not http(s);
    404 ``app_not_found``."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("the endpoint must be an http(s) URL with a host", parameter="url")
    app = standing.find(session, app_ref)
    secret = "whsec_" + secrets.token_urlsafe(32)
    sealed = seal(sealing_key(settings.master_key), f"app:{app.id}", secret)
    endpoint = session.scalar(select(VendorEndpoint).where(VendorEndpoint.app_id == app.id))
    if endpoint is None:
        session.add(
            VendorEndpoint(app_id=app.id, url=url, sealed_secret=sealed, created_at=now, updated_at=now)
        )
    else:
        endpoint.url, endpoint.sealed_secret, endpoint.updated_at = url, sealed, now
        # A new URL and secret void the review's check: it must pass again for the new endpoint.
        endpoint.check_passed = endpoint.check_reason = endpoint.checked_at = None
    # The event names the host only: a URL may carry a credential in its path or query.
    record(session, EventTag.VENDOR_ENDPOINT_SET, actor=actor, app_id=app.id, host=parts.hostname)
    return app.slug, secret


def set_own_endpoint(
    session: Session, settings: Settings, vendor_id: int, slug: str, url: str, *, now: datetime
) -> tuple[str, str]:
    """:func:`set_endpoint` for the vendor's own app, recorded under the vendor's name: another vendor's
    app is a 404 like a missing one."""
    app = standing.find(session, slug[:200])
    if app.vendor_id != vendor_id:
        raise NotFound(f"you have no app {slug[:60]!r}", code="app_not_found")
    vendor = profile_of(session, vendor_id)
    actor = vendor.name if vendor is not None else f"vendor {vendor_id}"
    return set_endpoint(session, settings, app.slug, url, actor=actor, now=now)


def endpoint_of(session: Session, settings: Settings, app_id: int) -> tuple[str, str] | None:
    """The app's endpoint URL and its opened secret, or None when none is registered (or it no longer
    opens: the master key changed)."""
    endpoint = session.scalar(select(VendorEndpoint).where(VendorEndpoint.app_id == app_id))
    if endpoint is None:
        return None
    secret = open_secret(sealing_key(settings.master_key), app_id, endpoint.sealed_secret)
    return None if secret is None else (endpoint.url, secret)


def request_erasure(
    session: Session,
    *,
    app_id: int,
    company_id: int | None,
    topic: ErasureTopic,
    payload: dict[str, Any],
    idempotency_key: str,
    now: datetime,
    actor: str = "obligations",
) -> tuple[str, bool]:
    """Owe the app's vendor this request unless one with ``idempotency_key`` is owed or sent already;
    return (its public id, whether it was created now)."""
    found = session.scalar(
        select(ErasureRequest.public_id).where(ErasureRequest.idempotency_key == idempotency_key)
    )
    if found is not None:
        return found, False
    row = ErasureRequest(
        app_id=app_id,
        company_id=company_id,
        topic=topic.value,
        payload=payload,
        idempotency_key=idempotency_key,
        status=ErasureStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    try:
        # A savepoint: a concurrent enqueue of the same key wins the unique index, this one reads it.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        public_id = session.scalar(
            select(ErasureRequest.public_id).where(ErasureRequest.idempotency_key == idempotency_key)
        )
        assert public_id is not None
        return public_id, False
    record(
        session,
        EventTag.VENDOR_ERASURE_REQUESTED,
        actor=actor,
        app_id=app_id,
        company_id=company_id,
        request=row.public_id,
        topic=topic.value,
    )
    return row.public_id, True


def schedule_company_redacts(session: Session, settings: Settings, now: datetime) -> list[str]:
    """Enqueue a ``company.redact`` for every connection revoked at least the configured delay (48 h)
    ago and not yet owed one; return the new requests' public ids. The payload names the company and
    every customer (public id) the app received from it, in any mode, according to the ledger."""
    due = revoked_connections(
        session, revoked_before=now - timedelta(hours=settings.erasure_company_redact_delay_hours)
    )
    if not due:
        return []
    received = received_per_app(session, {r.connection.app_id for r in due})
    companies = company_names(session, {r.connection.company_id for r in due})
    created: list[str] = []
    for revoked in due:
        conn = revoked.connection
        # Keyed by the revocation itself: a connection granted again and revoked again owes a new one.
        key = f"company.redact:{conn.public_id}:{int(revoked.revoked_at.timestamp())}"
        people: set[int] = set()
        for bitmap in received[conn.app_id].get(conn.company_id, {}).values():
            people.update(bitmap)
        cards = customer_cards(session, people)
        payload = {
            "company": companies[conn.company_id].public_id,
            "connection": conn.public_id,
            "revoked_at": revoked.revoked_at.isoformat(),
            "customers": sorted(card.public_id for card in cards.values()),
        }
        public_id, new = request_erasure(
            session,
            app_id=conn.app_id,
            company_id=conn.company_id,
            topic=ErasureTopic.COMPANY_REDACT,
            payload=payload,
            idempotency_key=key,
            now=now,
        )
        if new:
            created.append(public_id)
    return created


def list_requests(
    session: Session,
    *,
    app_ref: str | None = None,
    status: ErasureStatus | None = None,
    public_ids: Collection[str] | None = None,
) -> list[ErasureView]:
    """Every erasure request (of one app, in one status, among ``public_ids``), newest first;
    404 ``app_not_found``."""
    query = select(ErasureRequest).order_by(ErasureRequest.id.desc())
    if app_ref is not None:
        query = query.where(ErasureRequest.app_id == standing.find(session, app_ref).id)
    if status is not None:
        query = query.where(ErasureRequest.status == status.value)
    if public_ids is not None:
        query = query.where(ErasureRequest.public_id.in_(sorted(public_ids)))
    rows = list(session.scalars(query))
    apps = standing.standings(session, {r.app_id for r in rows})
    companies = company_names(session, {r.company_id for r in rows if r.company_id is not None})
    return [
        ErasureView(
            id=r.public_id,
            app=apps[r.app_id].slug,
            company=companies[r.company_id].public_id if r.company_id is not None else None,
            topic=r.topic,
            status=r.status,
            attempts=r.attempts,
            idempotency_key=r.idempotency_key,
            next_attempt_at=r.next_attempt_at,
            last_error=r.last_error,
            created_at=r.created_at,
            delivered_at=r.delivered_at,
            payload=dict(r.payload),
        )
        for r in rows
    ]
