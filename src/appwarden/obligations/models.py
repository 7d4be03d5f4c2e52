"""The vendor obligations' tables: each app's erasure webhook endpoint, and the erasure outbox.

The endpoint's secret signs every request (``appwarden.signatures``), so it must be read back: it is
stored sealed (AES-GCM under a key derived from the master key, bound to the app, ``obligations.erasure``),
never in the clear. An erasure request is an outbox row: enqueued once per idempotency key (re-sending
never duplicates), delivered by ``obligations.erasure.deliver_due`` with backoff, dead-lettered after the
last attempt.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow
from appwarden.obligations.vocabulary import ErasureStatus


class VendorEndpoint(Base):
    """Where an app's vendor receives erasure requests, and the sealed secret they are signed with."""

    __tablename__ = "vendor_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    sealed_secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The review's check of this endpoint (``obligations.endpoint_check``); a new URL or secret voids it.
    check_passed: Mapped[bool | None] = mapped_column(Boolean)
    check_reason: Mapped[str | None] = mapped_column(String(500))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ErasureRequest(Base):
    """One erasure request owed to an app's vendor (an outbox row)."""

    __tablename__ = "erasure_requests"
    __table_args__ = (Index("ix_erasure_requests_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "era"))
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    topic: Mapped[str] = mapped_column(String(40))  # an ``ErasureTopic``
    payload: Mapped[dict] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=ErasureStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ErasureAttestation(Base):
    """A vendor's statement that it erased what one erasure request asked: immutable once made (one per
    request; the unique index makes a second one a conflict, never an edit).

    ``scope`` copies what the request named (company, customers' public ids) at attestation time, so
    a later contact with a canary among them contradicts this very statement.
    """

    __tablename__ = "erasure_attestations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "att"))
    request_id: Mapped[int] = mapped_column(ForeignKey("erasure_requests.id"), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    scope: Mapped[dict] = mapped_column(default=dict)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attested_by: Mapped[str] = mapped_column(String(200))
    attested_role: Mapped[str] = mapped_column(String(200))
    statement: Mapped[str | None] = mapped_column(Text)
    attested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
