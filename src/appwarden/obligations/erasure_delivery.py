"""Sending the erasure outbox to vendors: ``appwarden erasure deliver`` runs :func:`deliver_due` once.

    POST <the app's erasure endpoint>
    Content-Type: application/json
    X-Appwarden-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint secret>
    X-Appwarden-Topic: company.redact | customer.redact | customer.data_request | retention.expired
    Idempotency-Key: <the request's idempotency key>   (the same on every retry: a vendor keeps the first)
    {"id": "era_…", "topic": …, "app": <slug>, "company": "co_…", "created_at": …, "data": {…}}

A due row is claimed by one conditional UPDATE that moves its ``next_attempt_at`` a lease ahead
(committed before sending), so two workers never both send it and a worker that dies mid-send leaves it
due again after the lease. A 2xx marks it delivered; anything else (or no answer within
``erasure_webhook_timeout_seconds``) backs off ``erasure_backoff_base_seconds`` doubling per attempt up to
``erasure_backoff_max_seconds``; after ``erasure_max_attempts`` it is dead-lettered with a security event.
Errors name the status or exception type, never the URL (it may hold a credential) nor the secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import CursorResult, select, update

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.service import EventTag, record
from appwarden.marketplace import standing
from appwarden.obligations.erasure import endpoint_of
from appwarden.obligations.models import ErasureRequest
from appwarden.obligations.vocabulary import ErasureStatus
from appwarden.platform.directory import company_names
from appwarden.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

log = structlog.get_logger()
TOPIC_HEADER = "X-Appwarden-Topic"
LEASE = timedelta(minutes=5)  # longer than one delivery may take (the timeout is at most 120 s)
BATCH = 100


@dataclass(frozen=True, slots=True)
class DeliveryRun:
    """What one :func:`deliver_due` run did."""

    delivered: int
    failed: int  # to be retried
    dead: int  # dead-lettered by this run


class _Failed(Exception):
    """A delivery did not go through; the message names no URL and no secret."""


def _claim(db: Database, now: datetime) -> list[int]:
    won: list[int] = []
    with db.session() as session:
        due = session.scalars(
            select(ErasureRequest.id)
            .where(
                ErasureRequest.status == ErasureStatus.PENDING.value, ErasureRequest.next_attempt_at <= now
            )
            .order_by(ErasureRequest.next_attempt_at, ErasureRequest.id)
            .limit(BATCH)
        ).all()
        for request_id in due:
            # The UPDATE checks the condition again: of two workers that both saw the row due, one wins.
            result = session.execute(
                update(ErasureRequest)
                .where(
                    ErasureRequest.id == request_id,
                    ErasureRequest.status == ErasureStatus.PENDING.value,
                    ErasureRequest.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + LEASE)
            )
            assert isinstance(result, CursorResult)
            if result.rowcount == 1:
                won.append(request_id)
    return won


def _document(
    db: Database, settings: Settings, request_id: int
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    with db.session() as session:
        row = session.get(ErasureRequest, request_id)
        assert row is not None
        app = standing.standings(session, [row.app_id])[row.app_id]
        company = company_names(session, [row.company_id]).get(row.company_id) if row.company_id else None
        document = {
            "id": row.public_id,
            "topic": row.topic,
            "app": app.slug,
            "company": company.public_id if company else None,
            "created_at": row.created_at.isoformat(),
            "idempotency_key": row.idempotency_key,
            "data": dict(row.payload),
        }
        return document, endpoint_of(session, settings, row.app_id)


def _post(
    client: httpx.Client,
    settings: Settings,
    endpoint: tuple[str, str] | None,
    document: dict[str, Any],
    now: datetime,
) -> None:
    if endpoint is None:
        raise _Failed("no erasure endpoint registered for the app")
    url, secret = endpoint
    body = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        TOPIC_HEADER: document["topic"],
        "Idempotency-Key": document["idempotency_key"],
        "User-Agent": "appwarden-obligations",
    }
    try:
        response = client.post(
            url, content=body, headers=headers, timeout=settings.erasure_webhook_timeout_seconds
        )
    except httpx.HTTPError as exc:
        raise _Failed(f"endpoint unreachable: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise _Failed(f"endpoint answered HTTP {response.status_code}")


def deliver_due(db: Database, settings: Settings, now: datetime, client: httpx.Client) -> DeliveryRun:
    """Claim every due erasure request, send it, and mark it delivered, backed off or dead."""
    delivered = failed = dead = 0
    for request_id in _claim(db, now):
        document, endpoint = _document(db, settings, request_id)
        try:
            _post(client, settings, endpoint, document, now)
        except Exception as exc:  # anything at all: the row is retried, the run goes on
            error = str(exc) if isinstance(exc, _Failed) else f"delivery failed: {type(exc).__name__}"
            with db.session() as session:
                row = session.get(ErasureRequest, request_id)
                assert row is not None
                row.attempts += 1
                row.last_error = error[:500]
                facts = {
                    "request": row.public_id,
                    "topic": row.topic,
                    "attempts": row.attempts,
                    "error": error,
                }
                if row.attempts >= settings.erasure_max_attempts:
                    row.status = ErasureStatus.DEAD.value
                    dead += 1
                    tag = EventTag.VENDOR_ERASURE_DEAD
                else:
                    delay = min(
                        settings.erasure_backoff_max_seconds,
                        settings.erasure_backoff_base_seconds * 2 ** (row.attempts - 1),
                    )
                    row.next_attempt_at = now + timedelta(seconds=delay)
                    failed += 1
                    tag = EventTag.VENDOR_ERASURE_FAILED
                record(
                    session, tag, actor="obligations", app_id=row.app_id, company_id=row.company_id, **facts
                )
            log.warning("erasure delivery failed", request=document["id"], error=error)
            continue
        with db.session() as session:
            row = session.get(ErasureRequest, request_id)
            assert row is not None
            row.attempts += 1
            row.status = ErasureStatus.DELIVERED.value
            row.delivered_at = now
            row.last_error = None
            delivered += 1
            record(
                session,
                EventTag.VENDOR_ERASURE_DELIVERED,
                actor="obligations",
                app_id=row.app_id,
                company_id=row.company_id,
                request=row.public_id,
                topic=row.topic,
                attempts=row.attempts,
            )
    return DeliveryRun(delivered, failed, dead)
