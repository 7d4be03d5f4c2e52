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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.attribution.evidence import MATCHED_FIELDS, Holders, StrongHolders, WeakEvidence, WeakHit
from appwarden.attribution.reader import Dump
from appwarden.blind_index.normalize import normalize_field, swapped_names
from appwarden.blind_index.service import digest_values, history, lookup

STRONG = frozenset({"phone", "email"})
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


def decide(
    found: Sequence[tuple[str, Holders]], full_fields: int, candidates: Iterable[int] | None = None
) -> tuple[int, bool]:
    """The customer a row is (0 for none) and whether it was ambiguous, from its fields' holders.

    ``found`` holds (field, customers with that value) for each full value some customer has;
    ``full_fields`` counts the row's full identifying values (found or not). See the module docstring.
    """
    if not found:
        return 0, False
    if len(found) == 1 and len(found[0][1]) != 1:
        return 0, True  # one field, several holders, nothing else: every one of them fits equally
    best, best_support, tie = 0, 0, False
    for c in _candidates(found) if candidates is None else candidates:
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


def _candidates(found: Sequence[tuple[str, Holders]]) -> Iterable[int]:
    """Who a row could be: the holders of its strong values when few hold them, else the smallest hit."""
    strong = [s for f, s in found if f in STRONG and len(s) <= STRONG_MAX_HOLDERS]
    return set().union(*strong) if strong else _source(found)


def _source(found: Sequence[tuple[str, Holders]]) -> Holders:
    """Where candidates come from when no strong value names a few people: the smallest hit."""
    return min((s for _, s in found), key=len)


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
    weak = WeakEvidence(session)
    for batch in dump.batches():
        n = batch.size
        # Per field: a list of per-column cell kinds and digests (several phone columns are possible).
        kinds: dict[str, list[list[str | None]]] = {}
        digests: dict[str, list[list[bytes | None]]] = {}
        holders = StrongHolders()  # strong fields, per batch; weak counts are kept across batches
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
            if name not in STRONG:
                weak.count(name, wanted)  # how many hold each name: the hundreds are never loaded
                continue
            hits = lookup(session, name, wanted)
            holders.add(name, hits)
            missing = [d for d in wanted if d not in hits]
            if missing:
                old_hits[name] = history(session, name, missing)
                holders.add(name, {d: [c for c, _ in v] for d, v in old_hits[name].items()})
        batch_ids, batch_ambiguous = _decide_batch(n, digests, holders, weak)
        ambiguous += batch_ambiguous
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


