"""A company's deliveries grouped into batches, one per app and calendar day: the ledger's side of the
records of provision to third parties (第三者提供の記録, APPI art. 29) that ``obligations`` writes.

Every entry that delivered data (a page, a detokenization, a restricted token's read) counts; a
restricted token's minting delivers nothing and is left out. Days are calendar days in ``tz`` (the
platform's companies keep their records in Japan time), and each batch's people are distinct within it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.ledger.chain import Key, iter_payload
from appwarden.ledger.models import LedgerEntry
from appwarden.ledger.vocabulary import EntryKind

DELIVERING = sorted(k.value for k in EntryKind if k is not EntryKind.RESTRICTED_MINT)


@dataclass
class Batch:
    """One app's deliveries to one company on one day."""

    app_id: int
    day: date
    first_at: datetime
    last_at: datetime
    entries: int = 0
    people_by_key: dict[Key, BitMap] = field(default_factory=dict)  # (field, mode) -> people that day

    @property
    def people(self) -> BitMap:
        """Everyone any field of whom went out in this batch."""
        return BitMap.union(BitMap(), *self.people_by_key.values())


def batches(
    session: Session, company_id: int, *, since: datetime, until: datetime, tz: tzinfo
) -> list[Batch]:
    """The company's batches with a delivery in ``[since, until)``, by day then app id."""
    query = (
        select(LedgerEntry.app_id, LedgerEntry.recorded_at, LedgerEntry.payload)
        .where(
            LedgerEntry.company_id == company_id,
            LedgerEntry.recorded_at >= since,
            LedgerEntry.recorded_at < until,
            LedgerEntry.kind.in_(DELIVERING),
        )
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=2000)
    )
    found: dict[tuple[date, int], Batch] = {}
    for app_id, recorded_at, payload in session.execute(query):
        frames = [(key, BitMap.deserialize(bytes(raw))) for key, raw in iter_payload(bytes(payload))]
        frames = [(key, people) for key, people in frames if people]
        if not frames:
            continue
        day = recorded_at.astimezone(tz).date()
        batch = found.get((day, app_id))
        if batch is None:
            batch = found[(day, app_id)] = Batch(app_id, day, recorded_at, recorded_at)
        batch.last_at = recorded_at
        batch.entries += 1
        for key, people in frames:
            held = batch.people_by_key.get(key)
            batch.people_by_key[key] = people if held is None else held | people
    return [found[k] for k in sorted(found)]
