"""Benchmark: what the monitor costs and how fast it notices (issue 12 point 7).

    uv run python bench/monitor.py [--quick] [--json] [--database-url URL] [--redis URL]

(a) **Write path**, per recorded delivery: ``Tally.delivered`` for a realistic page (100 people × 6
    fields, one id list shared by the fields as the broker passes it, an access token id and a client
    address), alone and with the request's quotas (``Monitor.admit_request`` + ``admit_people`` +
    ``delivered``, as ``broker.api`` calls them). Naive peers in the same run: the same counts kept in
    Python sets instead of bitmaps, and one row per (person, field) inserted and committed per delivery.
(b) **Detector run**: ``runner.run_once(now)`` over folded history — apps × companies × 7 days and 2 h of
    hour rows (default 50 × 20 × 170 = 170,000 rows, each with its people and six field bitmaps) — and
    each detector on its own (the reads and calls of ``runner._findings``, timed one by one).
(c) **Detection latency**: each detector's synthetic pattern driven through a real ``Monitor`` (tally +
    ``run_once`` every simulated minute, an injected clock), with the people the app had received when
    that detector's first alert was raised (calls, for the probing patterns).

The latency scenarios run with a declared volume of 5,000 people a day (peak; average 500) for every
connection — a vendor's declaration, in place of the settings' 100,000 stand-in, so that
``over_declaration`` is reachable by a company of 20,000 — and the default policy otherwise.
Times are medians of ``--repeat`` runs; the machine is shared, so compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pyroaring import BitMap

from broker import reset_postgres  # the broker bench's: an empty schema to start from

HOUR = timedelta(hours=1)
FIELDS = ["name", "name_kana", "phone", "email", "points", "rank"]
MODES = ["raw", "masked", "token", "masked", "raw", "raw"]
DECLARED = {
    "declared_people_per_day_peak": 5_000,
    "declared_people_per_day_avg": 500,
    "declared_requests_per_minute_peak": 1_200,
    "declared_requests_per_minute_avg": 120,
}


@dataclass
class World:
    url: str
    apps: list[int]
    companies: list[int]  # small companies (history of part b)
    members: dict[int, list[int]]  # company id → its customer ids
    big: int  # the big company of the latency scenarios
    slugs: dict[str, int] = field(default_factory=dict)  # scenario app slug → id


# --- data ---------------------------------------------------------------------------------------------


def build(url: str, apps: int, companies: int, members: int, big_members: int, scenarios: list[str]) -> World:
    """A migrated database: ``companies`` of ``members`` each, one big company, ``apps`` apps for the
    history and one app per latency scenario."""
    from sqlalchemy import select

    from appwarden import wiring
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import Database
    from appwarden.marketplace import service as marketplace
    from appwarden.platform import service as platform
    from appwarden.platform.models import Customer

    wiring.wire()
    upgrade(url)
    db = Database(url)
    world = World(url, [], [], {}, 0)
    scopes = [f"customers.{f}:{m}" for f, m in zip(FIELDS, MODES, strict=True)]
    with db.session() as session:
        for n, size in [*((n, members) for n in range(companies)), (companies, big_members)]:
            company = platform.create_company(session, f"Bench {n}", f"bench{n}@example.jp")
            store = platform.create_store(session, company, f"Bench {n} store")
            rows = [
                {"home_store_id": store.id, "name": f"顧客 {n}-{i}", "phone": f"090-{n:04d}-{i:04d}"}
                for i in range(size)
            ]
            platform.add_customers(session, company, rows)
            session.flush()
            world.members[company.id] = list(
                session.scalars(
                    select(Customer.id).where(Customer.company_id == company.id).order_by(Customer.id)
                )
            )
            if n < companies:
                world.companies.append(company.id)
            else:
                world.big = company.id
        for a in range(apps):
            reg = marketplace.register_app(
                session,
                slug=f"app-{a:03d}",
                name=f"App {a}",
                redirect_uris=["https://b.example/cb"],
                scopes=scopes,
            )
            world.apps.append(reg.app.id)
        for slug in scenarios:
            reg = marketplace.register_app(
                session,
                slug=f"s-{slug.replace('_', '-')}",
                name=slug,
                redirect_uris=["https://b.example/cb"],
                scopes=scopes,
            )
            world.slugs[slug] = reg.app.id
    db.dispose()
    return world


def seed_history(world: World, now: datetime, hours: int) -> int:
    """Folded hour rows for every app × small company over ``hours`` before ``now`` (and the current
    hour so far): Tokyo business hours busy (10–40 people, 5–20 requests), nights quiet (0–3 people).

    Written straight into ``monitor_hours`` in bulk (what ``Tally.fold`` would leave, minus the hours
    of folding one row at a time): this is the detectors' input, not what is measured."""
    from sqlalchemy import Table, insert

    from appwarden.db.session import Database
    from appwarden.monitor.models import DeliveryHour, SourceSighting

    rng = random.Random(3)
    table: Table = DeliveryHour.__table__  # type: ignore[assignment]
    sources: Table = SourceSighting.__table__  # type: ignore[assignment]
    current = now.replace(minute=0, second=0, microsecond=0)
    db = Database(world.url)
    written = 0
    with db.session() as session:
        for app_id in world.apps:
            rows: list[dict[str, Any]] = []
            for company_id in world.companies:
                members = world.members[company_id]
                for back in range(hours, -1, -1):
                    hour = current - back * HOUR
                    local = (hour.hour + 9) % 24
                    busy = 9 <= local < 21
                    n = rng.randint(10, 40) if busy else rng.randint(0, 3)
                    people = BitMap(rng.sample(members, n))
                    people.run_optimize()
                    blob = people.serialize()
                    encoded = base64.b64encode(blob).decode()
                    rows.append(
                        {
                            "app_id": app_id,
                            "company_id": company_id,
                            "hour": hour,
                            "requests": rng.randint(5, 20) if busy else n,
                            "persons": n,
                            "people": blob,
                            "refused_401": 0,
                            "refused_403": 0,
                            "refused_404": rng.randint(0, 1),
                            "after_revocation": 0,
                            "after_kill": 0,
                            "field_people": dict.fromkeys(FIELDS, n),
                            "field_bitmaps": dict.fromkeys(FIELDS, encoded),
                        }
                    )
                session.execute(
                    insert(sources),
                    [
                        {
                            "app_id": app_id,
                            "company_id": company_id,
                            "kind": "network",
                            "key": f"10.{app_id % 250}.{company_id % 250}.0/24",
                            "first_seen_at": current - hours * HOUR,
                            "people": BitMap().serialize(),
                        }
                    ],
                )
            session.execute(insert(table), rows)
            written += len(rows)
    db.dispose()
    return written


