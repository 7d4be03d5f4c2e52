"""The blind index: keyed HMACs of every customer's normalised values (never the values themselves)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, utcnow


class BlindIndexEntry(Base):
    """One (customer, field, digest): ``digest`` = HMAC-SHA256(index key, field ‖ normalised value)[:16]."""

    __tablename__ = "blind_index"

    customer_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)

    # Matching looks digests up per field; the primary key (customer first) serves refreshes.
    __table_args__ = (Index("ix_blind_index_field_digest", "field", "digest"),)


class BlindIndexHistory(Base):
    """A digest a customer no longer has (a phone or email replaced at ``replaced_at``).

    A dump holding the old value was copied before ``replaced_at``: the snapshot window's evidence.
    Written by ``blind_index.refresh_customers`` when a refresh drops a digest.
    """

    __tablename__ = "blind_index_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, ForeignKey("customers.id", ondelete="CASCADE"))
    field: Mapped[int] = mapped_column(SmallInteger)
    digest: Mapped[bytes] = mapped_column(LargeBinary(16))
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_blind_index_history_field_digest", "field", "digest"),)


# The lookup index, dropped and rebuilt around a bulk rebuild.
LOOKUP_INDEX: Index = next(
    ix
    for ix in BlindIndexEntry.__table__.indexes  # type: ignore[attr-defined]
    if ix.name == "ix_blind_index_field_digest"
)
