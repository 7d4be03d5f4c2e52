"""Marketplace tables: vendors, their API keys, apps and app versions (what a vendor declares)."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy, VersionStatus


class Vendor(Base):
    """A company that builds marketplace apps (委託先 when it holds customers' data)."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "ven"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact_email: Mapped[str | None] = mapped_column(String(320))
    # Argon2id; None for vendors recorded by the operator without an account (``apps register --vendor``).
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class VendorApiKey(Base):
    """A vendor's API key for ``/vendor``: SHA-256 of the key only; the key is shown once."""

    __tablename__ = "vendor_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell keys apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class App(Base):
    """A marketplace app, which is also an OAuth client. The secret is stored hashed only.

    ``listing_state`` holds a :class:`LifecycleState`; ``approved_scopes`` are those of
    ``approved_version``, the version in force (new consents get it).
    """

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret_hash: Mapped[str] = mapped_column(String(128))
    redirect_uris: Mapped[list] = mapped_column(default=list)
    approved_scopes: Mapped[list] = mapped_column(default=list)
    listing_state: Mapped[str] = mapped_column(String(20), default=LifecycleState.DRAFT.value)
    approved_version: Mapped[int | None] = mapped_column(Integer)
    restricted_policy: Mapped[str] = mapped_column(String(10), default=RestrictedPolicy.TOKEN.value)
    # Listed without screening (before it existed, or by ``apps register``): shown as unreviewed.
    grandfathered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AppVersion(Base):
    """One version of what a vendor asks for: scopes with justifications, volume, retention.

    ``requested`` is ``[{"scope", "justification"}]``; ``volume`` is ``{"people_per_day": {"average",
    "peak"}, "requests_per_minute": {"average", "peak"}}`` per connected company; ``retention`` is
    ``{field: {"days", "purpose"}}``. ``approved_scopes`` is set once, by review, and never changes.
    """

    __tablename__ = "app_versions"
    __table_args__ = (UniqueConstraint("app_id", "number", name="uq_app_versions_app_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=VersionStatus.DRAFT.value)
    requested: Mapped[list] = mapped_column(default=list)
    volume: Mapped[dict] = mapped_column(default=dict)
    retention: Mapped[dict] = mapped_column(default=dict)
    approved_scopes: Mapped[list | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
