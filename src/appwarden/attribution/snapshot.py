"""When was the dumped copy made? A window read from the ledger's delivery times and from value changes.

- ``after``: the dump holds people; the copy cannot predate the first delivery of the last of them to
  arrive. Replaying the attributed apps' ledger entries in ``seq`` order gives each person's first
  delivery; ``after`` is the latest among the dumped people.
- ``before``: the first later entry that delivered people for the first time, none of whom is in the
  dump: had the copy been made after it, they would be there.
- Value history (``blind_index_history``): a dumped phone or email a customer has since replaced at T
  means the copy was made before T; a dumped value that replaced an older one at T means after T.

:func:`window` is pure (time-ordered deliveries in, the window and its evidence out);
:func:`load_deliveries` reads the entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from pyroaring import BitMap
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appwarden.attribution.models import FIELD_CODES, BlindIndexHistory
from appwarden.ledger.chain import iter_payload
from appwarden.ledger.models import EntryKind, LedgerEntry

Delivery = tuple[datetime, BitMap]  # (recorded_at, people first or again delivered in that entry)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def window(
    deliveries: Iterable[Delivery],
    dumped: BitMap,
    *,
    old_values: Mapping[tuple[int, str], datetime] | None = None,
    new_values: Sequence[tuple[int, str, datetime]] = (),
    canaries: BitMap | None = None,
) -> dict[str, Any]:
    """The window ``{"after", "before", "evidence"}`` (ISO 8601 UTC or ``None``) for ``dumped`` people.

    ``deliveries`` must be in ledger order. ``old_values`` maps (person, field) to when the dumped value
    was replaced; ``new_values`` lists (person, field, when their dumped value replaced an older one).
    ``canaries`` (among ``dumped``) date the copy like anyone, but the evidence counts them apart.
    """
    canaries = canaries if canaries is not None else BitMap()

    def counted(ids: BitMap) -> str:
        extra = len(ids & canaries)
        return f"{len(ids - canaries):,}" + (f" (and {extra:,} canary record(s))" if extra else "")

    evidence: list[str] = []
    after: datetime | None = None
    before: datetime | None = None
    seen = BitMap()
    remaining = BitMap(dumped)
    for at, people in deliveries:
        new = people - seen
        if not new:
            continue
        seen |= new
        if remaining:
            hit = new & remaining
            if hit:
                remaining -= hit
                after = at
                if not remaining:
                    evidence.append(
                        f"the last {counted(hit)} of the {len(dumped - canaries):,} dumped people"
                        f" were first delivered at {_iso(at)}"
                    )
            continue
        before = at
        evidence.append(f"{len(new):,} people first delivered at {_iso(at)} are all absent from the dump")
        break
    if remaining and dumped:
        evidence.append(f"{counted(remaining)} dumped people are in none of these deliveries")
    if old_values:
        earliest = min(old_values.values())
        names = ", ".join(sorted({name for _, name in old_values}))
        if before is None or earliest < before:
            before = earliest
        evidence.append(
            f"{len(old_values)} dumped {names} value(s) were since replaced, the first at {_iso(earliest)}"
        )
    if new_values:
        latest = max(new_values, key=lambda v: v[2])
        if after is None or latest[2] > after:
            after = latest[2]
        evidence.append(
            f"{len(new_values)} dumped {latest[1]} value(s) replaced older ones;"
            f" the latest change at {_iso(latest[2])}"
        )
    if after is not None and before is not None and before < after:
        evidence.append("the bounds conflict: the dump may merge copies made at different times")
    return {"after": _iso(after), "before": _iso(before), "evidence": evidence}


def load_deliveries(
    session: Session,
    *,
    app_ids: Sequence[int],
    company_ids: Sequence[int],
    keys: set[tuple[str, str]],
) -> Iterator[Delivery]:
    """The apps' entries in the companies, in ``seq`` order, as (time, people delivered under ``keys``).

    Streams (``yield_per``); only the (field, mode) frames in ``keys`` are deserialised.
    """
    if not app_ids or not company_ids or not keys:
        return
    query = (
        select(LedgerEntry.recorded_at, LedgerEntry.payload)
        .where(
            LedgerEntry.app_id.in_(list(app_ids)),
            LedgerEntry.company_id.in_(list(company_ids)),
            LedgerEntry.kind.in_(list(EntryKind)),
        )
        .order_by(LedgerEntry.seq)
        .execution_options(yield_per=2000)
    )
    for recorded_at, payload in session.execute(query):
        people = BitMap()
        for key, raw in iter_payload(bytes(payload)):
            if key in keys:
                people |= BitMap.deserialize(bytes(raw))
        if people:
            yield recorded_at, people


def value_changes(session: Session, field: str, people: BitMap) -> list[tuple[int, str, datetime]]:
    """(person, field, latest replaced_at) for ``people`` who replaced an older ``field`` value."""
    # Value changes are rare next to the people in a dump: read the field's changes and keep the dumped
    # people's, instead of sending every dumped id to SQL.
    rows = session.execute(
        select(BlindIndexHistory.customer_id, func.max(BlindIndexHistory.replaced_at))
        .where(BlindIndexHistory.field == FIELD_CODES[field])
        .group_by(BlindIndexHistory.customer_id)
    )
    return [(cid, field, at) for cid, at in rows if cid in people]
