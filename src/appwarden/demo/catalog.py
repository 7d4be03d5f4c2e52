"""What the demo builds: the marketplace's apps (with vendors, scopes and modes), and the plans.

A :class:`Plan` is plain data: how many companies, stores and customers, which app each company connects
with what it unticks, and (for the reference scenario) the exact counts the ledger must read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class AppSpec:
    """A marketplace app the demo registers, and how it behaves once connected."""

    slug: str
    name: str
    vendor: str
    scopes: tuple[str, ...]
    share: float  # share of companies that connect it (the scenario overrides invoice-plus)
    untick: tuple[str, ...] = ()  # scopes some owners untick on the consent page
    detokenize: bool = False  # calls POST /v1/detokenize now and then (apps with token-mode fields)
    transaction_pages: int = 0  # pages of /v1/transactions per sync (-1: every page)

    @property
    def redirect_uri(self) -> str:
        return f"https://{self.slug}.example/oauth/callback"

    @property
    def customer_scopes(self) -> tuple[str, ...]:
        return tuple(s for s in self.scopes if s.startswith("customers."))


INVOICE_PLUS = "invoice-plus"

APPS: tuple[AppSpec, ...] = (
    AppSpec(
        INVOICE_PLUS,
        "Invoice Plus (請求書・見積書)",
        "Invoice Plus Inc.",
        ("customers.name:raw", "customers.phone:raw"),
        share=0.6,
    ),
    AppSpec(
        "loyalty-stamp",
        "Loyalty Stamp (スタンプカード)",
        "Stamp Card Works K.K.",
        ("customers.name:masked", "customers.phone:token", "customers.points:raw", "customers.rank:raw"),
        share=0.5,
        detokenize=True,
    ),
    AppSpec(
        "point-hub",
        "Point Hub (共通ポイント)",
        "PointHub Co., Ltd.",
        ("customers.name:token", "customers.email:token", "customers.points:raw", "customers.rank:raw"),
        share=0.4,
        detokenize=True,
    ),
    AppSpec(
        "booking-go",
        "Booking Go (予約管理)",
        "Booking Go K.K.",
        ("customers.name:raw", "customers.name_kana:raw", "customers.email:masked", "customers.phone:masked"),
        share=0.4,
        untick=("customers.phone:masked",),
    ),
    AppSpec(
        "kaikei-cloud",
        "Kaikei Cloud (会計連携)",
        "Kaikei Cloud Inc.",
        ("transactions:read",),
        share=0.5,
        transaction_pages=-1,
    ),
    AppSpec(
        "demae-delivery",
        "Demae Delivery (デリバリー)",
        "Demae Logistics K.K.",
        ("customers.name:raw", "customers.phone:raw", "customers.address:raw"),
        share=0.3,
        untick=("customers.phone:raw",),
    ),
    AppSpec(
        "smile-crm",
        "Smile CRM (誕生日クーポン)",
        "Smile CRM Inc.",
        (
            "customers.name:masked",
            "customers.email:raw",
            "customers.birthday:raw",
            "customers.gender:raw",
            "customers.rank:raw",
        ),
        share=0.3,
        untick=("customers.email:raw",),
    ),
    AppSpec(
        "sales-insight",
        "Sales Insight (売上分析)",
        "Insight Analytics K.K.",
        (
            "customers.birthday:masked",
            "customers.gender:raw",
            "customers.address:masked",
            "transactions:read",
        ),
        share=0.3,
        transaction_pages=2,
    ),
)
APPS_BY_SLUG = {a.slug: a for a in APPS}

# The reference scenario (../shared/MISSION.md): 8 companies connected invoice-plus, whose customers
# number exactly 136,346, of whom exactly 114,951 have a phone.
INCIDENT_SCENARIO = "incident-2026"
INCIDENT_COMPANIES = 12
INCIDENT_STORES = 60
INCIDENT_INVOICE_COMPANIES = 8
INCIDENT_NAMES = 136_346
INCIDENT_PHONES = 114_951
INCIDENT_OTHER_CUSTOMERS = 28_000
# The same vendor behaviour with the monitor's default policy in active mode (docs/monitoring.md).
GUARDED_SCENARIO = "incident-2026-guarded"
SCENARIOS = (INCIDENT_SCENARIO, GUARDED_SCENARIO)


@dataclass(frozen=True, slots=True)
class Connect:
    """Company ``company`` (index) connects ``slug``, unticking ``untick`` on the consent page."""

    company: int
    slug: str
    untick: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the generator and the traffic driver need, decided up front from the seed."""

    companies: int
    stores: int
    customers: int
    seed: int
    scenario: str | None = None
    # Exact construction: the first ``exact_companies`` companies hold ``exact_customers`` customers,
    # ``exact_phones`` of them with a phone (None: sizes and phones are drawn freely).
    exact_companies: int = 0
    exact_customers: int | None = None
    exact_phones: int | None = None
    connections: tuple[Connect, ...] = field(default=())

    @property
    def guarded(self) -> bool:
        """The replay with the monitor in active mode (``incident-2026-guarded``)."""
        return self.scenario == GUARDED_SCENARIO

    def connected(self, slug: str) -> list[int]:
        return sorted(c.company for c in self.connections if c.slug == slug)


def plan_default(*, companies: int, stores: int, customers: int, seed: int) -> Plan:
    """A platform of ``companies`` with ``stores`` and ``customers`` in all; every app connected by some."""
    rng = np.random.default_rng(seed)
    return Plan(companies, stores, customers, seed, connections=_connections(rng, companies, None))


def plan_incident(
    *,
    seed: int,
    companies: int = INCIDENT_COMPANIES,
    stores: int = INCIDENT_STORES,
    invoice_companies: int = INCIDENT_INVOICE_COMPANIES,
    names: int = INCIDENT_NAMES,
    phones: int = INCIDENT_PHONES,
    other_customers: int = INCIDENT_OTHER_CUSTOMERS,
    scenario: str = INCIDENT_SCENARIO,
) -> Plan:
    """The incident: ``invoice_companies`` of ``companies`` connect invoice-plus, and they hold exactly
    ``names`` customers, ``phones`` of them with a phone. Smaller figures give the same construction
    at test size."""
    if not 0 < invoice_companies < companies:
        raise ValueError("invoice_companies must be between 1 and companies - 1")
    if not 0 <= phones <= names or names < invoice_companies:
        raise ValueError("need invoice_companies <= names and 0 <= phones <= names")
    rng = np.random.default_rng(seed)
    return Plan(
        companies=companies,
        stores=stores,
        customers=names + other_customers,
        seed=seed,
        scenario=scenario,
        exact_companies=invoice_companies,
        exact_customers=names,
        exact_phones=phones,
        connections=_connections(rng, companies, invoice_companies),
    )


def _connections(
    rng: np.random.Generator, companies: int, invoice_companies: int | None
) -> tuple[Connect, ...]:
    """Which company connects which app. In the scenario, invoice-plus goes to exactly the first
    ``invoice_companies`` companies (the ones with the exact counts), with nothing unticked."""
    out: list[Connect] = []
    for spec in APPS:
        if spec.slug == INVOICE_PLUS and invoice_companies is not None:
            chosen = list(range(invoice_companies))
        else:
            k = max(1, round(spec.share * companies))
            chosen = sorted(int(i) for i in rng.choice(companies, size=min(k, companies), replace=False))
        for company in chosen:
            # Roughly one owner in three unticks the field the app asks for that owners often refuse.
            untick = spec.untick if spec.untick and rng.random() < 0.35 else ()
            out.append(Connect(company, spec.slug, untick))
    return tuple(out)
