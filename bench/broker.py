"""Benchmark: the guarded data API page against an unguarded endpoint serving the same rows.

    uv run python bench/broker.py [--quick] [--customers N] [--requests N] [--database-url URL]
                                  [--redis URL]

Harness: a real uvicorn server (one worker, its own process) on a free loopback port, driven by one
``httpx.Client`` (keep-alive, sequential requests). Both endpoints live in the same app in that server:

- guarded:   ``GET /v1/customers?limit=100`` with a bearer token — authentication, projection in the
             app's modes, the ledger entry committed before the body, per-app ids and tokens;
- unguarded: ``GET /bench/raw-customers?limit=100`` added by this script — the same query over the same
             columns of the same company, returned raw with orjson: no auth, no ledger, no masking.

With monitoring on against off (issue 12): a second server of the same app over the same database
serves the guarded walk with the monitor replaced by a stand-in that does nothing (``NoMonitor``: no
quotas, no tally, no background run); the first server runs the monitor as ``appwarden serve`` does —
quotas on every call (in memory, or in Redis with ``--redis``), the tally, and the background run every
``run_interval_seconds``. The two guarded walks alternate with the unguarded one, and the report gives
the ratio monitored/unmonitored (goal >= 0.9) beside guarded/unguarded.

Both walk the company page by page with their own cursors: the same company, the same columns, 100 rows
a page; the guarded walk is in the app's own order (a keyed permutation, ``broker.ordering``), the
unguarded one in internal-id order. Rounds alternate between the two to cancel drift (WAL growth, page
cache). The company has ``--customers`` members (50,000 by default) beside a second, smaller company.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

SCOPES = [
    "customers.name:raw",
    "customers.name_kana:masked",
    "customers.phone:token",
    "customers.email:masked",
    "customers.address:masked",
    "customers.birthday:masked",
    "customers.points:raw",
    "customers.rank:raw",
]
FIELDS = [s.split(":")[0].split(".")[1] for s in SCOPES]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- data ---------------------------------------------------------------------------------------------


def build(url: str, customers: int) -> tuple[str, int]:
    """A migrated database with a big company (and a small one), an app connected to the big one.

    Returns the access token and the big company's id.
    """
    from faker import Faker

    from appwarden import wiring
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import Database
    from appwarden.marketplace import service as marketplace
    from appwarden.oauth.models import Connection
    from appwarden.oauth.tokens import issue_token
    from appwarden.platform import service as platform

    wiring.wire()  # customers go in through the platform's write path, blind index included
    upgrade(url)
    db = Database(url)
    fake = Faker("ja_JP")
    Faker.seed(7)
    rng = np.random.default_rng(7)
    pool = 400
    family = [(fake.last_name(), fake.last_kana_name()) for _ in range(pool)]
    given = [(fake.first_name(), fake.first_kana_name()) for _ in range(pool)]
    addresses = [fake.address() for _ in range(pool)]
    with db.session() as session:
        big = None
        for n, size in ((0, customers), (1, max(1000, customers // 10))):
            company = platform.create_company(session, f"Bench {n}", f"bench{n}@example.jp")
            stores = [platform.create_store(session, company, f"Bench {n}-{s}") for s in range(4)]
            fi, gi, ai = (rng.integers(0, pool, size) for _ in range(3))
            has_phone, has_email = rng.random(size) < 0.85, rng.random(size) < 0.6
            rows: list[dict[str, Any]] = []
            for i in range(size):
                (fam, fam_kana), (giv, giv_kana) = family[fi[i]], given[gi[i]]
                rows.append(
                    {
                        "home_store_id": stores[i % 4].id,
                        "name": f"{fam} {giv}",
                        "name_kana": f"{fam_kana} {giv_kana}",
                        "phone": f"090-{i // 10000:04d}-{i % 10000:04d}" if has_phone[i] else None,
                        "email": f"user{i}@example.jp" if has_email[i] else None,
                        "address": addresses[ai[i]],
                        "birthday": date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
                        "gender": "female" if i % 2 else "male",
                        "points": int(i % 997),
                        "rank": "gold" if i % 7 == 0 else "regular",
                    }
                )
            for start in range(0, size, 20_000):
                platform.add_customers(session, company, rows[start : start + 20_000])
            big = big or company
        assert big is not None
        reg = marketplace.register_app(
            session, slug="bench-app", name="Bench", redirect_uris=["https://bench.example/cb"], scopes=SCOPES
        )
        conn = Connection(company_id=big.id, app_id=reg.app.id, scopes=SCOPES)
        session.add(conn)
        session.flush()
        token = issue_token(session, conn, " ".join(SCOPES), access_ttl=24 * 3600, refresh_ttl=None)
        big_id = big.id
    db.dispose()
    return str(token["access_token"]), big_id


# --- server (runs in its own process) -------------------------------------------------------------------


class NoMonitor:
    """Monitoring off: the broker's calls on ``app.state.monitor`` (``monitor.runtime.Monitor``), each
    doing nothing. Bench-only: an operator setting to switch quotas and detectors off would be a switch
    for taking data unwatched."""

    def admit_request(self, *args: object, **kwargs: object) -> None:
        return None

    def admit_people(self, *args: object, **kwargs: object) -> None:
        return None

    def delivered(self, *args: object, **kwargs: object) -> None:
        return None

    def refused(self, *args: object, **kwargs: object) -> None:
        return None

    def restricted_minted(self, *args: object, **kwargs: object) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


def serve(port: int, company_id: int, monitored: bool = True) -> None:
    """The real app plus the unguarded bench-only route, under uvicorn (``monitored``: with the app's
    monitor, else with :class:`NoMonitor`)."""
    import uvicorn
    from fastapi.responses import Response
    from sqlalchemy import select

    from appwarden.app import create_app
    from appwarden.config import get_settings
    from appwarden.platform.models import Customer

    app = create_app(get_settings())
    if not monitored:
        app.state.monitor = NoMonitor()
    db = app.state.db
    columns = [Customer.id, *(getattr(Customer, f) for f in FIELDS)]
    names = ["id", *FIELDS]

    @app.get("/bench/raw-customers", include_in_schema=False)
    def raw_customers(limit: int = 100, after: int = 0) -> Response:
        with db.session() as session:
            rows = session.execute(
                select(*columns)
                .where(Customer.company_id == company_id, Customer.id > after)
                .order_by(Customer.id)
                .limit(limit + 1)
            ).all()
        more = len(rows) > limit
        data = [dict(zip(names, r, strict=True)) for r in rows[:limit]]
        return Response(
            orjson.dumps({"data": data, "next_cursor": data[-1]["id"] if more else None}),
            media_type="application/json",
        )

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- client ---------------------------------------------------------------------------------------------


class Walker:
    """Walks one endpoint page by page, wrapping around at the end, timing each request."""

    def __init__(self, http: httpx.Client, path: str, headers: dict[str, str], cursor_param: str) -> None:
        self.http, self.path, self.headers, self.cursor_param = http, path, headers, cursor_param
        self.cursor: Any = None
        self.latencies: list[float] = []
        self.rows = 0

    def run(self, n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            params: dict[str, Any] = {"limit": 100}
            if self.cursor is not None:
                params[self.cursor_param] = self.cursor
            t0 = time.perf_counter()
            response = self.http.get(self.path, params=params, headers=self.headers)
            self.latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise SystemExit(f"{self.path} answered {response.status_code}: {response.text[:300]}")
            body = response.json()
            self.rows += len(body["data"])
            self.cursor = body["next_cursor"]
        return time.perf_counter() - started


def summarise(name: str, walker: Walker, elapsed: float) -> dict[str, float]:
    lat = sorted(walker.latencies)
    result = {
        "rps": len(lat) / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "rows_per_s": walker.rows / elapsed,
    }
    print(
        f"{name:<10} {result['rps']:8.1f} req/s   p50 {result['p50_ms']:6.2f} ms   "
        f"p99 {result['p99_ms']:6.2f} ms   {result['rows_per_s']:9.0f} rows/s"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests (same 50k company)")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=None, help="requests per endpoint (default 1000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="e.g. a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--redis", default=None, help="quotas (and the kill signal) in Redis: redis://…")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-monitor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--company", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.company, monitored=not args.no_monitor)
        return 0
    total = args.requests or (200 if args.quick else 1000)
    per_round = max(1, total // args.rounds)

    with tempfile.TemporaryDirectory(prefix="appwarden-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'appwarden.db'}"
        env = {
            **os.environ,
            "APPWARDEN_DATA_DIR": tmp,
            "APPWARDEN_DATABASE_URL": url,
            "APPWARDEN_SECRET_KEY": "bench-secret-key",
            # The quotas are checked on every guarded request (their cost is measured) but set far above
            # what the walk uses, so no page is refused (monitor.quotas).
            "APPWARDEN_DECLARED_REQUESTS_PER_MINUTE_PEAK": "10000000",
            "APPWARDEN_DECLARED_PEOPLE_PER_DAY_PEAK": "1000000000",
            "APPWARDEN_APP_REQUESTS_PER_MINUTE_MAX": "10000000",
            "APPWARDEN_APP_PEOPLE_PER_DAY_MAX": "1000000000",
            # As ``appwarden serve``: each worker folds its tally and takes its turn at the detectors.
            "APPWARDEN_MONITOR_BACKGROUND": "true",
            **({"APPWARDEN_REDIS_URL": args.redis} if args.redis else {}),
        }
        if args.redis:
            import redis

            redis.Redis.from_url(args.redis).flushdb()  # no counts or kill signals of an earlier run
        os.environ.update(
            {k: env[k] for k in ("APPWARDEN_DATA_DIR", "APPWARDEN_DATABASE_URL", "APPWARDEN_SECRET_KEY")}
        )
        if args.database_url:
            reset_postgres(url)
        t0 = time.perf_counter()
        token, company_id = build(url, args.customers)
        built_in = time.perf_counter() - t0
        print(
            f"built {args.customers:,} customers (+ a smaller one) in {built_in:.1f}s ({url.split(':')[0]})"
        )
        port, port_off = free_port(), free_port()
        command = [sys.executable, __file__, "--company", str(company_id), "--serve"]
        # The servers' request log lines (structlog's stdout) are written as in production, not shown.
        quiet = {"env": env, "stdout": subprocess.DEVNULL}
        server = subprocess.Popen([*command, str(port)], **quiet)  # type: ignore[call-overload]
        server_off = subprocess.Popen([*command, str(port_off), "--no-monitor"], **quiet)  # type: ignore[call-overload]
        auth = {"Authorization": f"Bearer {token}"}
        try:
            with (
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
                httpx.Client(base_url=f"http://127.0.0.1:{port_off}", timeout=30) as http_off,
            ):
                _wait_ready(http, server)
                _wait_ready(http_off, server_off)
                guarded = Walker(http, "/v1/customers", auth, "cursor")
                unmonitored = Walker(http_off, "/v1/customers", auth, "cursor")
                baseline = Walker(http, "/bench/raw-customers", {}, "after")
                walkers = (baseline, guarded, unmonitored)
                for walker in walkers:
                    walker.run(20)  # warm-up: imports, caches, first ledger rows
                    walker.latencies.clear()
                    walker.rows = 0
                elapsed = [0.0, 0.0, 0.0]
                for n in range(args.rounds):
                    # Rotate the order each round: none of the three always runs after the same one.
                    for i in (0, 1, 2)[n % 3 :] + (0, 1, 2)[: n % 3]:
                        elapsed[i] += walkers[i].run(per_round)
            commit_probe = _commit_probe(url)
        finally:
            for process in (server, server_off):
                process.terminate()
                process.wait(timeout=10)
    print(f"GET ?limit=100, {per_round * args.rounds} requests each, sequential, uvicorn (1 worker) + httpx")
    print(f"fields: {', '.join(SCOPES)}; quotas in {'Redis' if args.redis else 'memory'}")
    base = summarise("unguarded", baseline, elapsed[0])
    guard = summarise("guarded", guarded, elapsed[1])
    off = summarise("no monitor", unmonitored, elapsed[2])
    print(f"ratio guarded/unguarded throughput: {guard['rps'] / base['rps']:.2f} (goal >= 0.5)")
    print(f"ratio monitored/unmonitored guarded throughput: {guard['rps'] / off['rps']:.2f} (goal >= 0.9)")
    # Context for comparing runs on a shared machine: the guarded path commits a write per request, so
    # its cost moves with the database's commit latency (fsync under other load), the unguarded one not.
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {commit_probe}")
    return 0


def _wait_ready(http: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited before it was ready")
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # polling a socket that is not listening yet, not synchronising work
    raise SystemExit("the server did not start within 60s")


def _commit_probe(url: str, n: int = 100) -> str:
    """The median of a one-row INSERT + COMMIT on this database (what a durable write costs right now),
    through the app's engine settings (on SQLite: WAL, ``synchronous=NORMAL``, ``BEGIN IMMEDIATE``)."""
    from sqlalchemy import text

    from appwarden.db.session import Database

    engine = Database(url).engine
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_commit_probe (x INTEGER)"))
        latencies = []
        with engine.connect() as conn:
            for i in range(n):
                t0 = time.perf_counter()
                conn.execute(text("INSERT INTO bench_commit_probe (x) VALUES (:x)"), {"x": i})
                conn.commit()
                latencies.append(time.perf_counter() - t0)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE bench_commit_probe"))
    finally:
        engine.dispose()
    return f"plain INSERT+COMMIT p50 {statistics.median(latencies) * 1000:.2f} ms"


def reset_postgres(url: str) -> None:
    """An empty public schema in the PostgreSQL database at ``url`` (the benches start from nothing)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
