"""Match a leaked dump's rows to platform customers through the blind index, never through plaintext.

For each batch of the dump (streamed by :func:`~appwarden.attribution.reader.read_dump`), every cell of
an identifying field is classified (:func:`cell_kind`): a ``full`` value, ``masked`` (``山田 **``,
``090-****-5678``, ``y***@example.com``), a ``token`` (``tok_…``) or empty. Full values are normalised,
HMACed and looked up per field in one batched query; then each row is decided by :func:`decide`:

- phone and email are *strong* (few people share one), names, kana and birthdays are *weak*
  (佐藤 翔太 exists many times);
- a row is a person when one customer is supported by at least two fields and by more fields than
  any other customer, or by a single strong field held by that customer alone with no other field
  pointing at someone else (a typo makes a field find nobody: that does not count against the row),
  or by a unique name when the row has no other full value at all;
- otherwise it is unmatched (a person not in the platform, or too ambiguous to say): precision first.

Phone and email digests that no current customer has are also looked up in the blind-index history
(values since replaced), so a dump copied before a phone change still matches, and says so.

The result is row-aligned (``row_customer_ids``) plus, per field, roaring bitmaps of the matched
people whose cell was full, masked or a token: what the verdict needs to ask which app could have
delivered exactly that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.attribution.blind_index import digest_values, history, lookup
from appwarden.attribution.models import FIELD_CODES
from appwarden.attribution.normalize import normalize_field, swapped_names
from appwarden.attribution.reader import Dump

STRONG = frozenset({"phone", "email"})
MATCHED_FIELDS: tuple[str, ...] = tuple(FIELD_CODES)  # name, name_kana, phone, email, birthday
# Every field whose cell kind is recorded (address is not indexed but the verdict still asks who got it).
KIND_FIELDS: tuple[str, ...] = (*MATCHED_FIELDS, "address")
# A strong value shared by more people than this (a shop's landline typed for every member) proves nothing.
STRONG_MAX_HOLDERS = 4
KINDS = ("full", "masked", "token")
_MASK_CHARS = ("*", "＊", "●", "○", "×")

# (customer, field) → ``replaced_at`` for rows whose dumped value is one the customer had before.
OldValues = dict[tuple[int, str], datetime]


def cell_kind(value: str | None) -> str | None:
    """``full``, ``masked``, ``token`` or ``None`` (empty) for one dumped cell.

    A masked delivery hides part of the value with asterisks (broker masking); a token is the broker's
    ``tok_…`` pseudonym. Anything else is taken as the full value, even when it does not normalise (a
    typo in a full phone number is still a full phone number).
    """
    if value is None or not value.strip():
        return None
    if value.startswith("tok_"):
        return "token"
    if any(ch in value for ch in _MASK_CHARS):
        return "masked"
    return "full"


@dataclass
class MatchResult:
    """What the dump's rows are, as people, and which kind of value each matched person's cells hold."""

    rows: int
    columns: dict[str, str]
    fields: list[str]  # identifying fields with at least one non-empty cell, in dump order
    row_customer_ids: np.ndarray[Any, np.dtype[np.int64]]
    cells: dict[str, dict[str, BitMap]] = field(default_factory=dict)  # field → kind → matched people
    cell_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # field → kind → cells (all rows)
    ambiguous: int = 0  # rows whose values fit several customers equally well
    old_values: OldValues = field(default_factory=dict)
    current_values: dict[str, BitMap] = field(
        default_factory=dict
    )  # field → people whose full value is current

    @property
    def matched(self) -> BitMap:
        """The distinct customers the dump holds."""
        ids = self.row_customer_ids[self.row_customer_ids > 0]
        return BitMap(np.unique(ids).astype(np.uint32))

    @property
    def rows_matched(self) -> int:
        """Rows that are a platform customer."""
        return int(np.count_nonzero(self.row_customer_ids))


def decide(found: Sequence[tuple[str, frozenset[int]]], full_fields: int) -> tuple[int, bool]:
    """The customer a row is (0 for none) and whether it was ambiguous, from its fields' holders.

    ``found`` holds (field, customers with that value) for each full value some customer has;
    ``full_fields`` counts the row's full identifying values (found or not). See the module docstring.
    """
    if not found:
        return 0, False
    strong = [s for f, s in found if f in STRONG and len(s) <= STRONG_MAX_HOLDERS]
    if strong:
        candidates: set[int] | frozenset[int] = set().union(*strong)
    else:
        candidates = min((s for _, s in found), key=len)
    best, best_support, tie = 0, 0, False
    for c in candidates:
        support = sum(1 for _, s in found if c in s)
        if support > best_support:
            best, best_support, tie = c, support, False
        elif support == best_support:
            tie = True
    if tie:
        return 0, True
    if best_support >= 2:
        return best, False
    # One field only. It must be the only field that found anyone (others found nobody: typos, or
    # values the platform never had), and name this customer alone.
    if len(found) != 1:
        return 0, False
    name, holders = found[0]
    if len(holders) != 1:
        return 0, True
    if name in STRONG or full_fields == 1:
        return best, False
    return 0, False


class _Holders:
    """Per field, digest → frozenset of holders, built once per distinct digest (names repeat a lot)."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[bytes, frozenset[int]]] = {f: {} for f in MATCHED_FIELDS}

    def add(self, name: str, hits: dict[bytes, list[int]]) -> None:
        table = self.sets[name]
        for digest, ids in hits.items():
            table[digest] = frozenset(ids)


