"""The access ledger: record every delivery before it leaves, and answer who received whom.

``record_delivery`` appends one hash-chained entry per response and ORs the delivered people into the
per (app, company, field, mode) bitmap index, all in one transaction that it commits before returning.
Any failure raises :class:`~appwarden.errors.Unavailable` (``ledger_unavailable``) so the broker answers
503 and sends nothing: no record, no data.

An empty delivery (a page with no people, a detokenize of nothing) still gets an entry: the request
happened and the chain should say so; it just adds nobody to the index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
from pyroaring import BitMap
from sqlalchemy import Connection, Dialect, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from appwarden.bitmaps import to_bitmap
from appwarden.config import Settings, get_settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import InvalidInput, Unavailable
from appwarden.ledger.chain import (
    GENESIS,
    EntryContent,
    Key,
    chain_key,
    decode_payload,
    encode_payload,
    entry_hash,
)
from appwarden.ledger.models import LedgerEntry, LedgerHead, LedgerIndex
from appwarden.ledger.vocabulary import EntryKind
from appwarden.marketplace.scopes import Mode

log = logging.getLogger(__name__)

# The enums as sets of their values: ``str in EnumClass`` raises on Python 3.11, a frozenset does not.
KINDS: frozenset[str] = frozenset(k.value for k in EntryKind)
_MODES: frozenset[str] = frozenset(m.value for m in Mode)
HEAD_ID = 1

# Core statements on the tables: the append path is hot and needs no ORM unit of work.
_entries = cast(Table, LedgerEntry.__table__)
_head = cast(Table, LedgerHead.__table__)
_index = cast(Table, LedgerIndex.__table__)


@dataclass(frozen=True, slots=True)
class LedgerReceipt:
    """Proof that a delivery is in the ledger: its position, chain hash and time."""

    seq: int
    hash: str
    recorded_at: datetime


_key_cache: tuple[Settings, bytes] | None = None


def current_chain_key() -> bytes:
    """The chain key for the process settings (cached: ``master_key`` may read a file)."""
    global _key_cache
    settings = get_settings()
    if _key_cache is None or _key_cache[0] is not settings:
        _key_cache = (settings, chain_key(settings.master_key))
    return _key_cache[1]


def record_delivery(
    db: Database,
    *,
    request_id: str,
    app_id: int,
    company_id: int,
    connection_id: int | None,
    endpoint: str,
    kind: EntryKind,
    deliveries: Mapping[tuple[str, str], BitMap | Iterable[int] | np.ndarray[Any, Any]],
    now: datetime | None = None,
    within: Session | None = None,
    restricted_token: str | None = None,
    purpose: str | None = None,
) -> LedgerReceipt:
    """Append one entry for a response and update the index, committed before returning.

    ``deliveries`` maps (field, mode) to the internal ids of the customers whose field went out in that
    mode. ``restricted_token`` (its public ``rdt_…`` id) and ``purpose`` go on the entries of a
    restricted token's minting and of every delivery made with it, inside the hashed content. Raises
    ``Unavailable(code="ledger_unavailable")`` if anything fails; nothing partial is kept.

    By default the append runs in a transaction of its own. With ``within``, it runs in that session's
    open transaction instead (the broker's, which authenticated the caller and read the page: one
    connection, one commit) and COMMITS that session before returning; on failure the session is rolled
    back. Either way the entry, the head and the index rows are committed together or not at all.
    """
    if kind not in KINDS:
        raise InvalidInput(f"unknown ledger kind {kind!r}")
    bitmaps: dict[Key, BitMap] = {}
    converted: dict[int, BitMap] = {}  # callers often pass one id array for several fields: convert once
    for (field, mode), ids in deliveries.items():
        if mode not in _MODES:
            raise InvalidInput(f"unknown delivery mode {mode!r}")
        bitmap = converted.get(id(ids))
        if bitmap is None:
            bitmap = converted[id(ids)] = to_bitmap(ids)
        if bitmap:
            bitmaps[(field, mode)] = bitmap
    recorded_at = now or utcnow()
    try:
        key = current_chain_key()
        draft = EntryContent(
            seq=0,  # filled in under the head lock
            recorded_at=recorded_at,
            request_id=request_id,
            app_id=app_id,
            company_id=company_id,
            connection_id=connection_id,
            endpoint=endpoint,
            kind=str(kind),  # the plain value: it is hashed into the chain and bound as a string
            persons=len(BitMap.union(*bitmaps.values())) if bitmaps else 0,
            payload=encode_payload(bitmaps),
            restricted_token=restricted_token,
            purpose=purpose,
        )
        if within is not None:
            return _append_within(within, key, draft, bitmaps)
        if _pipelines(db.engine.dialect):
            # Two round trips instead of about seven (imported here: it builds on this module).
            from appwarden.ledger.pipelined import append_pipelined

            return append_pipelined(db, key, draft, bitmaps)
        # A bare Core transaction (no ORM session): same BEGIN IMMEDIATE on SQLite, less overhead.
        with db.engine.begin() as conn:
            return _append(conn, key, draft, bitmaps)
    except Exception as exc:
        log.exception("ledger write failed for request %s", request_id)
        if within is not None:
            _roll_back(within)  # before noting the failure: on SQLite it holds the write lock
        _note_failure(db, request_id=request_id, app_id=app_id, company_id=company_id, error=exc)
        raise Unavailable(
            "the access ledger could not record this delivery", code="ledger_unavailable"
        ) from exc


def _pipelines(dialect: Dialect) -> bool:
    """Whether the two-round-trip PostgreSQL path applies (it drives psycopg 3 directly)."""
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def _append_within(
    session: Session, key: bytes, draft: EntryContent, bitmaps: Mapping[Key, BitMap]
) -> LedgerReceipt:
    """Append in ``session``'s transaction and commit it."""
    session.flush()  # anything pending belongs to this transaction, before our COMMIT
    conn = session.connection()
    if _pipelines(conn.dialect):
        from appwarden.ledger.pipelined import append_pipelined_on

        receipt = append_pipelined_on(cast(Any, conn.connection.driver_connection), key, draft, bitmaps)
    else:
        receipt = _append(conn, key, draft, bitmaps)
    session.commit()  # on PostgreSQL the pipeline already committed; this just closes the bookkeeping
    return receipt


