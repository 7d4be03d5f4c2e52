"""The synthetic platform: companies, stores, customers, transactions and products, generated with numpy.

Faker ja_JP supplies the vocabulary once (family and given names with kana and romaji, prefectures,
cities, towns, buildings); numpy draws every per-person choice as index arrays, so 170,000 customers
take a few seconds. The platform's bulk loader (``platform.bulk``) writes them, as columns linked by
position, in large executemany batches, and rebuilds the derived indexes in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from faker import Faker
from faker.providers.address.ja_JP import Provider as AddressProvider
from faker.providers.person.ja_JP import Provider as PersonProvider

from appwarden.db.base import public_id
from appwarden.db.session import Database
from appwarden.demo.catalog import Plan
from appwarden.platform import bulk
from appwarden.platform.bulk import CustomerColumns, NewCompany, NewProduct, NewStore, TransactionColumns
from appwarden.platform.customer_changes import Progress

# Shares of members who gave each optional field (phones and emails are the ones the incident is about).
SHARE = {"phone": 0.85, "email": 0.62, "address": 0.7, "birthday": 0.8, "gender": 0.92}
RANKS = np.array(["regular", "silver", "gold", "platinum"], dtype=object)
RANK_P = [0.62, 0.24, 0.11, 0.03]
EMAIL_DOMAINS = np.array(
    ["gmail.com", "yahoo.co.jp", "icloud.com", "docomo.ne.jp", "ezweb.ne.jp", "softbank.ne.jp", "outlook.jp"],
    dtype=object,
)
EMAIL_P = [0.38, 0.2, 0.16, 0.1, 0.07, 0.05, 0.04]
TRANSACTIONS_PER_CUSTOMER = 0.6
NON_MEMBER_SALES = 0.2
TODAY = date(2026, 1, 5)
# A small shop catalogue (name, base price in yen); each company sells some of it, at its own prices.
PRODUCTS: tuple[tuple[str, int], ...] = (
    ("ブレンドコーヒー", 450), ("カフェラテ", 520), ("抹茶ラテ", 560), ("クロワッサン", 280),
    ("チーズケーキ", 480), ("サンドイッチ", 580), ("オレンジジュース", 380), ("季節のタルト", 620),
    ("焼き菓子セット", 1500), ("ドリップバッグ 5袋", 900), ("オリジナルマグ", 1800), ("ギフトカード", 3000),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Built:
    """What the generator wrote: ids by position, so the traffic driver and the summary can use them."""

    company_ids: list[int]
    company_public_ids: list[str]
    company_names: list[str]
    store_company: np.ndarray  # store index -> company index
    customers: int
    transactions: int


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` that sum to exactly ``total``
    (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    raw = total * w / w.sum()
    parts = np.floor(raw).astype(np.int64)
    short = total - int(parts.sum())
    if short:
        parts[np.argsort(-(raw - parts), kind="stable")[:short]] += 1
    return parts


def company_sizes(plan: Plan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Customers per company, and (for an exact plan) phones per exact company, summing exactly."""
    weights = rng.lognormal(mean=0.0, sigma=0.55, size=plan.companies)
    if plan.exact_customers is None:
        return np.maximum(allocate(plan.customers, weights), 0), None
    k = plan.exact_companies
    head = allocate(plan.exact_customers, weights[:k])
    if (head < 1).any():
        raise ValueError("every exact company needs at least one customer")
    tail = allocate(plan.customers - plan.exact_customers, weights[k:])
    # Phones proportional to size: each part is at most its company's size, and they sum exactly.
    phones = allocate(plan.exact_phones or 0, head.astype(float))
    return np.concatenate([head, tail]), phones


def build_platform(db: Database, plan: Plan, *, indexing: Progress | None = None) -> Built:
    """Generate the whole platform and load it in one transaction (all or nothing) through
    ``platform.bulk``, derived indexes (store bitmaps, blind index) included; ``indexing(done, total)``
    follows the blind-index rebuild."""
    rng = np.random.default_rng(plan.seed)
    fake = Faker("ja_JP")
    fake.seed_instance(plan.seed)
    if plan.stores < plan.companies:
        raise ValueError("need at least one store per company")
    sizes, exact_phones = company_sizes(plan, rng)
    stores_per = 1 + allocate(plan.stores - plan.companies, sizes.astype(float) + 1.0)
    store_company = np.repeat(np.arange(plan.companies), stores_per)
    prefectures = np.array(AddressProvider.prefectures, dtype=object)
    company_pref = rng.integers(len(prefectures), size=plan.companies)

    companies = _companies(fake, plan.companies)
    stores = _stores(fake, companies, stores_per)
    cust = _customers(rng, sizes, exact_phones, store_company, company_pref, prefectures)
    sales = _transactions(rng, cust)
    products = _products(plan.seed, len(companies), store_company)
    with db.session() as session:
        loaded = bulk.load(
            session,
            companies=companies,
            stores=stores,
            customers=_customer_columns(cust),
            transactions=sales,
            products=products,
            progress=indexing,
        )
    return Built(
        company_ids=loaded.company_ids,
        company_public_ids=[c.public_id for c in companies],
        company_names=[c.name for c in companies],
        store_company=store_company,
        customers=loaded.customers,
        transactions=loaded.transactions,
    )


