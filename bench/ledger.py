"""Ledger throughput: field-deliveries recorded per second (goal >= 1,000,000/s in the index path).

Workload: responses of 100..500 customers x 5 fields, drawn at random from a company of 50,000 customers
(random draws are the hard case: the index bitmaps fill up and stay dense, unlike paging in id order).
A field-delivery is one (person, field) pair in a response.

  (a) index path   : to BitMap, canonical payload, and the index update (deserialise, OR, serialise)
                     for the 5 keys, in memory — what each request costs before any I/O;
  (b) record_delivery: the real thing incl. chain hash, head lock, index upsert and COMMIT, on SQLite
                     (and PostgreSQL with --pg URL or APPWARDEN_TEST_DATABASE_URL);
  naive peer       : one row per (person, field) inserted and committed per response, same database.

Run: ``uv run python bench/ledger.py [--quick] [--pg URL]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

COMPANY_SIZE = 50_000
FIELDS = [("name", "raw"), ("phone", "raw"), ("email", "masked"), ("points", "raw"), ("rank", "raw")]


def workload(requests: int, seed: int = 1) -> list[np.ndarray]:
    """Each response's customer ids (internal ids 1..COMPANY_SIZE)."""
    rng = np.random.default_rng(seed)
    return [
        np.sort(rng.choice(COMPANY_SIZE, size=int(rng.integers(100, 501)), replace=False) + 1).astype(
            np.uint32
        )
        for _ in range(requests)
    ]


def bench_index_path(pages: list[np.ndarray]) -> tuple[float, int]:
    """(a): the per-request CPU path with the index held as serialised blobs in a dict."""
    from appwarden.bitmaps import to_bitmap
    from appwarden.ledger.chain import encode_payload
    from appwarden.ledger.service import merge_into

    index: dict[tuple[str, str], bytes] = {}
    deliveries = 0
    start = time.perf_counter()
    for ids in pages:
        bitmap = to_bitmap(ids)
        per_field = dict.fromkeys(FIELDS, bitmap)
        encode_payload(per_field)
        for key in FIELDS:
            blob, _ = merge_into(index.get(key), bitmap)
            if blob is not None:
                index[key] = blob
        deliveries += len(ids) * len(FIELDS)
    return time.perf_counter() - start, deliveries


def setup_database(url: str) -> tuple[object, int, int]:
    """A migrated, empty database with one company and one app; returns (Database, app id, company id)."""
    from appwarden.db.base import Base
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import Database
    from appwarden.marketplace import service as marketplace
    from appwarden.platform import service as platform

    if not url.startswith("sqlite"):
        import appwarden.tables  # noqa: F401

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        del Base
    upgrade(url)
    db = Database(url)
    with db.session() as session:
        company = platform.create_company(session, "Bench Co", "bench@example.jp")
        reg = marketplace.register_app(
            session,
            slug="bench-app",
            name="Bench",
            redirect_uris=["https://bench.example/cb"],
            scopes=[f"customers.{f}:{m}" for f, m in FIELDS],
        )
        session.flush()
        ids = (reg.app.id, company.id)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE naive_deliveries (id INTEGER PRIMARY KEY"
                + ("" if url.startswith("sqlite") else " GENERATED ALWAYS AS IDENTITY")
                + ", request_id VARCHAR(64), app_id INTEGER, company_id INTEGER,"
                " customer_id INTEGER, field VARCHAR(30), mode VARCHAR(10), at TIMESTAMP)"
            )
        )
    return db, ids[0], ids[1]


def bench_record(db: object, app_id: int, company_id: int, pages: list[np.ndarray]) -> tuple[float, int]:
    """(b): full record_delivery, one committed transaction per response."""
    from appwarden.ledger.service import record_delivery
    from appwarden.ledger.vocabulary import EntryKind

    deliveries = 0
    start = time.perf_counter()
    for n, ids in enumerate(pages):
        record_delivery(
            db,  # type: ignore[arg-type]
            request_id=f"bench-{n}",
            app_id=app_id,
            company_id=company_id,
            connection_id=None,
            endpoint="/v1/customers",
            kind=EntryKind.DELIVERY,
            deliveries=dict.fromkeys(FIELDS, ids),
        )
        deliveries += len(ids) * len(FIELDS)
    return time.perf_counter() - start, deliveries