def _roll_back(session: Session) -> None:
    try:
        session.rollback()
    except Exception:
        log.warning("rolling back after a failed ledger write failed too", exc_info=True)


# Statements built once with bind parameters: building Core statements per call (``.values(**row)``)
# cost more than the SQL itself (profiled: ~60% of record_delivery on SQLite).
_HEAD_SELECT = select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID).with_for_update()
_HEAD_UPDATE = (
    update(_head)
    .where(_head.c.id == HEAD_ID)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"), updated_at=bindparam("new_at"))
)
_ENTRY_INSERT = insert(_entries)
_INDEX_SELECT = select(_index.c.id, _index.c.field, _index.c.mode, _index.c.bitmap).where(
    _index.c.app_id == bindparam("app_id"),
    _index.c.company_id == bindparam("company_id"),
    _index.c.field.in_(bindparam("fields", expanding=True)),
)
_INDEX_INSERT = insert(_index)
_INDEX_MERGE = (
    update(_index)
    .where(_index.c.id == bindparam("row_id"))
    .values(bitmap=bindparam("new_bitmap"), cardinality=bindparam("new_card"), last_at=bindparam("new_at"))
)
_INDEX_TOUCH = update(_index).where(_index.c.id == bindparam("row_id")).values(last_at=bindparam("new_at"))


