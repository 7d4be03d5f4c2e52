"""Canary tables: which synthetic customer was issued to which connection, and the alerts they raise."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow


class Canary(Base):
    """A synthetic customer (``customers.is_canary``) issued to exactly one (app, company) connection.

    The customer row holds the realistic values the app receives; this row says whose it is. ``email``
    (under the operator's canary domain) and ``phone`` (E.164, from the operator's pool) are unique, so a
    mail or call to either names the connection at once.
    """

    __tablename__ = "canaries"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str] = mapped_column(String(40), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CanaryAlert(Base):
    """Someone used a canary's contact details (mail received, or a call/SMS reported by webhook):
    evidence that leaked data is in use (二次被害)."""

    __tablename__ = "canary_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "cal"))
    canary_customer_id: Mapped[int] = mapped_column(ForeignKey("canaries.customer_id"), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    channel: Mapped[str] = mapped_column(String(20))  # smtp | webhook
    kind: Mapped[str] = mapped_column(String(20))  # mail | sms | call | other
    address: Mapped[str] = mapped_column(String(320))  # the canary address or number that was used
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(default=dict)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
