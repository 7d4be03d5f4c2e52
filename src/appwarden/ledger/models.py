"""Ledger tables: the hash-chained entries, the chain head, and the bitmap index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, utcnow


class LedgerEntry(Base):
    """One response's deliveries: which people's which fields in which mode went to which app.

    ``payload`` holds, per (field, mode), a serialised roaring bitmap of customer internal ids;
    ``hash`` = SHA-256 over the previous hash and this entry's canonical bytes.
    """

    __tablename__ = "ledger_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    endpoint: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))  # an EntryKind (refused calls are events, not entries)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # Set on restricted-token entries only (hashed into the chain when set, see ``chain.EntryContent``).
    restricted_token: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str | None] = mapped_column(String(500))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerHead(Base):
    """The chain's tip (a single row, id 1): locked while appending so the chain never forks."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class LedgerIndex(Base):
    """The union of everyone app X received field F of, in mode M, in company C (a roaring bitmap)."""

    __tablename__ = "ledger_index"
    __table_args__ = (UniqueConstraint("app_id", "company_id", "field", "mode", name="uq_ledger_index_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    field: Mapped[str] = mapped_column(String(30))
    mode: Mapped[str] = mapped_column(String(10))
    bitmap: Mapped[bytes] = mapped_column(LargeBinary)
    cardinality: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