# --- (a) write path -------------------------------------------------------------------------------------


class SetTally:
    """The naive peer of ``Tally``: the same counts (per app × company × hour: requests, person-deliveries,
    distinct people overall and per field, per source) in Python sets."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, int, datetime], dict[str, Any]] = {}

    def delivered(
        self,
        app_id: int,
        company_id: int,
        deliveries: dict[Any, list[int]],
        at: datetime,
        token_id: int,
        client: str,
    ) -> None:
        hour = at.replace(minute=0, second=0, microsecond=0)
        c = self.counts.setdefault(
            (app_id, company_id, hour),
            {"requests": 0, "persons": 0, "people": set(), "fields": {}, "sources": {}},
        )
        people: set[int] = set()
        for (name, _mode), ids in deliveries.items():
            people.update(ids)
            c["fields"].setdefault(name, set()).update(ids)
        c["requests"] += 1
        c["persons"] += len(people)
        c["people"] |= people
        network = ".".join(client.split(".")[:3]) + ".0/24"
        for source in (("token", token_id), ("network", network)):
            c["sources"].setdefault(source, set()).update(people)


def pages(n: int, size: int, universe: int, seed: int = 1) -> list[dict[tuple[str, str], list[int]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids = sorted(rng.sample(range(1, universe), size))
        out.append({(f, m): ids for f, m in zip(FIELDS, MODES, strict=True)})  # one list, as the broker
    return out


def bench_write_path(n: int, repeat: int, redis: str | None) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, text

    from appwarden.config import get_settings
    from appwarden.db.session import Database
    from appwarden.monitor.policy import MonitorPolicy
    from appwarden.monitor.runtime import Monitor
    from appwarden.monitor.tally import Tally

    work = pages(200, 100, 50_000)
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    calls = [
        (
            1 + i % 5,
            1 + i % 4,
            work[i % len(work)],
            start + timedelta(seconds=i),
            i % 3,
            f"203.0.113.{i % 250}",
        )
        for i in range(n)
    ]

    def tally_run() -> float:
        tally = Tally()
        t0 = time.perf_counter()
        for app, company, d, at, token, client in calls:
            tally.delivered(app, company, d, at, token_id=token, client=client)
        return (time.perf_counter() - t0) / n

    def sets_run() -> float:
        tally = SetTally()
        t0 = time.perf_counter()
        for app, company, d, at, token, client in calls:
            tally.delivered(app, company, d, at, token, client)
        return (time.perf_counter() - t0) / n

    settings = get_settings().model_copy(
        update={
            "redis_url": redis,
            "declared_requests_per_minute_peak": 10**9,
            "declared_people_per_day_peak": 10**12,
            "app_requests_per_minute_max": 10**9,
            "app_people_per_day_max": 10**12,
        }
    )
    db = Database(settings.database_url)

    def monitor_run(backend_calls: list[Any]) -> float:
        m = Monitor(settings, db, MonitorPolicy())
        m.quotas.reset()
        with db.sessionmaker() as session:
            m.admit_request(session, 1, 1)  # the declaration and throttles read once, as a warm worker
            t0 = time.perf_counter()
            for app, company, d, at, token, client in backend_calls:
                m.admit_request(session, app, company)
                m.admit_people(session, app, company, 100)
                m.delivered(app, company, d, at, token_id=token, client=client)
            return (time.perf_counter() - t0) / len(backend_calls)

    naive_n = max(50, n // 40)

    def sql_run() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine(f"sqlite:///{Path(tmp) / 'naive.db'}")
            with engine.begin() as conn:
                conn.execute(text("PRAGMA journal_mode=WAL"))
                conn.execute(
                    text(
                        "CREATE TABLE naive_deliveries (app_id INT, company_id INT, hour TEXT, field TEXT,"
                        " person INT, token INT, network TEXT)"
                    )
                )
            t0 = time.perf_counter()
            with engine.connect() as conn:
                for app, company, d, at, token, client in calls[:naive_n]:
                    hour = at.replace(minute=0).isoformat()
                    network = ".".join(client.split(".")[:3])
                    rows = [
                        {"a": app, "c": company, "h": hour, "f": f, "p": p, "t": token, "n": network}
                        for (f, _m), ids in d.items()
                        for p in ids
                    ]
                    conn.execute(
                        text("INSERT INTO naive_deliveries VALUES (:a, :c, :h, :f, :p, :t, :n)"), rows
                    )
                    conn.commit()
            elapsed = (time.perf_counter() - t0) / naive_n
            engine.dispose()
            return elapsed

    results = [
        ("Tally.delivered (bitmaps)", tally_run),
        ("naive: Python sets", sets_run),
        ("naive: SQLite row per (person, field) + COMMIT", sql_run),
        ("Monitor: quotas (memory) + tally", lambda: monitor_run(calls)),
    ]
    if redis:
        results.append(("Monitor: quotas (Redis) + tally", lambda: monitor_run(calls[: max(200, n // 10)])))
    out = []
    for name, fn in results:
        fn()  # warm-up
        times = [fn() for _ in range(repeat)]
        out.append(
            {
                "path": name,
                "us_per_delivery": statistics.median(times) * 1e6,
                "runs_us": [t * 1e6 for t in times],
            }
        )
    db.dispose()
    base = out[0]["us_per_delivery"]
    for row in out:
        row["vs_tally"] = row["us_per_delivery"] / base
    return out


# --- (b) detector run -----------------------------------------------------------------------------------


def timed_findings(session: Any, settings: Any, policy: Any, now: datetime) -> dict[str, float]:
    """``runner._findings`` step by step, each step timed (seconds)."""
    from appwarden.monitor import baseline, credentials, detectors, probing, restricted, runner
    from appwarden.monitor.declarations import DeclaredVolume, declared_volume_source

    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        times[name] = time.perf_counter() - t0
        return value

    history, window = timed(
        "read_hours (7 days + 2 h) and Window", lambda: runner.read_history(session, now, policy)
    )
    cache: dict[tuple[int, int], DeclaredVolume] = {}

    def declared(app_id: int, company_id: int) -> DeclaredVolume:
        if (app_id, company_id) not in cache:
            cache[(app_id, company_id)] = declared_volume_source(session, app_id, company_id, settings)
        return cache[(app_id, company_id)]

    since = timed("first_seen", lambda: detectors.first_seen(session))
    timed("over_declaration", lambda: detectors.over_declaration(window, declared, policy))
    timed(
        "over_baseline",
        lambda: baseline.over_baseline(baseline.field_hours(history), window, declared, since, policy),
    )
    timed("mirror", lambda: detectors.mirror(session, window, policy, declared))
    timed("new_app_high_usage", lambda: detectors.new_app_high_usage(session, window, policy))
    timed(
        "new_credential_volume",
        lambda: credentials.new_credential_volume(session, window, declared, since, policy),
    )
    timed("unusual_hours", lambda: detectors.unusual_hours(window, history, since, policy))
    timed("probing (refusal bursts)", lambda: probing.refusal_bursts(window, policy))
    timed("probing (late calls)", lambda: probing.late_calls(session, window, policy))
    timed(
        "restricted_token_volume",
        lambda: restricted.restricted_token_volume(session, window, declared, policy),
    )
    return times


def bench_detector_run(world: World, now: datetime, repeat: int) -> dict[str, Any]:
    from appwarden.config import get_settings
    from appwarden.db.session import Database
    from appwarden.monitor.policy import MonitorPolicy
    from appwarden.monitor.runner import run_once
    from appwarden.monitor.tally import Tally

    settings = get_settings()
    policy = MonitorPolicy()
    db = Database(world.url)
    runs = []
    raised = 0
    for k in range(repeat + 1):  # the first run raises (and dedups later); each later one is timed too
        t0 = time.perf_counter()
        report = run_once(db, settings, policy, Tally(), now=now + timedelta(seconds=61 * k))
        elapsed = time.perf_counter() - t0
        assert report.ran, "the bench's run did not take its turn"
        raised += len(report.raised)
        runs.append(elapsed)
    steps: dict[str, list[float]] = {}
    for k in range(repeat):
        with db.sessionmaker() as session:
            for name, t in timed_findings(session, settings, policy, now + timedelta(seconds=61 * k)).items():
                steps.setdefault(name, []).append(t)
    db.dispose()
    return {
        "run_once_s": statistics.median(runs[1:]),
        "first_run_s": runs[0],
        "runs_s": runs,
        "alerts_raised": raised,
        "steps_ms": {name: statistics.median(ts) * 1000 for name, ts in steps.items()},
    }


# --- (c) detection latency ------------------------------------------------------------------------------


SCENARIOS = [
    "mirror",
    "over_declaration",
    "over_baseline",
    "new_credential_volume",
    "unusual_hours",
    "restricted_token_volume",
    "probing_refusals",
    "probing_after_revocation",
]


def _normal_history(m: Any, app: int, company: int, members: list[int], start: datetime, days: int) -> None:
    """An interactive app's week: Tokyo business hours (09–18 local), 10 calls an hour of 5 people, from
    one client network and token, folded as the background run would have."""
    rng = random.Random(app)
    for h in range(days * 24):
        hour = start + h * HOUR
        if not 9 <= (hour.hour + 9) % 24 < 18:
            continue
        for i in range(10):
            ids = rng.sample(members, 5)
            at = hour + timedelta(minutes=6 * i)
            m.delivered(app, company, {(f, "raw"): ids for f in FIELDS}, at, token_id=None, client="10.1.2.3")


def latency(world: World, settings: Any, quick: bool) -> list[dict[str, Any]]:
    """Each scenario in its own month (so one's history is not another's), on the big company."""
    from sqlalchemy import select

    from appwarden.db.session import Database
    from appwarden.monitor.models import Alert
    from appwarden.monitor.policy import MonitorPolicy
    from appwarden.monitor.runtime import Monitor
    from appwarden.monitor.tally import LateCall

    db = Database(world.url)
    members = world.members[world.big]
    company = world.big
    policy = MonitorPolicy()
    out = []
    for k, scenario in enumerate(SCENARIOS):
        app = world.slugs[scenario]
        m = Monitor(settings.model_copy(update=DECLARED), db, policy)
        base = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(days=30 * k)
        detector = scenario.split("_")[0] if scenario.startswith("probing") else scenario
        if scenario in ("over_baseline", "new_credential_volume", "unusual_hours"):
            _normal_history(m, app, company, members, base - timedelta(days=8), 8)
            with db.session() as session:
                m.tally.fold(session, source_hours=policy.new_credential_hours)
        # The pattern starts at 11:00 Tokyo (02:00 UTC); unusual_hours' at 03:00 Tokyo (18:00 UTC).
        start = base + timedelta(hours=18 if scenario == "unusual_hours" else 2)
        every = timedelta(seconds=30)  # a page (or a call, or a mint) every 30 s: 2 per run interval
        tick = timedelta(seconds=policy.run_interval_seconds)
        seen: set[int] = set()
        calls = 0
        at, next_run, found = start, start + tick, None
        pos = 0
        horizon = start + timedelta(hours=6)
        while at < horizon and found is None:
            calls += 1
            if scenario.startswith("probing"):
                late = LateCall.AFTER_REVOCATION if scenario == "probing_after_revocation" else None
                m.refused(app, company, 401 if late else 404, at, late=late)
            elif scenario == "restricted_token_volume":
                ids = members[pos : pos + 10]  # a mint naming 10 customers (raw names, phones)
                pos = (pos + 10) % len(members)
                m.restricted_minted(app, company, ids, at)
                seen.update(ids)
            else:
                ids = members[pos : pos + 100]
                pos = (pos + 100) % len(members)
                client = "198.51.100.7" if scenario == "new_credential_volume" else "10.1.2.3"
                m.delivered(app, company, {(f, "raw"): ids for f in FIELDS}, at, token_id=None, client=client)
                seen.update(ids)
            at += every
            while next_run <= at and found is None:
                m.run_once(next_run)
                with db.sessionmaker() as session:
                    hit = session.scalars(
                        select(Alert.raised_at)
                        .where(Alert.app_id == app, Alert.detector == detector)
                        .limit(1)
                    ).first()
                if hit is not None:
                    found = next_run
                next_run += tick
        out.append(
            {
                "detector": scenario,
                "pattern": _PATTERNS[scenario],
                "people_before_alert": len(seen) if found else None,
                "calls_before_alert": calls if found else None,
                "minutes": (found - start).total_seconds() / 60 if found else None,
            }
        )
    db.dispose()
    return out


_PATTERNS = {
    "mirror": "walk of a 20,000-member company, 100/page, 2 pages/min",
    "over_declaration": "same walk; declared peak 5,000/day (×1.2)",
    "over_baseline": "same walk after a learned week of 5-person calls",
    "new_credential_volume": "same walk from a new client network",
    "unusual_hours": "same walk at 03:00 Tokyo after a week of 09–18",
    "restricted_token_volume": "mints of 10 people, 2/min (allowance 500)",
    "probing_refusals": "404s, 2/min (threshold 50/h)",
    "probing_after_revocation": "calls with a revoked token, 2/min (5/h)",
}


# --- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 apps × 5 companies, fewer deliveries")
    parser.add_argument("--apps", type=int, default=None)
    parser.add_argument("--companies", type=int, default=None)
    parser.add_argument("--deliveries", type=int, default=None, help="write-path calls per run (20,000)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="e.g. a PostgreSQL URL (default: SQLite)")
    parser.add_argument("--redis", default=None, help="also time the quotas in Redis (redis://…)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: write,run,latency")
    args = parser.parse_args(argv)
    apps = args.apps or (10 if args.quick else 50)
    companies = args.companies or (5 if args.quick else 20)
    n = args.deliveries or (5_000 if args.quick else 20_000)
    big = 20_000
    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="appwarden-bench-monitor-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'appwarden.db'}"
        os.environ.update(
            {
                "APPWARDEN_DATA_DIR": tmp,
                "APPWARDEN_DATABASE_URL": url,
                "APPWARDEN_SECRET_KEY": "bench-secret-key",
            }
        )
        os.environ.pop("APPWARDEN_REDIS_URL", None)
        if args.database_url:
            reset_postgres(url)
        from appwarden.config import get_settings

        get_settings.cache_clear()
        settings = get_settings()
        t0 = time.perf_counter()
        world = build(url, apps, companies, 1_000, big, SCENARIOS)
        log(
            args,
            f"built {apps} apps, {companies} companies × 1,000 + one of {big:,} "
            f"in {time.perf_counter() - t0:.1f}s",
        )
        if "write" not in skip:
            results["write_path"] = bench_write_path(n, args.repeat, args.redis)
        if "run" not in skip:
            now = datetime(2026, 3, 9, 5, 30, tzinfo=UTC)
            t0 = time.perf_counter()
            rows = seed_history(world, now, 7 * 24 + 2)
            log(args, f"seeded {rows:,} hour rows in {time.perf_counter() - t0:.1f}s")
            results["detector_run"] = {"hour_rows": rows, "apps": apps, "companies": companies}
            results["detector_run"].update(bench_detector_run(world, now, args.repeat))
        if "latency" not in skip:
            results["latency"] = latency(world, settings, args.quick)
    results["load_average"] = list(os.getloadavg())
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    else:
        report(results, n)
    return 0


def log(args: argparse.Namespace, line: str) -> None:
    print(line, file=sys.stderr if args.json else sys.stdout, flush=True)


def report(results: dict[str, Any], n: int) -> None:
    if "write_path" in results:
        print(f"\n(a) write path, per delivery (100 people × 6 fields, token + client), {n:,} calls, median")
        print(f"{'path':<50} {'µs/delivery':>12} {'vs tally':>9}")
        for row in results["write_path"]:
            print(f"{row['path']:<50} {row['us_per_delivery']:12.1f} {row['vs_tally']:8.1f}×")
    if "detector_run" in results:
        d = results["detector_run"]
        print(
            f"\n(b) detector run over {d['hour_rows']:,} hour rows "
            f"({d['apps']} apps × {d['companies']} companies × 171 h)"
        )
        print(
            f"run_once (fold + turn + detectors + outbox): median {d['run_once_s'] * 1000:.0f} ms "
            f"(first, raising {d['alerts_raised']} alerts: {d['first_run_s'] * 1000:.0f} ms)"
        )
        for name, ms in d["steps_ms"].items():
            print(f"  {name:<32} {ms:9.1f} ms")
    if "latency" in results:
        print("\n(c) detection latency (run every simulated minute; declared peak 5,000 people/day)")
        print(f"{'detector':<26} {'people':>7} {'calls':>6} {'minutes':>8}  pattern")
        for row in results["latency"]:
            people = "—" if row["people_before_alert"] is None else f"{row['people_before_alert']:,}"
            calls = "—" if row["calls_before_alert"] is None else str(row["calls_before_alert"])
            minutes = "—" if row["minutes"] is None else f"{row['minutes']:.0f}"
            print(f"{row['detector']:<26} {people:>7} {calls:>6} {minutes:>8}  {row['pattern']}")
    print(f"\nload average {' '.join(f'{x:.2f}' for x in results['load_average'])}")


if __name__ == "__main__":
    sys.exit(main())
