"""The security event table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, utcnow


class SecurityEvent(Base):
    """Something security-relevant happened: ``tag`` is ``source:subject:action``."""

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(120))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    data: Mapped[dict] = mapped_column(default=dict)
