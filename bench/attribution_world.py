"""The attribution bench's world: customers, apps and their ledger deliveries, and the noisy leaked dump.

Used by ``bench/attribution.py`` (see its docstring for the shape of the data). Everything is drawn from
one seeded numpy generator, so a world is reproducible from (customers, seed).
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text

COMPANIES, STORES_PER, OTHER_APPS = 40, 5, 98
TARGET, DECOY = "invoice-plus", "loyalty-stamp"
TARGET_COMPANIES, DECOY_EXTRA_COMPANIES = 8, 4
DUMP_SHARE, INVENTED, TYPOS, LATE = 0.136, 0.02, 0.01, 0.04
SNAPSHOT_AFTER = datetime(2025, 12, 8, 3, 0, tzinfo=UTC)  # last pre-snapshot delivery of invoice-plus
SNAPSHOT_BEFORE = datetime(2025, 12, 12, 9, 0, tzinfo=UTC)  # first post-snapshot delivery (new people)
FIELDS_ALL = ("name", "name_kana", "phone", "email", "birthday")
HEADERS = ("顧客ID", "氏名", "電話番号")
_FW = str.maketrans("0123456789-", "０１２３４５６７８９－")


@dataclass
class Delivery:
    """One ledger entry: app (slug) received ``fields`` ({field: mode}) of ``ids`` in company ``company``."""

    app: str
    company: int  # company index
    fields: dict[str, str]
    ids: np.ndarray[Any, Any]  # customer ids (uint32)
    at: datetime


# ---------------------------------------------------------------------------------------------- world


def make_customers(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """The demo generator's customer columns for ``n`` members of COMPANIES companies."""
    from faker.providers.address.ja_JP import Provider as AddressProvider

    from appwarden.demo.generator import _customers, allocate

    sizes = allocate(n, rng.lognormal(0.0, 0.55, COMPANIES))
    store_company = np.repeat(np.arange(COMPANIES), STORES_PER)
    prefectures = np.array(AddressProvider.prefectures, dtype=object)
    pref = rng.integers(len(prefectures), size=COMPANIES)
    return _customers(rng, sizes, None, store_company, pref, prefectures)