def _decide_batch(
    n: int, digests: dict[str, list[list[bytes | None]]], holders: StrongHolders, weak: WeakEvidence
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], int]:
    """Decide every row of a batch: gather each row's hits column-wise, fetch only the holder lists and
    candidate digests that some row's decision reads (see :class:`WeakHit`), then decide each row.

    The common shape of a leaked customer list — one phone or email held by one customer, plus names —
    is decided column-wise as :func:`decide` would decide it; every other row goes through it.
    """
    # Column-wise first (numpy masks and list comprehensions), row by row only where a row needs it.
    full_count = np.zeros(n, dtype=np.int64)  # the row's identifying fields with a full value
    strong_hits: dict[str, list[frozenset[int]]] = {}
    weak_known: dict[str, list[list[bytes | None]]] = {}  # per column: the digest if someone holds it
    for name, cols in digests.items():
        present = np.zeros(n, dtype=bool)
        for col in cols:
            present |= np.fromiter((d is not None for d in col), dtype=bool, count=n)
        full_count += present
        if name in STRONG:
            table = holders.sets[name]
            empty: frozenset[int] = frozenset()
            hits = [empty if d is None else table.get(d, empty) for d in cols[0]]
            for col in cols[1:]:
                hits = [h if d is None else h | table.get(d, empty) for h, d in zip(hits, col, strict=True)]
            strong_hits[name] = hits
        else:
            counts = weak.counts[name]
            weak_known[name] = [[d if d is not None and counts[d][0] else None for d in col] for col in cols]
    strong_found = np.zeros(n, dtype=np.int64)
    one_holder = np.zeros(n, dtype=np.int64)
    for hits in strong_hits.values():
        sizes = np.fromiter(map(len, hits), dtype=np.int64, count=n)
        strong_found += sizes > 0
        one_holder += sizes == 1
    quick = (strong_found == 1) & (one_holder == 1)  # one strong value found, held by one customer
    quick_rows = np.flatnonzero(quick).tolist()
    rest = np.flatnonzero((full_count > 0) & ~quick).tolist()

    def weak_of(i: int) -> list[tuple[str, list[bytes]]]:
        out = []
        for name, cols in weak_known.items():
            ds = [d for col in cols if (d := col[i]) is not None]
            if ds:
                out.append((name, ds))
        return out

    # The one holder of each quick row (the row's only non-empty strong hit has exactly one member).
    quick_holder = [next(iter(_first_hit(strong_hits, i))) for i in quick_rows]
    general: list[tuple[int, list[tuple[str, Holders]], int, Iterable[int] | None]] = []
    lists_needed: dict[str, set[bytes]] = {}
    for i in rest:
        found: list[tuple[str, Holders]] = [(name, h) for name, hits in strong_hits.items() if (h := hits[i])]
        for name, ds in weak_of(i):
            counts = weak.counts[name]
            found.append((name, WeakHit(name, ds, sum(counts[d][0] for d in ds), weak)))
        source = _candidates(found) if len(found) >= 2 else None
        general.append((i, found, int(full_count[i]), source))
        if isinstance(source, WeakHit) and len(source) > 1:
            lists_needed.setdefault(source.field, set()).update(source.digests)
    for name, wanted in lists_needed.items():
        weak.fetch_lists(name, wanted)

    own_needed: dict[str, set[int]] = {}
    for name, cols in weak_known.items():  # quick holders whose row names someone by a shared value
        counts = weak.counts[name]
        own_needed[name] = {
            h
            for i, h in zip(quick_rows, quick_holder, strict=True)
            if any((d := col[i]) is not None and counts[d][0] > 1 for col in cols)
        }
    for _, found, _, source in general:
        if source is None:
            continue
        unresolved = [hit for _, hit in found if isinstance(hit, WeakHit) and not weak.resolved(hit)]
        if unresolved:
            candidates = set(source)
            for hit in unresolved:
                own_needed.setdefault(hit.field, set()).update(candidates)
    for name, customers in own_needed.items():
        weak.fetch_own(name, customers)

    ids = np.zeros(n, dtype=np.int64)
    ambiguous = 0
    # Quick rows, as :func:`decide` would: the holder, unless weak values found people and none of
    # them is the holder (a contradiction).
    weak_found = np.zeros(len(quick_rows), dtype=bool)
    weak_held = np.zeros(len(quick_rows), dtype=bool)
    for name, cols in weak_known.items():
        for col in cols:
            known = [col[i] for i in quick_rows]
            weak_found |= np.fromiter((d is not None for d in known), dtype=bool, count=len(known))
            weak_held |= np.fromiter(
                (d is not None and weak.holds(name, d, h) for d, h in zip(known, quick_holder, strict=True)),
                dtype=bool,
                count=len(known),
            )
    if quick_rows:
        keep = weak_held | ~weak_found
        ids[np.asarray(quick_rows)[keep]] = np.asarray(quick_holder, dtype=np.int64)[keep]
    for i, found, full_fields, source in general:
        cid, amb = decide(found, full_fields, source)
        ids[i] = cid
        ambiguous += amb
    return ids, ambiguous


def _first_hit(strong_hits: dict[str, list[frozenset[int]]], i: int) -> frozenset[int]:
    return next(h for hits in strong_hits.values() if (h := hits[i]))


def _collect(
    batch_ids: np.ndarray[Any, np.dtype[np.int64]],
    kinds: dict[str, list[list[str | None]]],
    digests: dict[str, list[list[bytes | None]]],
    old_hits: dict[str, dict[bytes, list[tuple[int, datetime]]]],
    cells: dict[str, dict[str, BitMap]],
    counts: dict[str, dict[str, int]],
    old_values: OldValues,
    current: dict[str, BitMap],
    holders: StrongHolders,
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
