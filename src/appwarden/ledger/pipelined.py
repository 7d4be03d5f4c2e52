"""The ledger append on PostgreSQL in two round trips, using psycopg's pipeline mode.

The Core path in ``service`` sends BEGIN, the head lock, the index read, the entry insert, the head
update, the index writes and COMMIT one after another and waits for each (about seven round trips, the
largest part of a guarded request on PostgreSQL). Here the same statements, in the same order and in
one transaction, go out in two batches:

1. ``BEGIN; SELECT … FROM ledger_head … FOR UPDATE; SELECT … FROM ledger_index …`` — the head lock is
   taken first, and because the index read is a separate statement it gets a fresh READ COMMITTED
   snapshot after the lock is granted: it sees every index write of the appender we queued behind.
2. one statement writing the entry, the head and the index rows (data-modifying CTEs), and ``COMMIT``
   — then one Sync.

Both batches are one pipeline segment (the first is fetched with a flush, not a Sync), so if any
statement fails the server skips the rest, COMMIT included, and we roll back: nothing partial is kept.
psycopg's own implicit BEGIN costs a round trip of its own, so on a connection of its own the ledger
switches it to autocommit for the duration and spells the transaction out (switched back before it
returns to the pool). Inside a caller's open transaction (``append_pipelined_on``) the BEGIN was already
sent with the caller's first query, and the COMMIT goes out as ``connection.commit()`` in the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import psycopg
from pyroaring import BitMap

from appwarden.db.session import Database
from appwarden.ledger.chain import GENESIS, EntryContent, Key, entry_hash
from appwarden.ledger.service import HEAD_ID, LedgerReceipt, plan_index_writes

_HEAD_LOCK = "SELECT seq, hash FROM ledger_head WHERE id = %(id)s FOR UPDATE"
_HEAD_CREATE = (
    "INSERT INTO ledger_head (id, seq, hash, updated_at) VALUES (%(id)s, 0, %(hash)s, %(at)s)"
    " ON CONFLICT (id) DO NOTHING"
)
_INDEX_READ = (
    "SELECT id, field, mode, bitmap FROM ledger_index"
    " WHERE app_id = %(app_id)s AND company_id = %(company_id)s AND field = ANY(%(fields)s)"
)
# Entry, head and index in ONE statement (data-modifying CTEs, all or nothing), always the same text so
# psycopg prepares it once: the index rows to rewrite or touch and the ones to create go in as arrays.
# A touch (nobody new) passes NULL bitmap/cardinality and keeps the stored ones.
_WRITE = """
WITH entry AS (
    INSERT INTO ledger_entries (seq, recorded_at, request_id, app_id, company_id, connection_id, endpoint,
                                kind, persons, payload, restricted_token, purpose, prev_hash, hash)
    VALUES (%(seq)s, %(recorded_at)s, %(request_id)s, %(app_id)s, %(company_id)s, %(connection_id)s,
            %(endpoint)s, %(kind)s, %(persons)s, %(payload)s, %(restricted_token)s, %(purpose)s,
            %(prev_hash)s, %(hash)s)
), head AS (
    UPDATE ledger_head SET seq = %(seq)s, hash = %(hash)s, updated_at = %(recorded_at)s
    WHERE id = %(head_id)s
), merged AS (
    UPDATE ledger_index AS i
    SET bitmap = COALESCE(v.bitmap, i.bitmap), cardinality = COALESCE(v.card, i.cardinality),
        last_at = %(recorded_at)s
    FROM unnest(%(row_ids)s::integer[], %(blobs)s::bytea[], %(cards)s::integer[]) AS v(id, bitmap, card)
    WHERE i.id = v.id
)
INSERT INTO ledger_index (app_id, company_id, field, mode, bitmap, cardinality, first_at, last_at)
SELECT %(app_id)s, %(company_id)s, n.field, n.mode, n.bitmap, n.card, %(recorded_at)s, %(recorded_at)s
FROM unnest(%(new_fields)s::text[], %(new_modes)s::text[], %(new_blobs)s::bytea[], %(new_cards)s::integer[])
    AS n(field, mode, bitmap, card)