def plan_deliveries(
    cust: dict[str, Any], rng: np.random.Generator
) -> tuple[list[Delivery], np.ndarray[Any, Any]]:
    """Every app's ledger entries, and invoice-plus's people in the dump (pre-snapshot), as customer ids."""
    company = cust["company"]
    ids_of = [np.flatnonzero(company == c).astype(np.uint32) + 1 for c in range(COMPANIES)]
    n = len(company)
    out: list[Delivery] = []

    # invoice-plus: the largest companies until their people cover what it must have received.
    wanted = round(n * DUMP_SHARE * (1 - INVENTED))
    late = round(wanted * LATE)
    by_size = np.argsort([-len(i) for i in ids_of], kind="stable")
    targets = by_size[:TARGET_COMPANIES]
    pool = np.concatenate([ids_of[c] for c in targets])
    if len(pool) < wanted + late:
        raise SystemExit("world too small for the dump: raise --customers")
    chosen = rng.permutation(pool)[: wanted + late]
    dumped, after = np.sort(chosen[:wanted]), np.sort(chosen[wanted:])
    start = datetime(2025, 12, 1, 4, 10, tzinfo=UTC)
    for k, c in enumerate(targets.tolist()):
        mine = dumped[company[dumped - 1] == c]
        half = len(mine) // 2
        for part, ids in enumerate((mine[:half], mine[half:])):
            at = (
                start + timedelta(days=3.5 * part, hours=k)
                if part == 0
                else SNAPSHOT_AFTER - timedelta(hours=k)
            )
            out.append(Delivery(TARGET, c, {"name": "raw", "phone": "raw"}, ids, at))
        extra = after[company[after - 1] == c]
        out.append(
            Delivery(TARGET, c, {"name": "raw", "phone": "raw"}, extra, SNAPSHOT_BEFORE + timedelta(hours=k))
        )

    # loyalty-stamp: the same companies and a few more; names raw but phones only masked.
    decoy = list(targets.tolist()) + [
        int(c) for c in by_size[TARGET_COMPANIES : TARGET_COMPANIES + DECOY_EXTRA_COMPANIES]
    ]
    for c in decoy:
        ids = np.sort(rng.permutation(ids_of[c])[: len(ids_of[c]) // 2])
        fields = {"name": "raw", "phone": "masked", "email": "token"}
        for chunk in np.array_split(ids, 3):
            out.append(Delivery(DECOY, c, fields, chunk, datetime(2025, 10, 1, tzinfo=UTC) + _days(rng, 70)))

    modes = np.array(["raw", "raw", "masked", "token"])
    for a in range(OTHER_APPS):
        slug = f"app-{a:03d}"
        picked = rng.choice(len(FIELDS_ALL), size=int(rng.integers(1, 5)), replace=False)
        fields = {FIELDS_ALL[f]: str(modes[rng.integers(len(modes))]) for f in sorted(picked.tolist())}
        for c in rng.choice(COMPANIES, size=int(rng.integers(1, 5)), replace=False).tolist():
            share = rng.uniform(0.1, 0.6)
            ids = np.sort(rng.permutation(ids_of[c])[: int(len(ids_of[c]) * share)])
            for chunk in np.array_split(ids, 2):
                out.append(
                    Delivery(slug, c, fields, chunk, datetime(2025, 10, 1, tzinfo=UTC) + _days(rng, 80))
                )
    # The ledger appends in time order (``recorded_at`` grows with ``seq``), as it does in service.
    out.sort(key=lambda d: d.at)
    return out, dumped


def _days(rng: np.random.Generator, span: int) -> timedelta:
    return timedelta(seconds=int(rng.integers(0, span * 86400)))


# ----------------------------------------------------------------------------------------------- dump


def _variants() -> dict[str, str]:
    """Everyday kanji -> a variant form that CP932 can encode (髙, 﨑 …), for the noise."""
    from appwarden.blind_index.normalize import VARIANT_KANJI

    inverse: dict[str, str] = {}
    for variant, plain in VARIANT_KANJI.items():
        try:
            variant.encode("cp932")
        except UnicodeEncodeError:
            continue
        inverse.setdefault(plain, variant)
    return inverse


def noisy_name(name: str, rng: np.random.Generator, variants: dict[str, str]) -> str:
    """A stored ``"姓 名"`` as a dump would write it."""
    family, given = name.split(" ", 1)
    if rng.random() < 0.5:
        family = "".join(variants.get(ch, ch) for ch in family)
        given = "".join(variants.get(ch, ch) for ch in given)
    if rng.random() < 0.15:
        # Given name first (form-swapped exports): always with a separator, since without one the
        # order cannot be undone by anyone without guessing where the family name ends.
        return given + (" ", "\u3000")[int(rng.integers(2))] + family
    sep = (" ", "\u3000", "", " ")[int(rng.integers(4))]
    return f"{family}{sep}{given}"


def noisy_phone(phone: str, k: int) -> str:
    """A stored ``"090-1234-5678"`` in the ``k``-th of the written forms."""
    a, b, c = phone.split("-")
    national = a[1:] + b + c
    forms = (
        phone,
        a + b + c,
        f"+81 {a[1:]}-{b}-{c}",
        f"+81{national}",
        f"{a} {b} {c}",
        phone.translate(_FW),
        f"{a}\u2212{b}\u2212{c}",
        f"+81(0){a[1:]}-{b}-{c}",
    )
    return forms[k % len(forms)]


def typo(value: str, rng: np.random.Generator, alphabet: str, *, keep: int = 0) -> str:
    """``value`` with one character (not a separator, not among the first ``keep``) replaced by a
    different one from ``alphabet``."""
    positions = [i for i, ch in enumerate(value) if ch not in " -" and i >= keep]
    i = positions[int(rng.integers(len(positions)))]
    while (ch := alphabet[int(rng.integers(len(alphabet)))]) == value[i]:
        pass
    return value[:i] + ch + value[i + 1 :]


@dataclass
class Dump:
    """Row-aligned ground truth of the written dump."""

    truth: np.ndarray[Any, Any]  # customer id per row, 0 for invented people
    identifiable: np.ndarray[Any, Any]  # row's values single out its person (a correct phone or unique name)
    typos: int
    with_phone: int


def write_dump(
    path: Path, cust: dict[str, Any], people: np.ndarray[Any, Any], rng: np.random.Generator
) -> Dump:
    """Write the noisy CP932 CSV and return its ground truth."""
    from faker.providers.person.ja_JP import Provider as PersonProvider

    names, phones = cust["name"], cust["phone"]
    taken = {p.replace("-", "") for p in phones if p is not None}
    invented = round(len(people) * INVENTED / (1 - INVENTED))
    truth = np.concatenate([people.astype(np.int64), np.zeros(invented, dtype=np.int64)])
    truth = truth[rng.permutation(len(truth))]
    # Kanji spellings of Faker's (kanji, kana, romaji) name triples.
    families = [p[0] for p in PersonProvider.last_name_pairs]
    givens = [p[0] for p in (*PersonProvider.first_name_female_pairs, *PersonProvider.first_name_male_pairs)]
    alphabet = "".join(sorted(set("".join(families + givens))))
    variants = _variants()
    holders = Counter(names)  # a name only one customer has identifies that customer on its own
    identifiable = np.zeros(len(truth), dtype=bool)
    typos = with_phone = 0
    with path.open("w", encoding="cp932", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        for row, cid in enumerate(truth.tolist()):
            if cid:
                name, phone = names[cid - 1], phones[cid - 1]
            else:  # an invented person: a plausible name, a phone no customer has (85% have one)
                name = (
                    f"{families[int(rng.integers(len(families)))]} {givens[int(rng.integers(len(givens)))]}"
                )
                phone = _free_phone(rng, taken) if rng.random() < 0.85 else None
            typo_field = None
            if cid and rng.random() < TYPOS:
                typo_field = "phone" if phone is not None and rng.random() < 0.5 else "name"
                typos += 1
            if typo_field == "name":
                name = typo(name, rng, alphabet)
            if typo_field == "phone" and phone is not None:
                # Not the trunk 0: the "+81" forms drop it, which would erase the typo.
                while (bad := typo(phone, rng, "0123456789", keep=1)).replace("-", "") in taken:
                    pass
                phone = bad
            identifiable[row] = bool(cid) and (
                (phone is not None and typo_field != "phone") or (typo_field != "name" and holders[name] == 1)
            )
            with_phone += phone is not None
            written_phone = "" if phone is None else noisy_phone(phone, int(rng.integers(8)))
            out.writerow((f"IP{row + 1:07d}", noisy_name(name, rng, variants), written_phone))
    return Dump(truth, identifiable, typos, with_phone)


def _free_phone(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        v = int(rng.integers(300_000_000))
        digits = f"{('070', '080', '090')[v // 100_000_000]}{(v // 10_000) % 10_000:04d}{v % 10_000:04d}"
        if digits not in taken:
            taken.add(digits)
            return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"


# ------------------------------------------------------------------------------------------- database

CUSTOMER_COLS = (
    "id, public_id, company_id, home_store_id, name, name_kana, phone, email, address, birthday, gender, "
    "points, rank, is_canary, updated_at"
)
NAIVE_DDL = (
    "CREATE TABLE naive_deliveries (app_id INTEGER NOT NULL, company_id INTEGER NOT NULL, "
    "customer_id INTEGER NOT NULL, field VARCHAR(30) NOT NULL, mode VARCHAR(10) NOT NULL)"
)


def reset_postgres(url: str) -> None:
    """Empty the scratch database (its public schema) so migrations start from nothing."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _customer_rows(
    cust: dict[str, Any], company_ids: list[int], store_ids: list[int]
) -> Iterator[tuple[Any, ...]]:
    now = datetime(2025, 9, 1, tzinfo=UTC)
    company, store = cust["company"].tolist(), cust["store"].tolist()
    points, rank = cust["points"].tolist(), cust["rank"].tolist()
    for i in range(len(company)):
        yield (
            i + 1,
            f"cus_{i + 1:012d}",
            company_ids[company[i]],
            store_ids[store[i]],
            cust["name"][i],
            cust["name_kana"][i],
            cust["phone"][i],
            cust["email"][i],
            cust["address"][i],
            cust["birthday"][i],
            cust["gender"][i],
            points[i],
            rank[i],
            False,
            now,
        )


def _bulk(db: Any, table: str, cols: str, rows: Iterator[tuple[Any, ...]], width: int) -> None:
    """Driver-level bulk insert: executemany on SQLite, COPY on PostgreSQL."""
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.is_sqlite:
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({','.join('?' * width)})", rows)
        else:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def load_world(
    url: str, cust: dict[str, Any], deliveries: list[Delivery], say: Callable[[str], None]
) -> dict[str, float]:
    """Schema, companies, stores, apps, customers, ledger entries, the naive table and the blind index."""
    from appwarden.blind_index.service import rebuild_blind_index
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import Database
    from appwarden.ledger.service import record_delivery
    from appwarden.ledger.vocabulary import EntryKind
    from appwarden.marketplace import service as marketplace
    from appwarden.platform import service as platform
    from appwarden.platform.store_members import rebuild_store_members

    timings: dict[str, float] = {}
    t = time.perf_counter()
    upgrade(url)
    db = Database(url)
    scopes: dict[str, set[str]] = {}
    for d in deliveries:
        scopes.setdefault(d.app, set()).update(f"customers.{f}:{m}" for f, m in d.fields.items())
    with db.session() as session:
        companies = [
            platform.create_company(session, f"Company {c:02d}", f"co{c}@example.jp")
            for c in range(COMPANIES)
        ]
        stores = [
            platform.create_store(session, companies[c], f"Store {c}-{s}", f"st{c}-{s}@example.jp")
            for c in range(COMPANIES)
            for s in range(STORES_PER)
        ]
        apps = {
            slug: marketplace.register_app(
                session,
                slug=slug,
                name=slug.replace("-", " ").title(),
                redirect_uris=[f"https://{slug}.example/cb"],
                scopes=sorted(wanted),
            ).app
            for slug, wanted in scopes.items()
        }
        session.flush()
        company_ids, store_ids = [c.id for c in companies], [s.id for s in stores]
        app_ids = {slug: app.id for slug, app in apps.items()}
    _bulk(db, "customers", CUSTOMER_COLS, _customer_rows(cust, company_ids, store_ids), 15)
    if not db.is_sqlite:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('customers', 'id'), "
                    "(SELECT MAX(id) FROM customers))"
                )
            )
    rebuild_store_members(db)
    timings["customers"] = time.perf_counter() - t
    say(f"customers, companies, apps: {timings['customers']:.0f} s")

    t = time.perf_counter()
    present = {f: np.array([v is not None for v in cust[f]]) for f in FIELDS_ALL}
    naive: list[tuple[int, int, np.ndarray[Any, Any], str, str]] = []
    for k, d in enumerate(deliveries):
        per_field = {(f, m): d.ids[present[f][d.ids - 1]] for f, m in d.fields.items()}
        record_delivery(
            db,
            request_id=f"bench-{k}",
            app_id=app_ids[d.app],
            company_id=company_ids[d.company],
            connection_id=None,
            endpoint="/v1/customers",
            kind=EntryKind.DELIVERY,
            deliveries=per_field,
            now=d.at,
        )
        naive.extend((app_ids[d.app], company_ids[d.company], ids, f, m) for (f, m), ids in per_field.items())
    timings["ledger"] = time.perf_counter() - t
    say(f"{len(deliveries):,} ledger entries: {timings['ledger']:.0f} s")

    t = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(text(NAIVE_DDL))
    rows = ((a, c, i, f, m) for a, c, ids, f, m in naive for i in ids.tolist())
    _bulk(db, "naive_deliveries", "app_id, company_id, customer_id, field, mode", rows, 5)
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        timings["naive_rows"] = conn.execute(text("SELECT COUNT(*) FROM naive_deliveries")).scalar_one()
    timings["naive_table"] = time.perf_counter() - t
    say(f"naive_deliveries ({timings['naive_rows']:,.0f} rows): {timings['naive_table']:.0f} s")

    t = time.perf_counter()
    timings["blind_entries"] = rebuild_blind_index(db)
    timings["blind_index"] = time.perf_counter() - t
    say(f"blind index rebuild ({timings['blind_entries']:,.0f} entries): {timings['blind_index']:.1f} s")
    db.dispose()
    return timings
