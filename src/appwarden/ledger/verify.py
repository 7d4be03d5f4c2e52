"""Verifying the ledger: the keyed hash chain, the head, the index against the entries, and the signed
checkpoints the chain must still extend.

The walk streams entries in ``seq`` order (keyset batches) and classifies each problem with its position:

- ``altered``: an entry's HMAC does not match its content, but the chain still runs through it (its
  successor links to its stored hash, and that successor — or a checkpoint — is authentic) — the content
  was edited in place.
- ``inserted``: an entry that does not verify and that the chain skips over (its successor links to its
  predecessor), that sits beyond the head, or that sits at the head with nothing authentic after it (the
  head row is not signed, so pointing it at a forged entry vouches for nothing). Entries renumbered to
  make room for an insertion are recognised as authentic under their original number and counted in the
  problem's detail.
- ``removed``: a gap in ``seq``; an authentic entry whose predecessor is missing (removal hidden by
  renumbering); or a head that says more entries exist than do (tail truncation).
- ``index_mismatch``: an index bitmap that differs from the union of the entries' payloads for its key.
- against each signed checkpoint (:mod:`appwarden.ledger.checkpoint`): ``truncated`` (entries after some
  point removed, usually with the head rolled back), ``wiped``, ``rewritten`` (the chain's hash at the
  checkpoint's size differs) or ``removed``; and ``checkpoint_refused`` for a checkpoint whose signature
  does not verify with the platform's key (it proves nothing and is not used).

Only the holder of the master key can compute entry hashes, so none of this can be papered over with
database write access alone — except truncating the tail *and* rolling the head back, or wiping entries,
head and index together, which leave a shorter intact chain: the checkpoints, kept outside the database,
are what catch those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pyroaring import BitMap
from sqlalchemy import Row, func, select

from appwarden.db.session import Database
from appwarden.ledger.chain import GENESIS, EntryContent, entry_hash, hashes_equal, iter_payload
from appwarden.ledger.checkpoint import Given, open_all, stored_notes, verifier
from appwarden.ledger.extension import compare
from appwarden.ledger.models import LedgerEntry, LedgerHead, LedgerIndex
from appwarden.ledger.note import Verifier
from appwarden.ledger.report import Problem, VerifyReport
from appwarden.ledger.service import HEAD_ID, current_chain_key

BATCH = 2000
IndexKey = tuple[int, int, str, str]  # (app, company, field, mode)
__all__ = ["Problem", "VerifyReport", "verify"]

_COLUMNS = (
    LedgerEntry.seq,
    LedgerEntry.recorded_at,
    LedgerEntry.request_id,
    LedgerEntry.app_id,
    LedgerEntry.company_id,
    LedgerEntry.connection_id,
    LedgerEntry.endpoint,
    LedgerEntry.kind,
    LedgerEntry.persons,
    LedgerEntry.payload,
    LedgerEntry.restricted_token,
    LedgerEntry.purpose,
    LedgerEntry.prev_hash,
    LedgerEntry.hash,
)


def _stream(db: Database) -> Iterator[Any]:
    """Entries in seq order, a keyset batch per short read transaction (never one huge result)."""
    after = None
    while True:
        query = select(*_COLUMNS).order_by(LedgerEntry.seq).limit(BATCH)
        if after is not None:
            query = query.where(LedgerEntry.seq > after)
        with db.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def _content(row: Row[Any], seq: int) -> EntryContent:
    return EntryContent(
        seq=seq,
        recorded_at=row.recorded_at,
        request_id=row.request_id,
        app_id=row.app_id,
        company_id=row.company_id,
        connection_id=row.connection_id,
        endpoint=row.endpoint,
        kind=row.kind,
        persons=row.persons,
        payload=row.payload,
        restricted_token=row.restricted_token,
        purpose=row.purpose,
    )


class _Walker:
    """The chain walk's state, fed one entry at a time with a one-entry lookahead."""

    def __init__(
        self,
        key: bytes,
        report: VerifyReport,
        head: tuple[int, str] | None,
        vouched: set[tuple[int, str]] | None = None,
    ) -> None:
        self.key = key
        self.report = report
        self.head = head
        self.prev_hash = GENESIS  # stored hash of the last entry the chain runs through
        self.expected = 1  # next seq we expect to see
        self.shift = 0  # entries renumbered by an insertion (+) or removal (-) hidden that way
        self.renumbered: Problem | None = None  # the insertion/removal that the shift belongs to
        self.last_original_seq = 0
        self.last_hash = GENESIS
        # Signed (size, hash) pairs: the chain's hash at each such position is recorded on the way past.
        self.vouched = vouched or set()
        self.watch = {size for size, _ in self.vouched}
        self.hash_at: dict[int, str] = {}
        # Entries that fail their HMAC but that the chain links through, while nothing authentic has yet
        # vouched for their stored hash: edits in place if an authentic entry follows, forged entries at
        # the head if none does (see finish). (problem, original seq)
        self.pending: list[tuple[Problem, int]] = []
        self._valid_cache: tuple[int, int, bool] | None = None
        self.length = 0

    def _valid(self, row: Row[Any], seq: int) -> bool:
        cached = self._valid_cache
        if cached is not None and cached[:2] == (row.seq, seq):
            return cached[2]  # the lookahead already computed it
        try:
            valid = hashes_equal(entry_hash(self.key, row.prev_hash, _content(row, seq)), row.hash)
        except (ValueError, TypeError, AttributeError):
            valid = False
        self._valid_cache = (row.seq, seq, valid)
        return valid

    def add(self, kind: str, position: int, detail: str, count: int = 1) -> Problem:
        problem = Problem(kind, position, detail, count)
        self.report.problems.append(problem)
        return problem

    def step(self, row: Row[Any], nxt: Row[Any] | None) -> bool:
        """Check one entry; False when it is not part of the chain (a forged insertion)."""
        seq = row.seq
        gap = seq - self.expected
        if gap > 0:
            last = seq - 1
            where = f"seq {self.expected}" if gap == 1 else f"seq {self.expected}..{last}"
            self.add("removed", self.expected, f"{where} missing (gap in the chain)", gap)
        self.expected = seq + 1
        links = row.prev_hash == self.prev_hash
        if self._valid(row, seq - self.shift):
            self.pending.clear()  # an authentic entry after them: those were edits in place
            if self.shift and self.renumbered is not None:
                self.renumbered.detail = self._renumber_note()
            if not links and gap <= 0:
                self.add("removed", seq, f"the entry before seq {seq} is missing (later entries renumbered)")
            self._accept(row, seq - self.shift)
            return True
        # Removal hidden by renumbering: the entry verifies under the number it had before.
        if not links and gap <= 0 and self._valid(row, seq - self.shift + 1):
            self.shift -= 1
            self.renumbered = self.add("removed", seq, f"the entry before seq {seq} is missing")
            self._accept(row, seq - self.shift)
            return True
        successor_hash = nxt.prev_hash if nxt is not None else (self.head[1] if self.head else None)
        if successor_hash is not None and successor_hash == row.hash:
            problem = self.add(
                "altered", seq, f"seq {seq}: content does not match its hash (edited in place)"
            )
            # The link only vouches for the stored hash if the successor is authentic (its HMAC covers
            # prev_hash); the head row is not authenticated at all. Until then the entry is pending.
            if nxt is None or not self._valid(nxt, nxt.seq - self.shift):
                self.pending.append((problem, seq - self.shift))
            else:
                self.pending.clear()
            self._accept(row, seq - self.shift)
        elif successor_hash is not None and successor_hash == self.prev_hash:
            self.shift += 1
            self.renumbered = self.add("inserted", seq, f"seq {seq}: forged entry the chain skips over")
            return False
        elif self.head is not None and nxt is None and seq - self.shift > self.head[0]:
            self.add("inserted", seq, f"seq {seq}: beyond the head (seq {self.head[0]})")
            return False
        else:
            # Content and hash both replaced: trust the successor's (HMAC-covered) link so one edit is
            # reported once instead of cascading down the chain.
            self.add("altered", seq, f"seq {seq}: content and hash replaced")
            self._accept(row, seq - self.shift, successor_hash)
        return True

    def _renumber_note(self) -> str:
        assert self.renumbered is not None
        base = self.renumbered.detail.split(";")[0]
        return f"{base}; later entries renumbered by {self.shift:+d} to hide it"

    def _accept(self, row: Row[Any], original_seq: int, chained_hash: str | None = None) -> None:
        self.prev_hash = chained_hash or row.hash
        self.last_original_seq = original_seq
        self.last_hash = self.prev_hash
        if original_seq in self.watch:
            self.hash_at[original_seq] = self.prev_hash

    def _settle_pending(self) -> None:
        """Entries failing their HMAC at the end of the chain, with nothing authentic after them: only a
        checkpoint can vouch that one held a genuine hash (then it was edited); the rest were appended."""
        vouched = max(
            (seq for _, seq in self.pending if (seq, self.hash_at.get(seq, "")) in self.vouched), default=0
        )
        forged = [(problem, seq) for problem, seq in self.pending if seq > vouched]
        self.pending.clear()
        if not forged:
            return
        first, first_seq = forged[0]
        self.length = first_seq - 1
        if len(forged) > 1:
            first.detail = f"seq {first.position}..{forged[-1][0].position}: forged entries"
        else:
            first.detail = f"seq {first.position}: forged entry"
        first.detail += " at the head (fails its HMAC; nothing authentic after it vouches for its hash)"
        first.kind, first.count = "inserted", len(forged)
        merged = {id(problem) for problem, _ in forged[1:]}  # one problem for the run, said once
        self.report.problems[:] = [p for p in self.report.problems if id(p) not in merged]

    def finish(self) -> None:
        self.length = self.last_original_seq  # how far the authentic chain runs (forged head entries aside)
        self._settle_pending()
        if self.head is None:
            if self.report.entries:
                self.add("removed", 0, "the chain head row is missing")
            return
        head_seq, head_hash = self.head
        if head_seq > self.last_original_seq:
            missing = head_seq - self.last_original_seq
            first = self.last_original_seq + 1
            self.add(
                "removed", first, f"tail truncated: head is at seq {head_seq}, entries end before", missing
            )
        elif head_seq == self.last_original_seq and head_hash != self.last_hash:
            self.add("altered", head_seq, "the chain head's hash does not match the last entry")


