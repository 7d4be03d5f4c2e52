"""The blind index: per customer, a keyed HMAC of each normalised identifying value.

Matching a dump HMACs the dump's normalised values with the same key and looks the digests up
(:func:`lookup`); nothing ever scans or compares plaintext, and the table alone reveals nothing without
the server key (a dictionary attack on phone numbers needs the key, unlike a plain hash).

Key: HKDF-SHA256(master_key, salt ``appwarden/blind-index/v1``, info ``blind-index``).
Digest: HMAC-SHA256(key, field ‖ 0x00 ‖ utf-8 value) truncated to 16 bytes. The field is inside the
MAC, so equal strings in different fields never collide.

Maintenance: :func:`refresh_changed_customers` is registered (by ``appwarden.wiring``) with the
platform's customer-change hook, so every platform write path (``add_customers``, ``update_customer``,
``delete_customer``, a bulk load) keeps the index in step in its own transaction: it calls
:func:`refresh_customers` for the customers a change touched, or :func:`rebuild_blind_index` after a bulk
load. A customer written around the platform's write paths is not seen.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from appwarden.blind_index.models import LOOKUP_INDEX, BlindIndexEntry, BlindIndexHistory
from appwarden.blind_index.normalize import normalize_field
from appwarden.blind_index.vocabulary import FIELD_CODES, INDEXED_FIELDS
from appwarden.config import get_settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database, driver_connection
from appwarden.platform.customer_batches import batch_after, customer_count, rows_of
from appwarden.platform.customer_changes import CustomerChange

DIGEST_BYTES = 16
BATCH = 20_000
# Digests per lookup query: within SQLite's 32,766 bound parameters; fewer, larger probes are faster.
LOOKUP_CHUNK = 30_000
PG_ANY_MAX = 2_000  # above this, PostgreSQL lookups go through a COPY'd temp table
OWN_CHUNK_PG = 10_000  # ids per ``customer_id = ANY(…)`` probe (fewer round trips; ints plan cheaply)

Progress = Callable[[int, int], None]


@lru_cache(maxsize=8)
def index_key(master_key: bytes) -> bytes:
    """The blind-index HMAC key, HKDF-derived from the master key (purpose ``blind-index``)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"appwarden/blind-index/v1", info=b"blind-index"
    ).derive(master_key)


def _key(key: bytes | None) -> bytes:
    return key if key is not None else index_key(get_settings().master_key)


def digest_values(
    field: str, values: Iterable[str | None], *, key: bytes | None = None
) -> list[bytes | None]:
    """Digests of already-normalised values of ``field`` (``None`` stays ``None``).

    ``key`` defaults to the one derived from ``get_settings().master_key``. Each distinct value is
    MACed once, from a keyed HMAC state copied per value (the key schedule is done once per call).
    """
    if field not in FIELD_CODES:
        raise ValueError(f"{field!r} is not an indexed field")
    base = hmac.new(_key(key), field.encode() + b"\0", hashlib.sha256)
    values = list(values)
    memo: dict[str, bytes] = {}
    for v in set(values):
        if v is not None:
            h = base.copy()
            h.update(v.encode())
            memo[v] = h.digest()[:DIGEST_BYTES]
    return [None if v is None else memo[v] for v in values]


def digest_raw(field: str, values: Sequence[str | None], *, key: bytes | None = None) -> list[bytes | None]:
    """Normalise raw values of ``field`` (see ``normalize.normalize_field``), then digest them."""
    return digest_values(field, normalize_field(field, values), key=key)


def _entries(rows: Sequence[Any], key: bytes) -> list[tuple[int, int, bytes]]:
    """Index rows ``(customer_id, field code, digest)`` for customer rows ``(id, name, name_kana, phone,
    email, birthday)``, computed column-wise."""
    ids = [r[0] for r in rows]
    out: list[tuple[int, int, bytes]] = []
    for col, field in enumerate(INDEXED_FIELDS, start=1):
        raw = [r[col] for r in rows]
        if field == "birthday":
            raw = [None if v is None else v.isoformat() for v in raw]
        code = FIELD_CODES[field]
        out.extend(
            (cid, code, digest)
            for cid, digest in zip(ids, digest_raw(field, raw, key=key), strict=True)
            if digest is not None
        )
    return out