def bench_naive(db: object, app_id: int, company_id: int, pages: list[np.ndarray]) -> tuple[float, int]:
    """Naive peer: one row per (person, field), inserted and committed per response."""
    from appwarden.db.base import utcnow

    engine = db.engine  # type: ignore[attr-defined]
    stmt = text(
        "INSERT INTO naive_deliveries (request_id, app_id, company_id, customer_id, field, mode, at)"
        " VALUES (:r, :a, :c, :p, :f, :m, :t)"
    )
    deliveries = 0
    start = time.perf_counter()
    for n, ids in enumerate(pages):
        now = utcnow().replace(tzinfo=None)
        rows = [
            {"r": f"naive-{n}", "a": app_id, "c": company_id, "p": int(p), "f": f, "m": m, "t": now}
            for p in ids.tolist()
            for f, m in FIELDS
        ]
        with engine.begin() as conn:
            conn.execute(stmt, rows)
        deliveries += len(rows)
    return time.perf_counter() - start, deliveries


def verify_time(db: object) -> tuple[float, int]:
    from appwarden.ledger.verify import verify

    start = time.perf_counter()
    report = verify(db)  # type: ignore[arg-type]
    assert report.intact, report.summary()
    return time.perf_counter() - start, report.entries


def _rate(result: tuple[float, int]) -> tuple[float, int, float]:
    seconds, deliveries = result
    return seconds, deliveries, deliveries / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--pg", default=os.environ.get("APPWARDEN_TEST_DATABASE_URL"), help="PostgreSQL URL")
    args = parser.parse_args()
    console = Console(width=150)
    n_cpu, n_db, n_naive = (2_000, 300, 60) if args.quick else (20_000, 3_000, 300)
    os.environ.setdefault("APPWARDEN_SECRET_KEY", "bench-secret-key")

    rows: list[
        tuple[str, str, int, int, float, float, str]
    ] = []  # path, backend, n, deliveries, s, rate, ratio
    cpu = _rate(bench_index_path(workload(n_cpu)))
    backends: list[tuple[str, str | None]] = [("sqlite", None)] + (
        [("postgresql", args.pg)] if args.pg else []
    )
    with tempfile.TemporaryDirectory() as tmp:
        for backend, url in backends:
            db, app_id, company_id = setup_database(url or f"sqlite:///{Path(tmp) / 'bench.db'}")
            naive = _rate(bench_naive(db, app_id, company_id, workload(n_naive, seed=3)))
            full = _rate(bench_record(db, app_id, company_id, workload(n_db, seed=2)))
            verify_seconds, entries = verify_time(db)
            db.dispose()  # type: ignore[attr-defined]
            if backend == "sqlite":
                rows.append(
                    (
                        "(a) index path, CPU only",
                        "memory",
                        n_cpu,
                        *cpu[1::-1],
                        cpu[2],
                        f"{cpu[2] / naive[2]:.1f}x",
                    )
                )
            rows.append(
                (
                    "(b) record_delivery + commit",
                    backend,
                    n_db,
                    full[1],
                    full[0],
                    full[2],
                    f"{full[2] / naive[2]:.1f}x",
                )
            )
            rows.append(
                ("naive: row per (person, field)", backend, n_naive, naive[1], naive[0], naive[2], "1.0x")
            )
            rows.append(
                (
                    f"verify ({entries:,} entries)",
                    backend,
                    entries,
                    0,
                    verify_seconds,
                    entries / verify_seconds,
                    "",
                )
            )

    table = Table("path", "backend", "responses", "field-deliveries", "seconds", "per second", "vs naive")
    for path, backend, n, deliveries, seconds, rate, ratio in rows:
        table.add_row(path, backend, f"{n:,}", f"{deliveries:,}", f"{seconds:.2f}", f"{rate:,.0f}", ratio)
    console.print(table)
    verdict = "met" if cpu[2] >= 1_000_000 else "NOT met"
    console.print(f"goal >= 1,000,000 field-deliveries/s in the index path: {verdict} ({cpu[2]:,.0f}/s)")
    console.print("(a) is compared with the naive peer on SQLite; verify's rate is entries per second")


if __name__ == "__main__":
    main()