def _companies(fake: Faker, count: int) -> list[NewCompany]:
    names: list[str] = []
    for _ in range(count):
        names.append(fake.unique.company())
    return [
        NewCompany(
            public_id=public_id("co"),
            name=name,
            email=f"info@{fake.unique.domain_word()}.co.jp" if i % 7 else None,
        )
        for i, name in enumerate(names)
    ]


def _stores(fake: Faker, companies: list[NewCompany], stores_per: np.ndarray) -> list[NewStore]:
    stores: list[NewStore] = []
    for c, company in enumerate(companies):
        brand = company.name.replace("株式会社", "").replace("有限会社", "").replace("合同会社", "").strip()
        for s in range(int(stores_per[c])):
            town = fake.unique.city()
            # About one store in seven gave no email: they cannot be mailed a notice.
            email = (
                None if fake.random.random() < 0.15 else f"store{s + 1}@{company.public_id[3:11].lower()}.jp"
            )
            stores.append(NewStore(company=c, name=f"{brand} {town}店", email=email))
    return stores


def _products(seed: int, companies: int, store_company: np.ndarray) -> list[NewProduct]:
    """Each company's catalogue: 6 to 10 items sold at all its stores, and one item only its first store
    sells. A generator of its own, so adding products moved none of the people or sales drawn before."""
    rng = np.random.default_rng([seed, 6])
    rows: list[NewProduct] = []
    for c in range(companies):
        picks = rng.choice(len(PRODUCTS), size=int(rng.integers(6, 11)), replace=False)
        factors = rng.uniform(0.9, 1.1, size=picks.size)
        for pick, factor in zip(picks.tolist(), factors.tolist(), strict=True):
            name, base = PRODUCTS[pick]
            price = int(round(base * factor, -1))
            rows.append(NewProduct(company=c, store=None, name=name, price=price))
        first_store = int(np.flatnonzero(store_company == c)[0])
        rows.append(NewProduct(company=c, store=first_store, name="店舗限定ブレンド", price=520))
    return rows