def verify(
    db: Database,
    *,
    actor: str = "ledger",
    on_progress: Callable[[int, int], None] | None = None,
    checkpoints: Sequence[tuple[str, str | None]] | None = None,
    key: Verifier | None = None,
) -> VerifyReport:
    """Walk and check the whole ledger; record ``ledger:chain:verified`` or ``…:tamper-detected``.

    ``checkpoints`` are ``(source, signed note)`` pairs the chain must extend; by default every file in
    the checkpoint directory. They are verified with ``key``, by default the platform's own verifier key.
    ``on_progress(done, total)`` is called every batch (the CLI draws a progress bar with it).
    """
    from appwarden.events.service import EventTag, record

    if checkpoints is None:
        checkpoints = stored_notes()
    given = open_all(checkpoints, key or verifier()) if checkpoints else []
    report = VerifyReport()
    with db.sessionmaker() as session:
        head_row = session.execute(
            select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.id == HEAD_ID)
        ).first()
        total = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
    head = (int(head_row.seq), str(head_row.hash)) if head_row is not None else None
    if head is not None:
        report.head_seq, report.head_hash = head
    vouched = {(g.checkpoint.size, g.checkpoint.hash_hex) for g in given if g.checkpoint is not None}
    walker = _Walker(current_chain_key(), report, head, vouched)
    unions: dict[IndexKey, BitMap] = {}
    stream = _stream(db)
    row = next(stream, None)
    while row is not None:
        nxt = next(stream, None)
        if walker.step(row, nxt):
            _add_to_unions(unions, row)
        report.entries += 1
        if on_progress is not None and (report.entries % BATCH == 0 or nxt is None):
            on_progress(report.entries, total)
        row = nxt
    walker.finish()
    _check_index(db, unions, report)
    _check_checkpoints(given, walker, report)
    with db.session() as session:
        tag = EventTag.LEDGER_VERIFIED if report.intact else EventTag.LEDGER_TAMPERED
        record(
            session,
            tag,
            actor=actor,
            entries=report.entries,
            head_seq=report.head_seq,
            head_hash=report.head_hash,
            problems=len(report.problems),
            checkpoints=len(given),
        )
    return report