def _insert(session: Session, entries: list[tuple[int, int, bytes]]) -> None:
    """Bulk-append entries: COPY on PostgreSQL, one prepared executemany on SQLite."""
    if not entries:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        raw = driver_connection(conn)
        with (
            raw.cursor() as cur,
            cur.copy("COPY blind_index (customer_id, field, digest) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["int4", "int2", "bytea"])
            for entry in entries:
                copy.write_row(entry)
    else:
        conn.exec_driver_sql("INSERT INTO blind_index (customer_id, field, digest) VALUES (?, ?, ?)", entries)


def rebuild_blind_index(
    target: Database | Session,
    *,
    on_progress: Progress | None = None,
    key: bytes | None = None,
    batch_size: int = BATCH,
) -> int:
    """Rebuild the whole index in one transaction (readers see the old index or the new, never half).

    With a ``Database`` it runs in its own transaction; with a ``Session`` inside the caller's (a bulk
    load rebuilds in the loader's). Customers are read in keyset batches of ``batch_size`` and digested
    column-wise, so memory stays bounded by one batch. The (field, digest) index is dropped for the load
    and built once at the end (far cheaper than millions of random B-tree inserts).
    ``on_progress(done, total)`` counts customers. Returns the entries written.
    """
    if isinstance(target, Database):
        with target.session() as session:
            return _rebuild(session, on_progress, _key(key), batch_size)
    return _rebuild(target, on_progress, _key(key), batch_size)


def _rebuild(session: Session, on_progress: Progress | None, k: bytes, batch_size: int) -> int:
    written = 0
    total = customer_count(session)
    session.execute(delete(BlindIndexEntry))
    conn = session.connection()
    LOOKUP_INDEX.drop(conn)
    done, last = 0, 0
    while True:
        rows = batch_after(session, last, batch_size, INDEXED_FIELDS)
        if not rows:
            break
        entries = _entries(rows, k)
        _insert(session, entries)
        written += len(entries)
        done += len(rows)
        last = rows[-1][0]
        if on_progress:
            on_progress(done, total)
    LOOKUP_INDEX.create(conn)
    conn.exec_driver_sql("ANALYZE blind_index")  # fresh statistics for the lookup plans
    return written


def refresh_changed_customers(session: Session, change: CustomerChange) -> None:
    """The platform's customer-change hook: keep the index in step with ``change``, in its transaction.

    Added and deleted customers, and updated ones whose indexed fields changed, are refreshed (an
    update of points or rank costs nothing); after a bulk load the whole index is rebuilt.
    """
    if change.loaded:
        rebuild_blind_index(session, on_progress=change.progress)
        return
    ids = change.touches(INDEXED_FIELDS)
    if ids:
        refresh_customers(session, ids)


def refresh_customers(session: Session, customer_ids: Iterable[int], *, key: bytes | None = None) -> int:
    """Recompute the entries of ``customer_ids`` inside the caller's transaction; returns entries written.

    Deleted customers simply lose their entries. A customer who still exists but lost a digest (a phone,
    email or name replaced) gets a ``BlindIndexHistory`` row for it, stamped now: a dump holding the old
    value was copied before this moment (the snapshot window's evidence). The platform's write paths
    reach it through :func:`refresh_changed_customers`.
    """
    ids = sorted(set(customer_ids))
    k = _key(key)
    written = 0
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        old = {
            (cid, code, bytes(digest))
            for cid, code, digest in session.execute(
                select(BlindIndexEntry.customer_id, BlindIndexEntry.field, BlindIndexEntry.digest).where(
                    BlindIndexEntry.customer_id.in_(chunk)
                )
            )
        }
        session.execute(delete(BlindIndexEntry).where(BlindIndexEntry.customer_id.in_(chunk)))
        rows = rows_of(session, chunk, INDEXED_FIELDS)
        entries = _entries(rows, k)
        _insert(session, entries)
        written += len(entries)
        _record_lost(session, old, entries, {r[0] for r in rows})
    return written


def _record_lost(
    session: Session,
    old: set[tuple[int, int, bytes]],
    new: list[tuple[int, int, bytes]],
    existing: set[int],
) -> None:
    """History rows for the digests existing customers had before this refresh and no longer have."""
    lost = sorted(entry for entry in old.difference(new) if entry[0] in existing)
    if not lost:
        return
    now = utcnow()
    session.execute(
        insert(BlindIndexHistory),
        [
            {"customer_id": cid, "field": code, "digest": digest, "replaced_at": now}
            for cid, code, digest in lost
        ],
    )


def history(
    session: Session, field: str, digests: Iterable[bytes | None]
) -> dict[bytes, list[tuple[int, Any]]]:
    """Customers who *used to* have each digest of ``field``: ``{digest: [(customer id, replaced_at), …]}``.

    Only digests given are looked up (in chunks, through the (field, digest) index); never plaintext.
    """
    code = FIELD_CODES[field]
    wanted = sorted({d for d in digests if d is not None})
    found: dict[bytes, list[tuple[int, Any]]] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        rows = session.execute(
            select(
                BlindIndexHistory.digest, BlindIndexHistory.customer_id, BlindIndexHistory.replaced_at
            ).where(BlindIndexHistory.field == code, BlindIndexHistory.digest.in_(chunk))
        )
        for digest, customer_id, replaced_at in rows:
            found.setdefault(bytes(digest), []).append((customer_id, replaced_at))
    return found


def latest_replacements(session: Session, field: str) -> list[tuple[int, Any]]:
    """``(customer id, latest replaced_at)`` of every customer who replaced an older ``field`` value."""
    return [
        (cid, at)
        for cid, at in session.execute(
            select(BlindIndexHistory.customer_id, func.max(BlindIndexHistory.replaced_at))
            .where(BlindIndexHistory.field == FIELD_CODES[field])
            .group_by(BlindIndexHistory.customer_id)
        )
    ]


def lookup(session: Session, field: str, digests: Iterable[bytes | None]) -> dict[bytes, list[int]]:
    """Customers whose ``field`` has each digest: ``{digest: [customer id, …]}`` (ids ascending).

    Digests with no customer are absent; ``None`` entries are skipped. Runs on the session's own
    connection (its transaction and snapshot) at driver level, because SQLAlchemy's per-parameter
    handling of tens of thousands of binds costs more than the index probes:
    - PostgreSQL, many digests: COPY them into a session temp table and hash-join (a constant
      ``= ANY(array)`` of 100k elements spends longer in the planner than in execution);
    - PostgreSQL, few: one ``digest = ANY(%s)`` probe of the (field, digest) index;
    - SQLite: ``IN (?, …)`` lists of :data:`LOOKUP_CHUNK`.
    """
    code = FIELD_CODES[field]
    wanted = sorted({d for d in digests if d is not None})
    raw, postgres = _driver(session)
    rows = _lookup_pg(raw, code, wanted) if postgres else _lookup_sqlite(raw, code, wanted)
    found: dict[bytes, list[int]] = {}
    for digest, customer_id in rows:
        found.setdefault(bytes(digest), []).append(customer_id)
    for ids in found.values():
        ids.sort()
    return found


def holder_counts(
    session: Session, field: str, digests: Iterable[bytes | None]
) -> dict[bytes, tuple[int, int]]:
    """For each digest some customer has: ``(holders, one of them)`` where ``holders`` is 1 or 2 meaning
    "two or more".

    Names are weak evidence shared by hundreds (佐藤 翔太): matching needs to know whether one person or
    several hold one, and who when it is one — never the hundreds of ids. So each distinct digest is
    one index probe that stops at the second holder, instead of counting them all.
    """
    code = FIELD_CODES[field]
    wanted = sorted({d for d in digests if d is not None})
    found: dict[bytes, list[int]] = {}
    raw, postgres = _driver(session)
    if postgres:
        with raw.cursor(binary=True) as cur:
            for start in range(0, len(wanted), PG_ANY_MAX):
                cur.execute(
                    "SELECT p.digest, b.customer_id FROM unnest(%s::bytea[]) AS p(digest) CROSS JOIN LATERAL"
                    " (SELECT customer_id FROM blind_index WHERE field = %s AND digest = p.digest LIMIT 2) b",
                    (wanted[start : start + PG_ANY_MAX], code),
                )
                for digest, customer_id in cur.fetchall():
                    found.setdefault(bytes(digest), []).append(customer_id)
    else:
        cur = raw.cursor()
        try:
            sql = "SELECT customer_id FROM blind_index WHERE field = ? AND digest = ? LIMIT 2"
            for digest in wanted:  # a prepared statement per probe: microseconds each
                ids = [row[0] for row in cur.execute(sql, (code, digest))]
                if ids:
                    found[digest] = ids
        finally:
            cur.close()
    return {digest: (len(ids), min(ids)) for digest, ids in found.items()}


def digests_of(session: Session, field: str, customer_ids: Iterable[int]) -> dict[int, set[bytes]]:
    """The ``field`` digests of each given customer (primary-key range scans, chunked)."""
    code = FIELD_CODES[field]
    ids = sorted(set(customer_ids))
    out: dict[int, set[bytes]] = {}
    raw, postgres = _driver(session)
    cur = raw.cursor(binary=True) if postgres else raw.cursor()
    try:
        step = OWN_CHUNK_PG if postgres else LOOKUP_CHUNK
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            if postgres:
                sql = "SELECT customer_id, digest FROM blind_index WHERE customer_id = ANY(%s) AND field = %s"
                cur.execute(sql, (chunk, code))
            else:
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT customer_id, digest FROM blind_index WHERE customer_id IN ({marks})"
                cur.execute(sql + " AND field = ?", (*chunk, code))
            for customer_id, digest in cur.fetchall():
                out.setdefault(customer_id, set()).add(bytes(digest))
    finally:
        cur.close()
    return out


def _driver(session: Session) -> tuple[Any, bool]:
    """The session connection's DB-API connection, and whether it is PostgreSQL."""
    conn = session.connection()
    return driver_connection(conn), conn.dialect.name == "postgresql"


def _lookup_sqlite(raw: Any, code: int, wanted: list[bytes]) -> list[tuple[bytes, int]]:
    rows: list[tuple[bytes, int]] = []
    cur = raw.cursor()
    try:
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT digest, customer_id FROM blind_index WHERE field = ? AND digest IN ({marks})"
            rows.extend(cur.execute(sql, (code, *chunk)).fetchall())
    finally:
        cur.close()
    return rows


def _lookup_pg(raw: Any, code: int, wanted: list[bytes]) -> list[tuple[bytes, int]]:
    with raw.cursor(binary=True) as cur:
        if len(wanted) <= PG_ANY_MAX:
            cur.execute(
                "SELECT digest, customer_id FROM blind_index WHERE field = %s AND digest = ANY(%s)",
                (code, wanted),
            )
            return list(cur.fetchall())
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS blind_probe (digest bytea) ON COMMIT DROP")
        cur.execute("TRUNCATE blind_probe")
        with cur.copy("COPY blind_probe (digest) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea"])
            for digest in wanted:
                copy.write_row((digest,))
        cur.execute("ANALYZE blind_probe")  # so the planner hashes the probe instead of looping over it
        cur.execute(
            "SELECT b.digest, b.customer_id FROM blind_probe p JOIN blind_index b"
            " ON b.field = %s AND b.digest = p.digest",
            (code,),
        )
        return list(cur.fetchall())
