"""Marketplace tables: vendors and their apps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import partial

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow


class ListingState(StrEnum):
    LISTED = "listed"
    SUSPENDED = "suspended"
    DELISTED = "delisted"


class Vendor(Base):
    """A company that builds marketplace apps (委託先 when it holds customers' data)."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "ven"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class App(Base):
    """A marketplace app, which is also an OAuth client. The secret is stored hashed only."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret_hash: Mapped[str] = mapped_column(String(128))
    redirect_uris: Mapped[list] = mapped_column(default=list)
    approved_scopes: Mapped[list] = mapped_column(default=list)
    listing_state: Mapped[str] = mapped_column(String(20), default=ListingState.LISTED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