def _lock_head(conn: Connection) -> tuple[int, str]:
    """The head (seq, hash), locked until commit; created on first use.

    On PostgreSQL ``FOR UPDATE`` makes concurrent appenders queue here, so the chain never forks; SQLite
    already serialises writers with ``BEGIN IMMEDIATE`` (SQLAlchemy drops ``FOR UPDATE`` there).
    """
    row = conn.execute(_HEAD_SELECT).first()
    if row is None:
        ins = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        conn.execute(
            ins(_head)
            .values(id=HEAD_ID, seq=0, hash=GENESIS, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = conn.execute(_HEAD_SELECT).one()
    return int(row.seq), str(row.hash)


def _append(
    conn: Connection, key: bytes, draft: EntryContent, bitmaps: Mapping[Key, BitMap]
) -> LedgerReceipt:
    head_seq, head_hash = _lock_head(conn)
    content = EntryContent(**{**_fields(draft), "seq": head_seq + 1})
    digest = entry_hash(key, head_hash, content)
    conn.execute(_ENTRY_INSERT, {**_fields(content), "prev_hash": head_hash, "hash": digest})
    conn.execute(_HEAD_UPDATE, {"new_seq": content.seq, "new_hash": digest, "new_at": content.recorded_at})
    update_index(conn, content.app_id, content.company_id, bitmaps, content.recorded_at)
    return LedgerReceipt(seq=content.seq, hash=digest, recorded_at=content.recorded_at)


def _fields(content: EntryContent) -> dict[str, Any]:
    return {name: getattr(content, name) for name in EntryContent.__slots__}


def merge_into(serialised: bytes | None, new: BitMap) -> tuple[bytes | None, int]:
    """OR ``new`` into a serialised bitmap: (new bytes, or None when nobody was added; cardinality)."""
    if serialised is None:
        merged = BitMap(new)
    else:
        merged = BitMap.deserialize(serialised)
        before = len(merged)
        merged |= new
        if len(merged) == before:
            # Nobody new (an app re-reading the same people): skip re-serialising and rewriting the blob.
            return None, before
    merged.run_optimize()
    return merged.serialize(), len(merged)


def update_index(
    conn: Connection, app_id: int, company_id: int, bitmaps: Mapping[Key, BitMap], at: datetime
) -> None:
    """OR the delivered people into the index rows of (app, company, field, mode), creating missing rows.

    Runs inside the appending transaction, after the head lock, so index writers are serialised too.
    """
    if not bitmaps:
        return
    fields = sorted({field for field, _ in bitmaps})
    rows = conn.execute(_INDEX_SELECT, {"app_id": app_id, "company_id": company_id, "fields": fields}).all()
    plan = plan_index_writes(
        {(row.field, row.mode): (row.id, row.bitmap) for row in rows}, app_id, company_id, bitmaps, at
    )
    for statement, params in zip((_INDEX_INSERT, _INDEX_MERGE, _INDEX_TOUCH), plan, strict=True):
        if params:
            conn.execute(statement, params)


IndexWrites = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def plan_index_writes(
    existing: Mapping[Key, tuple[int, bytes]],
    app_id: int,
    company_id: int,
    bitmaps: Mapping[Key, BitMap],
    at: datetime,
) -> IndexWrites:
    """The index rows to write, as (inserts, merges, touches) parameter lists.

    ``existing`` maps (field, mode) to the current row's (id, serialised bitmap), read under the head
    lock. A merge rewrites a row's bitmap; a touch only moves ``last_at`` (nobody new was delivered).
    """
    inserts: list[dict[str, Any]] = []
    merges: list[dict[str, Any]] = []
    touches: list[dict[str, Any]] = []
    for key, bitmap in bitmaps.items():
        row = existing.get(key)
        blob, cardinality = merge_into(None if row is None else row[1], bitmap)
        if row is None:
            inserts.append(
                {
                    "app_id": app_id,
                    "company_id": company_id,
                    "field": key[0],
                    "mode": key[1],
                    "bitmap": blob,
                    "cardinality": cardinality,
                    "first_at": at,
                    "last_at": at,
                }
            )
        elif blob is None:
            touches.append({"row_id": row[0], "new_at": at})
        else:
            merges.append({"row_id": row[0], "new_bitmap": blob, "new_card": cardinality, "new_at": at})
    return inserts, merges, touches


def _note_failure(db: Database, *, request_id: str, app_id: int, company_id: int, error: Exception) -> None:
    """Best effort: leave a security event about the failed write (the database may be what failed)."""
    from appwarden.events.service import EventTag, record

    try:
        with db.session() as session:
            record(
                session,
                EventTag.LEDGER_WRITE_FAILED,
                actor="ledger",
                app_id=app_id,
                company_id=company_id,
                request_id=request_id,
                error=type(error).__name__,
            )
    except Exception:
        log.warning("could not record the ledger failure event either", exc_info=True)


def persons(session: Session, *, app_id: int, field: str, mode: str, company_id: int | None = None) -> BitMap:
    """Everyone app ``app_id`` received ``field`` of in ``mode`` (in one company or all), from the index."""
    query = select(LedgerIndex.bitmap).where(
        LedgerIndex.app_id == app_id, LedgerIndex.field == field, LedgerIndex.mode == mode
    )
    if company_id is not None:
        query = query.where(LedgerIndex.company_id == company_id)
    result = BitMap()
    for blob in session.scalars(query):
        result |= BitMap.deserialize(blob)
    return result


# Read-side queries live in ``queries``; re-exported so callers have one import.
from appwarden.ledger.queries import who_has  # noqa: E402

__all__ = ["LedgerReceipt", "decode_payload", "persons", "record_delivery", "who_has"]