def _customers(
    rng: np.random.Generator,
    sizes: np.ndarray,
    exact_phones: np.ndarray | None,
    store_company: np.ndarray,
    company_pref: np.ndarray,
    prefectures: np.ndarray,
) -> dict[str, Any]:
    """Every customer column as an array; rows are shuffled across companies, as members join over time."""
    n = int(sizes.sum())
    company = np.repeat(np.arange(len(sizes)), sizes)
    has_phone = rng.random(n) < SHARE["phone"]
    if exact_phones is not None:
        # The exact companies get exactly their number of phones, on randomly chosen members.
        start = 0
        for c, count in enumerate(exact_phones):
            size = int(sizes[c])
            mask = np.zeros(size, dtype=bool)
            mask[rng.permutation(size)[: int(count)]] = True
            has_phone[start : start + size] = mask
            start += size
    order = rng.permutation(n)
    company, has_phone = company[order], has_phone[order]

    # Home store: one of the company's stores, the first ones busier.
    store = np.empty(n, dtype=np.int64)
    for c in range(len(sizes)):
        idx = np.flatnonzero(company == c)
        own = np.flatnonzero(store_company == c)
        w = 1.0 / np.arange(1, len(own) + 1) ** 0.6
        store[idx] = own[rng.choice(len(own), size=len(idx), p=w / w.sum())]

    # Family names come weighted by how common they are in Japan (佐藤 and 鈴木 lead).
    last = list(PersonProvider.last_name_pairs.keys())
    last_w = np.array(list(PersonProvider.last_name_pairs.values()), dtype=float)
    female, male = PersonProvider.first_name_female_pairs, PersonProvider.first_name_male_pairs
    is_female = rng.random(n) < 0.55
    li = rng.choice(len(last), size=n, p=last_w / last_w.sum())
    fi = np.where(is_female, rng.integers(len(female), size=n), rng.integers(len(male), size=n))
    first = [female[i] if f else male[i] for i, f in zip(fi.tolist(), is_female.tolist(), strict=True)]
    fam = [last[i] for i in li.tolist()]
    name = [f"{a[0]} {b[0]}" for a, b in zip(fam, first, strict=True)]
    kana = [f"{a[1]} {b[1]}" for a, b in zip(fam, first, strict=True)]

    # Phones: distinct numbers drawn from 070/080/090 × 10^8.
    numbers = rng.choice(300_000_000, size=n, replace=False)
    heads = ("070", "080", "090")
    phone = [
        f"{heads[v // 100_000_000]}-{(v // 10_000) % 10_000:04d}-{v % 10_000:04d}" if ok else None
        for v, ok in zip(numbers.tolist(), has_phone.tolist(), strict=True)
    ]
    # Emails: romaji of the name, a per-person number (distinct), a common Japanese mail domain.
    has_email = rng.random(n) < SHARE["email"]
    tag = rng.permutation(n) + 1
    dom = EMAIL_DOMAINS[rng.choice(len(EMAIL_DOMAINS), size=n, p=EMAIL_P)]
    email = [
        f"{b[2].lower()}.{a[2].lower()}{t}@{d}" if ok else None
        for a, b, t, d, ok in zip(fam, first, tag.tolist(), dom.tolist(), has_email.tolist(), strict=True)
    ]
    # Addresses: most members live in their company's prefecture.
    local = rng.random(n) < 0.85
    pref = np.where(local, company_pref[company], rng.integers(len(prefectures), size=n))
    cities = np.array(AddressProvider.cities, dtype=object)
    towns = np.array(AddressProvider.towns, dtype=object)
    ci, ti = rng.integers(len(cities), size=n), rng.integers(len(towns), size=n)
    chome, ban, gou = rng.integers(1, 10, size=n), rng.integers(1, 31, size=n), rng.integers(1, 21, size=n)
    has_address = rng.random(n) < SHARE["address"]
    address = [
        f"{prefectures[p]}{cities[c]}{towns[t]}{a}丁目{b}番{g}号" if ok else None
        for p, c, t, a, b, g, ok in zip(
            pref.tolist(),
            ci.tolist(),
            ti.tolist(),
            chome.tolist(),
            ban.tolist(),
            gou.tolist(),
            has_address.tolist(),
            strict=True,
        )
    ]
    age_days = rng.integers(18 * 365, 85 * 365, size=n)
    born = (np.datetime64(TODAY) - age_days.astype("timedelta64[D]")).astype(object)
    has_birthday = rng.random(n) < SHARE["birthday"]
    birthday = [b if ok else None for b, ok in zip(born.tolist(), has_birthday.tolist(), strict=True)]
    has_gender = rng.random(n) < SHARE["gender"]
    gender = [
        ("female" if f else "male") if ok else None for f, ok in zip(is_female, has_gender, strict=True)
    ]
    points = np.minimum(rng.geometric(1 / 800, size=n), 50_000)
    rank = RANKS[rng.choice(len(RANKS), size=n, p=RANK_P)]
    return {
        "company": company,
        "store": store,
        "name": name,
        "name_kana": kana,
        "phone": phone,
        "email": email,
        "address": address,
        "birthday": birthday,
        "gender": gender,
        "points": points,
        "rank": rank,
    }


def _customer_columns(cust: dict[str, Any]) -> CustomerColumns:
    """The generated customers as the bulk loader takes them (plain lists: read once per row)."""
    return CustomerColumns(
        company=cust["company"],
        home_store=cust["store"],
        name=cust["name"],
        name_kana=cust["name_kana"],
        phone=cust["phone"],
        email=cust["email"],
        address=cust["address"],
        birthday=cust["birthday"],
        gender=cust["gender"],
        points=cust["points"],
        rank=cust["rank"].tolist(),
    )


def _transactions(rng: np.random.Generator, cust: dict[str, Any]) -> TransactionColumns:
    """About 0.6 sales per member over 120 days; one in five is to no member, at the same stores."""
    n_customers = len(cust["name"])
    n = int(n_customers * TRANSACTIONS_PER_CUSTOMER)
    who = rng.integers(n_customers, size=n)
    member = rng.random(n) >= NON_MEMBER_SALES
    amount = (np.round(rng.lognormal(mean=7.6, sigma=0.7, size=n) / 10) * 10).astype(np.int64) + 100
    end = datetime(2026, 1, 5, 12, tzinfo=UTC)
    seconds = np.sort(rng.integers(0, 120 * 86400, size=n))[::-1]
    return TransactionColumns(
        company=cust["company"][who],
        store=cust["store"][who],
        customer=np.where(member, who, -1),
        amount=amount,
        occurred_at=[end - timedelta(seconds=s) for s in seconds.tolist()],
    )
