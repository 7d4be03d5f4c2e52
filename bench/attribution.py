"""Leak attribution: a noisy leaked dump matched through the blind index, against the naive peer.

World (per ``--customers N``, default 1,000,000): 40 companies x 5 stores, customers from the demo
generator's vectorised ja_JP columns (names from Faker's vocabulary, so names repeat a lot; phones are
distinct, ~85% of members have one). 100 apps with real ledger entries (``record_delivery``, a few large
bitmaps per app x company, dated Oct–Dec 2025):

  invoice-plus  : name + phone raw for ~13.6% of N people in 8 companies (two entries before the
                  snapshot, a third with ~4% more people after it: those are not in the dump);
  loyalty-stamp : name raw + phone masked + email token, the same 8 companies and 4 more, half their people;
  98 others     : 1–4 companies each, 10–60% of their people, 1–4 fields in random modes.

Dump (``0.136 x N`` rows, Shift_JIS/CP932 CSV with 顧客ID, 氏名, 電話番号 headers, as a forum post would
have it): invoice-plus's pre-snapshot people, shuffled, plus 2% invented people (vocabulary names, phones
no customer has), with noise: phones as 090-1234-5678 / 09012345678 / +81 90-… / +819… / 090 1234 5678 /
full-width / U+2212 minus / +81(0)90…; names with an ASCII space, U+3000, no space, or given name first,
variant kanji (髙, 﨑 …) where the name allows; 1% of real rows with a one-character typo in one field.
Ground truth is the customer id behind each row (0 for invented people).

  measured : ``appwarden.attribution.service.attribute_dump(db, path)`` (reader, normalisation, blind
             index lookups, ledger bitmaps, verdict), run in a fresh ``spawn`` child per repetition: wall
             time of the call alone, peak memory = the child's peak resident set (``VmHWM``: whole
             process, imports included; the figure before the call is printed too).
  naive    : what a team would write first: customers' name/phone into pandas, NFKC + strip spaces and
             hyphens + "+81"->"0" on both sides, an exact merge on (name, phone) (name alone for rows
             without a phone, kept when unique), then SQL over one row per delivered person x field x app
             (``naive_deliveries``, built from the same deliveries): COUNT per app of matched people who
             received every dumped field raw, the largest wins. Also in a spawn child, same measures.

The blind index rebuild and all loading are set-up, timed and printed apart. Precision = correct matched
rows / matched rows; recall = correct matched rows / rows of platform people. Rows are "identifiable" when
their values single the person out at all (a correct phone, or a name no other customer has):
recall over those is printed too, because name-only rows (people without a phone) cannot be resolved by
any matcher.

Run: ``uv run python bench/attribution.py [--quick | --customers N] [--database-url URL] [--workdir DIR]``
(``--workdir`` keeps the built world and reuses it when it matches).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from attribution_world import (
    OTHER_APPS,
    SNAPSHOT_AFTER,
    SNAPSHOT_BEFORE,
    TARGET,
    Dump,
    load_world,
    make_customers,
    plan_deliveries,
    reset_postgres,
    write_dump,
)

SECRET = "bench-attribution-secret-key-not-for-production"
WORLD_VERSION = 4  # bump when the generated world changes, so --workdir rebuilds it

# ------------------------------------------------------------------------------------------ the peers


def _phone_key(s: Any) -> Any:
    """The naive phone key: NFKC, spaces/hyphens/brackets out, +81(0) and +81 -> 0 (pandas str ops)."""
    s = s.fillna("").str.normalize("NFKC")
    s = s.str.replace(r"^\+81\s*\(0\)", "0", regex=True).str.replace(r"^\+81", "0", regex=True)
    return s.str.replace(r"[\s\-‐−ー－()]", "", regex=True)


def _name_key(s: Any) -> Any:
    return s.fillna("").str.normalize("NFKC").str.replace(r"\s", "", regex=True)


def naive_attribute(url: str, path: Path) -> dict[str, Any]:
    """The naive peer: pandas normalise + merge, then COUNT per app over ``naive_deliveries``."""
    import pandas as pd

    engine = create_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        customers = pd.read_sql(text("SELECT id, name, phone FROM customers"), conn)
    customers["name_key"] = _name_key(customers["name"])
    customers["phone_key"] = _phone_key(customers["phone"])
    t_load = time.perf_counter() - t0
    dump = pd.read_csv(path, encoding="cp932", dtype=str, keep_default_na=False)
    dump["row"] = np.arange(len(dump))
    dump["name_key"] = _name_key(dump["氏名"])
    dump["phone_key"] = _phone_key(dump["電話番号"])
    by_both = dump[dump["phone_key"] != ""].merge(
        customers[customers["phone_key"] != ""], on=["name_key", "phone_key"]
    )
    name_only = dump[dump["phone_key"] == ""].merge(customers, on="name_key")
    name_only = name_only[name_only.groupby("row")["id"].transform("size") == 1]
    ids = np.zeros(len(dump), dtype=np.int64)
    ids[by_both["row"].to_numpy()] = by_both["id"].to_numpy()
    ids[name_only["row"].to_numpy()] = name_only["id"].to_numpy()
    with_phone = set(by_both["id"].tolist())
    matched = pd.DataFrame(
        {"customer_id": ids[ids != 0], "has_phone": [int(i in with_phone) for i in ids[ids != 0].tolist()]}
    )
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS naive_matched"))
        matched.to_sql("naive_matched", conn, index=False)
        # Per app: matched people who received every field their row holds, raw.
        counts = conn.execute(
            text(
                "SELECT app_id, COUNT(*) FROM (SELECT d.app_id, d.customer_id FROM naive_deliveries d "
                "JOIN naive_matched m ON m.customer_id = d.customer_id WHERE d.mode = 'raw' "
                "AND (d.field = 'name' OR (d.field = 'phone' AND m.has_phone = 1)) "
                "GROUP BY d.app_id, d.customer_id, m.has_phone "
                "HAVING COUNT(DISTINCT d.field) = 1 + m.has_phone) x "
                "GROUP BY app_id ORDER BY 2 DESC"
            )
        ).all()
        slugs: dict[int, str] = {a: s for a, s in conn.execute(text("SELECT id, slug FROM apps")).all()}
    elapsed = time.perf_counter() - t0
    engine.dispose()
    top = [(slugs[a], n / max(1, len(matched))) for a, n in counts[:3]]
    return {"elapsed": elapsed, "customer_load": t_load, "ids": ids, "apps": top}


def measured_attribute(url: str, path: Path) -> dict[str, Any]:
    """The measured path: ``attribute_dump`` on a fresh Database."""
    from appwarden.attribution.service import attribute_dump
    from appwarden.db.session import Database

    db = Database(url)
    t0 = time.perf_counter()
    result = attribute_dump(db, path)
    elapsed = time.perf_counter() - t0
    verdict = result.to_dict()
    db.dispose()
    return {
        "elapsed": elapsed,
        "ids": np.asarray(result.row_customer_ids, dtype=np.int64),
        "verdict": verdict,
    }


def peak_rss_kb() -> int:
    """This process's peak resident set (``VmHWM``, KiB).

    Not ``ru_maxrss``: Linux carries the parent's high-water mark across the spawn's ``exec``, so a child
    of this (large) bench process would report the parent's figure.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best available