"""


def append_pipelined(
    db: Database, key: bytes, draft: EntryContent, bitmaps: Mapping[Key, BitMap]
) -> LedgerReceipt:
    """Append ``draft`` (its ``seq`` assigned under the head lock) and update the index, in a
    transaction of its own on a pooled connection; committed.

    Raises whatever the driver raises; the caller turns that into ``ledger_unavailable``.
    """
    raw = db.engine.raw_connection()  # a pooled connection, checked out (and pinged) as usual
    try:
        pg = cast(psycopg.Connection[Any], raw.driver_connection)
        pg.autocommit = True  # BEGIN/COMMIT are ours, so they travel in the pipeline
        try:
            receipt = _append(pg, key, draft, bitmaps, own_transaction=True)
        except BaseException:
            _abandon(raw, pg)
            raise
        pg.autocommit = False  # as the pool and SQLAlchemy expect it
        return receipt
    finally:
        raw.close()


def append_pipelined_on(
    pg: psycopg.Connection[Any], key: bytes, draft: EntryContent, bitmaps: Mapping[Key, BitMap]
) -> LedgerReceipt:
    """The same, inside the transaction already open on ``pg`` (a session's), which it COMMITS.

    The caller rolls back on error.
    """
    return _append(pg, key, draft, bitmaps, own_transaction=False)


def _append(
    pg: psycopg.Connection[Any],
    key: bytes,
    draft: EntryContent,
    bitmaps: Mapping[Key, BitMap],
    *,
    own_transaction: bool,
) -> LedgerReceipt:
    fields = sorted({field for field, _ in bitmaps})
    where = {"app_id": draft.app_id, "company_id": draft.company_id, "fields": fields}
    with pg.pipeline():
        if own_transaction:
            pg.execute("BEGIN")
        head_cur = pg.execute(_HEAD_LOCK, {"id": HEAD_ID})
        index_cur = pg.execute(_INDEX_READ, where) if bitmaps else None
        head = head_cur.fetchone()  # round trip 1
        if head is None:
            # First append ever: create the genesis head (once; a racing first appender is harmless
            # thanks to ON CONFLICT), lock it, and read the index again behind that lock.
            pg.execute(_HEAD_CREATE, {"id": HEAD_ID, "hash": GENESIS, "at": draft.recorded_at})
            head = pg.execute(_HEAD_LOCK, {"id": HEAD_ID}).fetchone()
            index_cur = pg.execute(_INDEX_READ, where) if bitmaps else None
            if head is None:
                raise RuntimeError("the ledger head could not be created")
        head_seq, head_hash = int(head[0]), str(head[1])
        existing = {} if index_cur is None else {(f, m): (i, b) for i, f, m, b in index_cur.fetchall()}
        content = EntryContent(**{**_fields(draft), "seq": head_seq + 1})
        digest = entry_hash(key, head_hash, content)
        inserts, merges, touches = plan_index_writes(
            existing, draft.app_id, draft.company_id, bitmaps, content.recorded_at
        )
        updates = [(m["row_id"], m["new_bitmap"], m["new_card"]) for m in merges]
        updates += [(t["row_id"], None, None) for t in touches]
        pg.execute(
            _WRITE,
            {
                **_fields(content),
                "prev_hash": head_hash,
                "hash": digest,
                "head_id": HEAD_ID,
                "row_ids": [u[0] for u in updates],
                "blobs": [u[1] for u in updates],
                "cards": [u[2] for u in updates],
                "new_fields": [i["field"] for i in inserts],
                "new_modes": [i["mode"] for i in inserts],
                "new_blobs": [i["bitmap"] for i in inserts],
                "new_cards": [i["cardinality"] for i in inserts],
            },
        )
        if own_transaction:
            pg.execute("COMMIT")
        else:
            pg.commit()  # queued behind the write, in the same segment
    # Leaving the pipeline sent the Sync and collected every result (round trip 2): any error was
    # raised there, and an error anywhere in the segment means COMMIT was skipped.
    return LedgerReceipt(seq=content.seq, hash=digest, recorded_at=content.recorded_at)


def _abandon(raw: Any, pg: psycopg.Connection[Any]) -> None:
    """Roll back after a failure; a connection that cannot be cleaned up is discarded, not pooled."""
    try:
        if not pg.closed and pg.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            pg.execute("ROLLBACK")
        if not pg.closed:
            pg.autocommit = False
    except Exception:
        raw.invalidate()


def _fields(content: EntryContent) -> dict[str, Any]:
    return {name: getattr(content, name) for name in EntryContent.__slots__}
