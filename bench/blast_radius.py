"""Blast radius: the bitmap ledger index against the naive peer a team would build first.

Same data on both sides, per size N (customers): 100 companies x 20 stores, customers in contiguous id blocks
per company with a random home store, 16 canaries; one app received ~60% of the customers' names and
~50% of their phones (raw), drawn at random.

  bitmap : ``compute_blast_radius`` over the real schema — the incident's ledger index rows (one roaring
           bitmap per company x field x mode, synthesised directly) and the platform's store membership
           bitmaps (``store_members``, built by ``rebuild_store_members`` after the customers are loaded,
           as the demo generator does; its time is printed apart): per-store counts are one intersection
           cardinality per store, canaries come from the stores' canary bitmaps.
  naive  : one row per delivered person x field (app, company, store, customer, field, mode) and the
           queries that fill the same JSON: COUNT(DISTINCT customer) GROUP BY company, store, field, mode
           and COUNT(DISTINCT customer) GROUP BY company, store (people per store; company totals are sums).

Both run in the same process on SQLite and, with ``--pg URL``, on PostgreSQL (the naive table bulk-loaded with
COPY). The PostgreSQL run uses its own schema ``bench_blast_radius`` in that database, dropped first.
The answers are checked against each other before any time is printed.

Run: ``uv run python bench/blast_radius.py [--sizes 1000000,10000000] [--pg URL [--no-sqlite]]``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, insert, text

COMPANIES, STORES, CANARIES = 100, 20, 16
FIELDS = {"name": 0.6, "phone": 0.5}
PG_SCHEMA = "bench_blast_radius"
STAMP = "2026-01-01 00:00:00.000000"


@dataclass
class World:
    """The synthetic platform: per customer (ids 1..N) its company and home store (database ids)."""

    n: int
    company: np.ndarray[Any, Any]
    store: np.ndarray[Any, Any]
    canary: np.ndarray[Any, Any]
    delivered: dict[str, np.ndarray[Any, Any]]  # field -> boolean mask over customers


def make_world(n: int, company_ids: list[int], store_ids: dict[int, list[int]], seed: int = 7) -> World:
    rng = np.random.default_rng(seed)
    block = np.arange(n) * len(company_ids) // n  # contiguous, equal blocks of customers per company
    company = np.asarray(company_ids)[block]
    stores = np.asarray([store_ids[c] for c in company_ids])  # (companies, 20)
    store = stores[block, rng.integers(0, STORES, n)]
    canary = np.zeros(n, dtype=bool)
    canary[rng.choice(n, CANARIES, replace=False)] = True
    delivered = {f: rng.random(n) < share for f, share in FIELDS.items()}
    return World(n, company, store, canary, delivered)


def setup(url: str) -> tuple[Any, list[int], dict[int, list[int]], str, int]:
    """Migrated schema with companies, stores, one app and its incident; (db, companies, stores, ref, app)."""
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import Database
    from appwarden.incident.service import open_incident
    from appwarden.marketplace import service as marketplace
    from appwarden.platform import service as platform
    from appwarden.wiring import wire

    wire()  # opening the incident is answered by the canary package
    upgrade(url)
    db = Database(url)
    with db.session() as session:
        companies, stores = [], {}
        for c in range(COMPANIES):
            company = platform.create_company(session, f"Company {c:03d}", f"co{c}@example.jp")
            companies.append(company.id)
            stores[company.id] = [
                platform.create_store(session, company, f"Store {c}-{s}").id for s in range(STORES)
            ]
        reg = marketplace.register_app(
            session,
            slug="invoice-plus",
            name="Invoice Plus",
            redirect_uris=["https://invoice-plus.example/cb"],
            scopes=["customers.name:raw", "customers.phone:raw"],
        )
        ref = open_incident(session, apps=[reg.app], reason="bench", actor="bench").public_id
        app_id = reg.app.id
    return db, companies, stores, ref, app_id


def customer_rows(w: World) -> Iterator[tuple[Any, ...]]:
    for i in range(w.n):
        yield (
            i + 1,
            f"cus_{i + 1:012d}",
            int(w.company[i]),
            int(w.store[i]),
            "x",
            0,
            bool(w.canary[i]),
            STAMP,
        )


def naive_rows(w: World, app_id: int) -> Iterator[tuple[Any, ...]]:
    for field, mask in w.delivered.items():
        for i in np.flatnonzero(mask).tolist():
            yield (app_id, int(w.company[i]), int(w.store[i]), i + 1, field, "raw")


CUSTOMER_COLS = "id, public_id, company_id, home_store_id, name, points, is_canary, updated_at"
NAIVE_DDL = (
    "CREATE TABLE naive_deliveries (app_id INTEGER NOT NULL, company_id INTEGER NOT NULL, "
    "store_id INTEGER NOT NULL, customer_id INTEGER NOT NULL, field VARCHAR(30) NOT NULL, "
    "mode VARCHAR(10) NOT NULL)"
)


def load(db: Any, w: World, app_id: int) -> None:
    """Customers, the naive table and the ledger index rows (bitmaps synthesised from the same masks)."""
    from appwarden.bitmaps import to_bitmap
    from appwarden.ledger.models import LedgerIndex

    with db.engine.begin() as conn:
        conn.execute(text(NAIVE_DDL))
    raw = db.engine.raw_connection()
    try:
        if db.is_sqlite:
            cur = raw.cursor()
            cur.executemany(
                f"INSERT INTO customers ({CUSTOMER_COLS}) VALUES (?,?,?,?,?,?,?,?)", customer_rows(w)
            )
            cur.executemany("INSERT INTO naive_deliveries VALUES (?,?,?,?,?,?)", naive_rows(w, app_id))
        else:
            cur = raw.cursor()
            _copy(cur, f"COPY customers ({CUSTOMER_COLS}) FROM STDIN", customer_rows(w))
            _copy(cur, "COPY naive_deliveries FROM STDIN", naive_rows(w, app_id))
        raw.commit()
    finally:
        raw.close()
    rows = []
    ids = np.arange(1, w.n + 1, dtype=np.uint32)
    for company_id in np.unique(w.company).tolist():
        in_company = w.company == company_id
        for field, mask in w.delivered.items():
            bitmap = to_bitmap(ids[in_company & mask])
            bitmap.run_optimize()
            rows.append(
                {
                    "app_id": app_id,
                    "company_id": company_id,
                    "field": field,
                    "mode": "raw",
                    "bitmap": bitmap.serialize(),
                    "cardinality": len(bitmap),
                }
            )
    with db.engine.begin() as conn:
        conn.execute(insert(LedgerIndex), rows)
        conn.execute(text("ANALYZE"))


def _copy(cur: Any, statement: str, rows: Iterator[tuple[Any, ...]], batch: int = 500_000) -> None:
    with cur.copy(statement) as copy:
        buf = io.StringIO()
        for k, row in enumerate(rows, 1):
            buf.write("\t".join("t" if v is True else "f" if v is False else str(v) for v in row) + "\n")
            if k % batch == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


NAIVE_Q1 = (
    "SELECT company_id, store_id, field, mode, COUNT(DISTINCT customer_id) FROM naive_deliveries "
    "WHERE app_id = :app GROUP BY company_id, store_id, field, mode"
)
NAIVE_Q2 = (
    "SELECT company_id, store_id, COUNT(DISTINCT customer_id) FROM naive_deliveries "
    "WHERE app_id = :app AND mode IN ('raw', 'masked') GROUP BY company_id, store_id"
)


def naive(db: Any, app_id: int) -> tuple[list[Any], list[Any]]:
    with db.engine.connect() as conn:
        return (
            conn.execute(text(NAIVE_Q1), {"app": app_id}).all(),
            conn.execute(text(NAIVE_Q2), {"app": app_id}).all(),
        )


def check(radius: dict[str, Any], q1: list[Any], q2: list[Any], w: World, db: Any) -> None:
    """Both sides agree (canaries aside: the naive peer has no notion of them, so count them back in)."""
    from appwarden.platform.models import Store

    with db.sessionmaker() as session:
        public = dict(session.query(Store.id, Store.public_id).all())
    naive_store = {public[s]: n for _, s, n in q2}
    canary_store: dict[str, int] = {}
    for i in np.flatnonzero(w.canary & np.logical_or.reduce(list(w.delivered.values()))).tolist():
        key = public[int(w.store[i])]
        canary_store[key] = canary_store.get(key, 0) + 1
    ours = {
        s["id"]: s["persons_exposed"] + canary_store.get(s["id"], 0)
        for c in radius["companies"]
        for s in c["stores"]
    }
    assert ours == naive_store, "per-store counts differ"
    for field in FIELDS:
        naive_total = sum(n for _, _, f, _, n in q1 if f == field)
        canaries = int((w.canary & w.delivered[field]).sum())
        assert radius["fields"][field]["exposed"] + canaries == naive_total, field
    assert radius["canaries_excluded"] == int(
        (w.canary & np.logical_or.reduce(list(w.delivered.values()))).sum()
    )


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` runs (after none: the first run is counted, caches as they are)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_backend(name: str, url: str, n: int, console: Console) -> dict[str, Any]:
    from appwarden.incident.blast_radius import compute_blast_radius
    from appwarden.platform.store_members import rebuild_store_members

    t = time.perf_counter()
    db, companies, stores, ref, app_id = setup(url)
    w = make_world(n, companies, stores)
    load(db, w, app_id)
    console.print(f"  {name} {n:,}: loaded in {time.perf_counter() - t:.0f} s", style="dim")
    rebuild_s, stores_written = timed(lambda: rebuild_store_members(db), 1)
    assert stores_written == COMPANIES * STORES
    bitmap_s, radius = timed(lambda: compute_blast_radius(db, ref).to_dict(), 5)
    naive_s, (q1, q2) = timed(lambda: naive(db, app_id), 1 if n > 2_000_000 else 2)
    check(radius, q1, q2, w, db)
    db.dispose()
    console.print(
        f"  {name} {n:,}: bitmap {bitmap_s * 1000:,.1f} ms, naive {naive_s * 1000:,.0f} ms,"
        f" store_members rebuild {rebuild_s * 1000:,.0f} ms",
        style="dim",
    )
    return {
        "backend": name,
        "n": n,
        "bitmap": bitmap_s,
        "rebuild": rebuild_s,
        "naive": naive_s,
        "exposed": radius["persons_exposed"],
        "rows": int(sum(m.sum() for m in w.delivered.values())),
    }


def pg_url(base: str) -> str:
    """The given database with a search path of our own schema (dropped and recreated)."""
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{PG_SCHEMA}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,10000000", help="customer counts, comma-separated")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL of a scratch database")
    parser.add_argument(
        "--no-sqlite",
        action="store_true",
        help="only PostgreSQL (with --pg): SQLite at 10M loads for ~25 min",
    )
    args = parser.parse_args()
    if args.no_sqlite and not args.pg:
        parser.error("--no-sqlite needs --pg")
    console = Console(width=150)
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run_backend("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", n, console))
        if args.pg:
            results.append(run_backend("postgresql", pg_url(args.pg), n, console))
    table = Table(
        "backend",
        "customers",
        "delivered rows (naive)",
        "people exposed",
        "bitmap blast radius",
        "naive COUNT(DISTINCT)",
        "naive / bitmap",
        "store_members rebuild (once)",
        title="blast radius: bitmap index vs naive peer (median; same data, answers checked equal)",
    )
    for r in results:
        table.add_row(
            r["backend"],
            f"{r['n']:,}",
            f"{r['rows']:,}",
            f"{r['exposed']:,}",
            f"{r['bitmap'] * 1000:,.1f} ms",
            f"{r['naive'] * 1000:,.0f} ms",
            f"{r['naive'] / r['bitmap']:,.0f}x",
            f"{r['rebuild'] * 1000:,.0f} ms",
        )
    console.print(table)
    load1, load5, load15 = os.getloadavg()
    console.print(f"load average {load1:.2f} {load5:.2f} {load15:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