def _check_checkpoints(given: list[Given], walker: _Walker, report: VerifyReport) -> None:
    """Each verified checkpoint must be extended by the chain; each refused one is a problem of its own."""
    empty = report.entries == 0 and walker.head is None and report.index_keys == 0
    for g in given:
        entry: dict[str, Any] = {"source": g.source}
        if g.checkpoint is None:
            detail = f"{g.source}: {g.error}"
            report.problems.append(Problem("checkpoint_refused", 0, detail))
            report.checkpoints.append(entry | {"status": "refused", "detail": detail})
            continue
        cp = g.checkpoint
        entry |= {"origin": cp.origin, "size": cp.size, "hash": cp.hash_hex}
        cut = compare(
            cp,
            length=walker.length,
            hash_at=walker.hash_at.get(cp.size),
            head_seq=walker.head[0] if walker.head else None,
            empty=empty,
        )
        if cut is None:
            report.checkpoints.append(entry | {"status": "extends", "detail": None})
            continue
        report.problems.append(Problem(cut.kind, cut.position, cut.detail, cut.count))
        report.checkpoints.append(entry | {"status": cut.kind, "detail": cut.detail})


def _add_to_unions(unions: dict[IndexKey, BitMap], row: Row[Any]) -> None:
    try:
        for (fld, mode), raw in iter_payload(row.payload):
            key = (row.app_id, row.company_id, fld, mode)
            bitmap = unions.get(key)
            if bitmap is None:
                unions[key] = BitMap.deserialize(bytes(raw))
            else:
                bitmap |= BitMap.deserialize(bytes(raw))
    except (ValueError, TypeError):
        pass  # a mangled payload is already reported by its failing hash


