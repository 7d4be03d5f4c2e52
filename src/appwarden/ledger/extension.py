"""Does the ledger still extend a checkpoint? The comparison and its exact wording (pure).

A checkpoint commits to the chain's hash at one size. The ledger extends it when the chain now has at
least that many entries and its hash at that position is the same; anything else is said as what was
cut: entries removed from the end (with or without the head rolled back), everything wiped, or the
history rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from appwarden.ledger.note import Checkpoint


@dataclass(frozen=True)
class Cut:
    """How the ledger fails to extend a checkpoint: a problem kind, where, how many entries, and why."""

    kind: str  # truncated | wiped | rewritten | removed
    position: int
    count: int
    detail: str


def n(value: int) -> str:
    """1469 -> '1,469' (the figures people read in messages)."""
    return f"{value:,}"


def _span(first: int, last: int) -> str:
    return f"entry {n(first)} was" if first == last else f"entries {n(first)}–{n(last)} were"


def compare(
    checkpoint: Checkpoint,
    *,
    length: int,
    hash_at: str | None,
    head_seq: int | None,
    empty: bool = False,
) -> Cut | None:
    """None when the ledger extends ``checkpoint``; else what was cut.

    ``length`` is how far the authentic chain now runs (its last entry's original position), ``hash_at``
    the chain's hash at position ``checkpoint.size`` (None when no entry holds that position), ``head_seq``
    the head row's position (None when the row is gone) and ``empty`` whether entries, head and index are
    all gone.
    """
    size = checkpoint.size
    if size == 0:
        return None  # every chain extends the empty one
    where = f"checkpoint at {n(size)} entries"
    if length < size:
        if length == 0:
            what = "entries, head and index" if empty else "entries"
            return Cut("wiped", 1, size, f"{where}: the ledger is empty — all {n(size)} {what} were wiped")
        rolled = head_seq is None or head_seq < size
        tail = " and the head rolled back" if rolled else f" (the head still says {n(head_seq or 0)})"
        return Cut(
            "truncated",
            length + 1,
            size - length,
            f"{where}: the ledger now has {n(length)} — {_span(length + 1, size)} removed{tail}",
        )
    if hash_at is None:
        return Cut("removed", size, 1, f"{where}: entry {n(size)} is missing from the chain")
    if hash_at != checkpoint.hash_hex:
        return Cut(
            "rewritten",
            size,
            1,
            f"{where}: rewritten — the chain's hash at {n(size)} differs "
            f"(checkpoint {checkpoint.hash_hex[:16]}…, ledger {hash_at[:16]}…)",
        )
    return None
