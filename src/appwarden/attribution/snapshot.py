"""When was the dumped copy made? A window read from the ledger's delivery times and from value changes.

- ``after``: the dump holds people; the copy cannot predate the first delivery of the last of them to
  arrive. Replaying the attributed apps' ledger entries in ``seq`` order gives each person's first
  delivery; ``after`` is the latest among the dumped people.
- ``before``: the first later entry that delivered people for the first time, none of whom is in the
  dump: had the copy been made after it, they would be there.
- Value history (``blind_index_history``): a dumped phone or email a customer has since replaced at T
  means the copy was made before T; a dumped value that replaced an older one at T means after T.

:func:`window` is pure (time-ordered deliveries in, the window and its evidence out); the deliveries
come from the ledger (:func:`appwarden.ledger.exposure.delivery_stream`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.blind_index.service import latest_replacements
from appwarden.ledger.exposure import Delivery  # (recorded_at, people delivered in that entry)


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


def value_changes(session: Session, field: str, people: BitMap) -> list[tuple[int, str, datetime]]:
    """(person, field, latest replaced_at) for ``people`` who replaced an older ``field`` value."""
    # Value changes are rare next to the people in a dump: read the field's changes and keep the dumped
    # people's, instead of sending every dumped id to SQL.
    return [(cid, field, at) for cid, at in latest_replacements(session, field) if cid in people]
