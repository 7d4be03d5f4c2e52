"""The blind index: per customer, a keyed HMAC of each normalised identifying value.

Matching a dump HMACs the dump's normalised values with the same key and looks the digests up
(:func:`lookup`); nothing ever scans or compares plaintext, and the table alone reveals nothing without
the server key (a dictionary attack on phone numbers needs the key, unlike a plain hash).

Key: HKDF-SHA256(master_key, salt ``appwarden/blind-index/v1``, info ``blind-index``).
Digest: HMAC-SHA256(key, field ‖ 0x00 ‖ utf-8 value) truncated to 16 bytes. The field is inside the
MAC, so equal strings in different fields never collide.

Maintenance: :func:`rebuild_blind_index` builds it in bulk; :func:`refresh_customers` recomputes given
customers (called by bulk writers such as ``platform.service.add_customers``); ORM changes to a
``Customer`` are refreshed by a flush hook registered in ``attribution.models``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from appwarden.attribution.models import FIELD_CODES, INDEXED_FIELDS, BlindIndexEntry
from appwarden.attribution.normalize import normalize_field
from appwarden.config import get_settings
from appwarden.db.session import Database
from appwarden.platform.models import Customer

DIGEST_BYTES = 16
BATCH = 20_000
# Bound parameters per IN query: well under SQLite's 32,766 and cheap for PostgreSQL to plan.
LOOKUP_CHUNK = 10_000

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

    ``key`` defaults to the one derived from ``get_settings().master_key``.
    """
    if field not in FIELD_CODES:
        raise ValueError(f"{field!r} is not an indexed field")
    k = _key(key)
    prefix = field.encode() + b"\0"
    return [
        None if v is None else hmac.digest(k, prefix + v.encode(), "sha256")[:DIGEST_BYTES] for v in values
    ]


def digest_raw(field: str, values: Sequence[str | None], *, key: bytes | None = None) -> list[bytes | None]:
    """Normalise raw values of ``field`` (see ``normalize.normalize_field``), then digest them."""
    return digest_values(field, normalize_field(field, values), key=key)


def _entries(rows: Sequence[Any], key: bytes) -> list[dict[str, Any]]:
    """Index rows for customer rows ``(id, name, name_kana, phone, email, birthday)``, column-wise."""
    ids = [r[0] for r in rows]
    out: list[dict[str, Any]] = []
    for col, field in enumerate(INDEXED_FIELDS, start=1):
        raw = [r[col] for r in rows]
        if field == "birthday":
            raw = [None if v is None else v.isoformat() for v in raw]
        code = FIELD_CODES[field]
        for cid, digest in zip(ids, digest_raw(field, raw, key=key), strict=True):
            if digest is not None:
                out.append({"customer_id": cid, "field": code, "digest": digest})
    return out


_COLUMNS = (Customer.id, Customer.name, Customer.name_kana, Customer.phone, Customer.email, Customer.birthday)


def rebuild_blind_index(
    db: Database, *, on_progress: Progress | None = None, key: bytes | None = None, batch_size: int = BATCH
) -> int:
    """Rebuild the whole index in one transaction (readers see the old index or the new, never half).

    Customers are read in keyset batches of ``batch_size`` and digested column-wise, so memory stays
    bounded by one batch. ``on_progress(done, total)`` counts customers. Returns the entries written.
    """
    k = _key(key)
    written = 0
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(Customer)) or 0
        session.execute(delete(BlindIndexEntry))
        done, last = 0, 0
        while True:
            rows = session.execute(
                select(*_COLUMNS).where(Customer.id > last).order_by(Customer.id).limit(batch_size)
            ).all()
            if not rows:
                break
            entries = _entries(rows, k)
            if entries:
                session.execute(insert(BlindIndexEntry), entries)
            written += len(entries)
            done += len(rows)
            last = rows[-1][0]
            if on_progress:
                on_progress(done, total)
    return written


def refresh_customers(session: Session, customer_ids: Iterable[int], *, key: bytes | None = None) -> int:
    """Recompute the entries of ``customer_ids`` inside the caller's transaction; returns entries written.

    Deleted customers simply lose their entries. Call it from any code that writes customers with Core
    statements (ORM changes are refreshed by the flush hook).
    """
    ids = sorted(set(customer_ids))
    k = _key(key)
    written = 0
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        session.execute(delete(BlindIndexEntry).where(BlindIndexEntry.customer_id.in_(chunk)))
        rows = session.execute(select(*_COLUMNS).where(Customer.id.in_(chunk))).all()
        entries = _entries(rows, k)
        if entries:
            session.execute(insert(BlindIndexEntry), entries)
        written += len(entries)
    return written


def lookup(session: Session, field: str, digests: Iterable[bytes | None]) -> dict[bytes, list[int]]:
    """Customers whose ``field`` has each digest: ``{digest: [customer id, …]}`` (ids ascending).

    Digests with no customer are absent; ``None`` entries are skipped. Queried in chunks of
    :data:`LOOKUP_CHUNK`, one indexed ``(field, digest) IN (…)`` probe each.
    """
    code = FIELD_CODES[field]
    wanted = sorted({d for d in digests if d is not None})
    found: dict[bytes, list[int]] = {}
    stmt = (
        select(BlindIndexEntry.digest, BlindIndexEntry.customer_id)
        .where(
            BlindIndexEntry.field == code, BlindIndexEntry.digest.in_(bindparam("digests", expanding=True))
        )
        .order_by(BlindIndexEntry.customer_id)
    )
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        for digest, customer_id in session.execute(stmt, {"digests": chunk}):
            found.setdefault(bytes(digest), []).append(customer_id)
    return found