def match_dump(
    session: Session,
    dump: Dump,
    *,
    key: bytes | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> MatchResult:
    """Stream ``dump`` and match every row (see the module docstring). ``on_rows(rows so far)`` per batch.

    Lookups run in ``session`` (its snapshot), batched per field per batch of rows: no per-row SQL.
    """
    ids_parts: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    present_fields: dict[str, None] = {}
    cells: dict[str, dict[str, BitMap]] = {}
    counts: dict[str, dict[str, int]] = {}
    ambiguous = 0
    old_values: OldValues = {}
    current: dict[str, BitMap] = {}
    rows = 0
    for batch in dump.batches():
        n = batch.size
        # Per field: a list of per-column cell kinds and digests (several phone columns are possible).
        kinds: dict[str, list[list[str | None]]] = {}
        digests: dict[str, list[list[bytes | None]]] = {}
        holders = _Holders()
        old_hits: dict[str, dict[bytes, list[tuple[int, datetime]]]] = {}
        for name, columns in batch.values.items():
            if name not in KIND_FIELDS:
                continue
            for values in columns:
                col_kinds = [cell_kind(v) for v in values]
                kinds.setdefault(name, []).append(col_kinds)
                if any(col_kinds):
                    present_fields[name] = None
                if name not in MATCHED_FIELDS:
                    continue
                full = [v if k == "full" else None for v, k in zip(values, col_kinds, strict=True)]
                digests.setdefault(name, []).append(digest_values(name, normalize_field(name, full), key=key))
                if name == "name":
                    # The other name order ("Taro Yamada" / "太郎 山田") as a second column of keys.
                    digests[name].append(digest_values(name, swapped_names(full), key=key))
        for name, cols in digests.items():
            wanted = [d for col in cols for d in col if d is not None]
            hits = lookup(session, name, wanted)
            holders.add(name, hits)
            if name in STRONG:
                missing = [d for d in wanted if d not in hits]
                if missing:
                    old_hits[name] = history(session, name, missing)
                    holders.add(name, {d: [c for c, _ in v] for d, v in old_hits[name].items()})
        batch_ids = np.zeros(n, dtype=np.int64)
        for i in range(n):
            found: list[tuple[str, frozenset[int]]] = []
            full_fields = 0
            for name, cols in digests.items():
                table = holders.sets[name]
                hit: frozenset[int] = frozenset()
                seen_full = False
                for col in cols:
                    d = col[i]
                    if d is not None:
                        seen_full = True
                        got = table.get(d)
                        if got:
                            hit = hit | got
                full_fields += seen_full
                if hit:
                    found.append((name, hit))
            cid, amb = decide(found, full_fields)
            ambiguous += amb
            batch_ids[i] = cid
        _collect(batch_ids, kinds, digests, old_hits, cells, counts, old_values, current, holders)
        ids_parts.append(batch_ids)
        rows += n
        if on_rows:
            on_rows(rows)
    row_ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, dtype=np.int64)
    return MatchResult(
        rows=rows,
        columns=dump.column_map(),
        fields=list(present_fields),
        row_customer_ids=row_ids,
        cells=cells,
        cell_counts=counts,
        ambiguous=ambiguous,
        old_values=old_values,
        current_values=current,
    )


def _collect(
    batch_ids: np.ndarray[Any, np.dtype[np.int64]],
    kinds: dict[str, list[list[str | None]]],
    digests: dict[str, list[list[bytes | None]]],
    old_hits: dict[str, dict[bytes, list[tuple[int, datetime]]]],
    cells: dict[str, dict[str, BitMap]],
    counts: dict[str, dict[str, int]],
    old_values: OldValues,
    current: dict[str, BitMap],
    holders: _Holders,
) -> None:
    """Fold one batch's cell kinds into per-field bitmaps of matched people, and note old/current values."""
    matched_rows = np.flatnonzero(batch_ids)
    for name, cols in kinds.items():
        per_kind = counts.setdefault(name, dict.fromkeys(KINDS, 0))
        # A person's strongest cell counts: full over masked over token (two columns of one field).
        best: list[str | None] = [None] * len(batch_ids)
        rank = {"full": 3, "masked": 2, "token": 1, None: 0}
        for col in cols:
            for i, k in enumerate(col):
                if k is not None:
                    per_kind[k] += 1
                    if rank[k] > rank[best[i]]:
                        best[i] = k
        bitmaps = cells.setdefault(name, {k: BitMap() for k in KINDS})
        for i in matched_rows.tolist():
            k = best[i]
            if k is not None:
                bitmaps[k].add(int(batch_ids[i]))
    for name in STRONG & digests.keys():
        old = old_hits.get(name, {})
        table = holders.sets[name]
        now = current.setdefault(name, BitMap())
        for i in matched_rows.tolist():
            cid = int(batch_ids[i])
            for digest_col in digests[name]:
                d = digest_col[i]
                if d is None:
                    continue
                for holder, replaced_at in old.get(d) or ():
                    if holder == cid:
                        old_values[(cid, name)] = replaced_at
                if cid in (table.get(d) or ()) and (cid, name) not in old_values:
                    now.add(cid)
