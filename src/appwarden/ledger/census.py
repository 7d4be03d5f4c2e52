"""Counts over the ledger for callers that summarise it (the demo's summary): how many entries it
holds and its head, and how many companies an app has been served in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from appwarden.ledger.models import LedgerEntry, LedgerHead


@dataclass(frozen=True, slots=True)
class LedgerState:
    """How many entries the ledger holds and the hash at its head (None before the first entry)."""

    entries: int
    head: str | None


def ledger_state(session: Session) -> LedgerState:
    """The ledger's entry count and head hash, as of the session's snapshot."""
    entries = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
    head = session.scalar(select(LedgerHead.hash).order_by(LedgerHead.id).limit(1))
    return LedgerState(entries=int(entries), head=head)


def companies_served(session: Session, app_id: int) -> int:
    """In how many companies app ``app_id`` has a ledger entry (any delivery, customer data or not)."""
    count = session.scalar(
        select(func.count(distinct(LedgerEntry.company_id))).where(LedgerEntry.app_id == app_id)
    )
    return int(count or 0)