def _check_index(db: Database, unions: dict[IndexKey, BitMap], report: VerifyReport) -> None:
    """Every index bitmap must equal the union of its key's payloads (and no key may be missing)."""
    seen: set[IndexKey] = set()
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(
                LedgerIndex.app_id,
                LedgerIndex.company_id,
                LedgerIndex.field,
                LedgerIndex.mode,
                LedgerIndex.bitmap,
            ).execution_options(yield_per=500)
        )
        for app_id, company_id, fld, mode, blob in rows:
            key = (app_id, company_id, fld, mode)
            seen.add(key)
            try:
                indexed = BitMap.deserialize(blob)
            except (ValueError, TypeError):
                indexed = BitMap()
            _compare(report, key, indexed, unions.get(key, BitMap()))
    for key in unions.keys() - seen:
        _compare(report, key, BitMap(), unions[key])
    report.index_keys = len(seen | unions.keys())


def _compare(report: VerifyReport, key: IndexKey, indexed: BitMap, entries: BitMap) -> None:
    if indexed == entries:
        return
    missing = len(entries - indexed)
    extra = len(indexed - entries)
    app_id, company_id, fld, mode = key
    report.problems.append(
        Problem(
            "index_mismatch",
            0,
            f"index for app {app_id} company {company_id} {fld}:{mode}: "
            f"{missing} people missing, {extra} not in any entry",
            key={"app_id": app_id, "company_id": company_id, "field": fld, "mode": mode},
        )
    )