def _child(kind: str, url: str, path: str, queue: Any) -> None:
    before = peak_rss_kb()
    fn = measured_attribute if kind == "measured" else naive_attribute
    try:
        out = fn(url, Path(path))
    except Exception as exc:  # reported by the parent: the bench must say what failed, not hang
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
    out["rss_before_kb"] = before
    out["rss_peak_kb"] = peak_rss_kb()
    queue.put(out)


def in_child(kind: str, url: str, path: Path) -> dict[str, Any]:
    """Run one peer in a fresh ``spawn`` interpreter (its own peak RSS); its result dict."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, url, str(path), queue))
    proc.start()
    out: dict[str, Any] = queue.get()
    proc.join()
    if "error" in out:
        raise SystemExit(f"{kind} run failed: {out['error']}")
    return out


def scores(ids: np.ndarray[Any, Any], dump: Dump) -> dict[str, float]:
    """Precision, recall, recall over identifiable rows, and false matches of invented people."""
    matched = ids != 0
    correct = matched & (ids == dump.truth)
    real = dump.truth != 0
    return {
        "matched": int(matched.sum()),
        "precision": correct.sum() / max(1, matched.sum()),
        "recall": correct.sum() / max(1, real.sum()),
        "recall_ident": (correct & dump.identifiable).sum() / max(1, dump.identifiable.sum()),
        "wrong": int((matched & ~correct & real).sum()),
        "invented_matched": int((matched & ~real).sum()),
    }


# ------------------------------------------------------------------------------------------------ run


def _stamp(url: str, key: str | None = None) -> str | None:
    """Write (``key`` given) or read the world's key in the database itself: a scratch PostgreSQL
    database is shared by every workdir, so the workdir alone cannot say what the database holds."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if key is not None:
                conn.execute(text("CREATE TABLE IF NOT EXISTS bench_world (key TEXT)"))
                conn.execute(text("DELETE FROM bench_world"))
                conn.execute(text("INSERT INTO bench_world VALUES (:k)"), {"k": key})
                return key
            return conn.execute(text("SELECT key FROM bench_world")).scalar()
    except Exception:  # no such table (or database): not our world
        return None
    finally:
        engine.dispose()


def build(
    args: argparse.Namespace, url: str, work: Path, say: Callable[[str], None]
) -> tuple[Dump, dict[str, Any]]:
    """Build the world and the dump in ``work`` (or reuse them when ``meta.json`` says they match)."""
    key = {"customers": args.customers, "url": url, "seed": args.seed, "world": WORLD_VERSION}
    meta_path, truth_path, dump_path = work / "meta.json", work / "truth.npz", work / "leak.csv"
    if meta_path.exists() and truth_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key and _stamp(url) == json.dumps(key):
            say(f"reusing the world in {work}")
            z = np.load(truth_path)
            return Dump(z["truth"], z["identifiable"], int(z["typos"]), int(z["with_phone"])), meta
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work / 'bench.db'}{suffix}").unlink(missing_ok=True)
    else:
        reset_postgres(url)
    t = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    cust = make_customers(args.customers, rng)
    deliveries, people = plan_deliveries(cust, rng)
    say(
        f"generated {args.customers:,} customers and {len(deliveries):,} deliveries: "
        f"{time.perf_counter() - t:.0f} s"
    )
    timings = load_world(url, cust, deliveries, say)
    t = time.perf_counter()
    dump = write_dump(dump_path, cust, people, rng)
    say(
        f"dump written ({len(dump.truth):,} rows, {dump_path.stat().st_size / 1e6:.1f} MB): "
        f"{time.perf_counter() - t:.0f} s"
    )
    np.savez(
        truth_path,
        truth=dump.truth,
        identifiable=dump.identifiable,
        typos=dump.typos,
        with_phone=dump.with_phone,
    )
    meta = {"key": key, "timings": timings}
    _stamp(url, json.dumps(key))
    meta_path.write_text(json.dumps(meta))
    return dump, meta


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 customers (a 13,600-row dump)")
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL of a scratch database (default SQLite)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the world here and reuse it")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs (median time, max memory)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.customers = 100_000
    console = Console(width=150)

    def say(msg: str) -> None:
        console.print(f"  {msg}", style="dim")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-attribution-"))
    work.mkdir(parents=True, exist_ok=True)
    # Same key and data dir for this process and the spawned children (the blind index is keyed).
    os.environ["APPWARDEN_SECRET_KEY"] = SECRET
    os.environ["APPWARDEN_DATA_DIR"] = str(work / "data")
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    dump, meta = build(args, url, work, say)
    path = work / "leak.csv"

    runs = [in_child("measured", url, path) for _ in range(args.repeat)]
    naive = in_child("naive", url, path)
    ours, theirs = scores(runs[-1]["ids"], dump), scores(naive["ids"], dump)
    verdict = runs[-1]["verdict"]
    t_ours = statistics.median(r["elapsed"] for r in runs)
    peak = max(r["rss_peak_kb"] for r in runs) / 1024
    base = min(r["rss_before_kb"] for r in runs) / 1024

    real = int((dump.truth != 0).sum())
    console.print(
        f"dump: {len(dump.truth):,} rows ({real:,} platform people, {len(dump.truth) - real:,} invented), "
        f"{dump.with_phone:,} with a phone, {dump.typos:,} with a typo, "
        f"{int(dump.identifiable.sum()):,} identifiable (a correct phone or a unique name); "
        f"set-up: blind index rebuild {meta['timings']['blind_index']:.1f} s "
        f"({meta['timings']['blind_entries']:,.0f} entries), "
        f"naive_deliveries {meta['timings']['naive_rows']:,.0f} rows"
    )
    table = Table(
        "path",
        "wall time",
        "peak RSS (before call)",
        "matched rows",
        "precision",
        "recall",
        "recall (identifiable)",
        "wrong / invented matched",
        "verdict",
        title=f"attribution, {backend}, {args.customers:,} customers x {OTHER_APPS + 2} apps "
        "(same dump, same database)",
    )
    apps = verdict.get("verdict", {}).get("apps", [])
    each = ", ".join(f"{r['elapsed']:.2f}" for r in runs)
    table.add_row(
        "attribute_dump",
        f"{t_ours:.2f} s (runs {each})",
        f"{peak:,.0f} MB ({base:,.0f} MB)",
        f"{ours['matched']:,}",
        f"{ours['precision']:.4f}",
        f"{ours['recall']:.4f}",
        f"{ours['recall_ident']:.4f}",
        f"{ours['wrong']:,} / {ours['invented_matched']:,}",
        f"{verdict.get('verdict', {}).get('source')}: {', '.join(apps)}",
    )
    table.add_row(
        "naive (pandas + SQL)",
        f"{naive['elapsed']:.2f} s (customers {naive['customer_load']:.2f})",
        f"{naive['rss_peak_kb'] / 1024:,.0f} MB ({naive['rss_before_kb'] / 1024:,.0f} MB)",
        f"{theirs['matched']:,}",
        f"{theirs['precision']:.4f}",
        f"{theirs['recall']:.4f}",
        f"{theirs['recall_ident']:.4f}",
        f"{theirs['wrong']:,} / {theirs['invented_matched']:,}",
        ", ".join(f"{a} {c:.3f}" for a, c in naive["apps"]),
    )
    console.print(table)
    console.print(
        f"naive / attribute_dump: {naive['elapsed'] / t_ours:.1f}x wall "
        f"({(naive['elapsed'] - naive['customer_load']) / t_ours:.1f}x without the naive customer load)"
    )
    snapshot = verdict.get("snapshot")
    console.print(
        f"snapshot reported: {json.dumps(snapshot, ensure_ascii=False)[:400]}\n"
        f"snapshot expected: after {SNAPSHOT_AFTER.isoformat()} (last pre-copy delivery), "
        f"before {SNAPSHOT_BEFORE.isoformat()} (first delivery of people not in the dump)"
    )
    goals = {
        "time <= 5 s": t_ours <= 5,
        "recall >= 0.99": ours["recall"] >= 0.99,
        "recall (identifiable) >= 0.99": ours["recall_ident"] >= 0.99,
        "precision >= 0.999": ours["precision"] >= 0.999,
        f"verdict names {TARGET}": TARGET in apps,
    }
    console.print(
        "goals: "
        + ", ".join(
            f"{g} [{'green' if ok else 'red'}]{'met' if ok else 'NOT met'}[/]" for g, ok in goals.items()
        )
    )
    load1, load5, load15 = os.getloadavg()
    console.print(
        f"load average {load1:.2f} {load5:.2f} {load15:.2f} on {os.cpu_count()} CPUs; world in {work}"
    )


if __name__ == "__main__":
    main()
