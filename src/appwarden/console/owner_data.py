"""What the store owner's pages show beyond the grant: what a connected app took of the company's
customers (ledger counts per field and mode, what the vendor may still hold and should no longer hold,
deliveries per day), and who has one customer's data. Read through the owning packages' service
functions only, always scoped to the owner's company."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session

from appwarden.blind_index.service import digest_raw, lookup
from appwarden.charts import Bar, bar_chart
from appwarden.console import i18n
from appwarden.console.labels import who_has_rows
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.service import EventTag, record
from appwarden.ledger.activity import Activity, Bucket, deliveries
from appwarden.ledger.exposure import Received, received_by_company
from appwarden.ledger.queries import who_has
from appwarden.oauth.connections import ConnectionView
from appwarden.obligations.holdings import HoldingRow
from appwarden.obligations.service import holdings
from appwarden.platform.directory import CustomerCard, company_names, customer_cards, customer_of

CHART_DAYS = 30
MAX_QUERY = 320  # the longest e-mail address; anything longer is no customer's phone or address


def company_ref(session: Session, company_id: int) -> str:
    """The company's public id (what the obligations and incident packages name companies by)."""
    return company_names(session, [company_id])[company_id].public_id


@dataclass(frozen=True, slots=True)
class AppData:
    """What one connected app took of the company's customers."""

    received: list[Received]
    holdings: list[HoldingRow]
    activity: list[Activity]
    chart: Markup


def _chart(activity: list[Activity], lang: str) -> Markup:
    label = i18n.gettext(lang, "Deliveries per day, last 30 days (people)")
    calls = i18n.gettext(lang, "calls")
    bars = [
        Bar(
            a.start.strftime("%m-%d"),
            a.people,
            f"{a.start:%Y-%m-%d}: {a.people:,} ({a.entries:,} {calls})",
        )
        for a in activity
    ]
    return bar_chart(bars, label=label, label_every=5, css_class="chart deliveries")


def app_data(session: Session, conn: ConnectionView, lang: str) -> AppData:
    """The app's deliveries to the owner's company (``conn`` is already the company's own)."""
    now = utcnow()
    activity = deliveries(
        session,
        since=now - timedelta(days=CHART_DAYS - 1),
        until=now,
        bucket=Bucket.DAY,
        app_id=conn.app_id,
        company_id=conn.company_id,
    )
    rows = holdings(
        session, app_ref=conn.app_slug, company_ref=company_ref(session, conn.company_id), now=now
    )
    return AppData(
        received=received_by_company(session, conn.app_id, company_id=conn.company_id),
        holdings=rows,
        activity=activity,
        chart=_chart(activity, lang),
    )


@dataclass(frozen=True, slots=True)
class Found:
    """One of the company's customers matching the search, and where its data went."""

    card: CustomerCard
    deliveries: list[dict[str, Any]]  # ``ledger.queries.who_has`` rows: app, field, mode, first/last, entries


def search_field(query: str) -> str:
    """An e-mail address has an ``@``; anything else is read as a phone number."""
    return "email" if "@" in query else "phone"


def customers_matching(session: Session, company_id: int, query: str) -> list[CustomerCard]:
    """The company's customers whose phone or e-mail is ``query``, normalised and looked up through the
    blind index (no plaintext is compared). A customer of another company is dropped exactly like one
    that does not exist."""
    query = query.strip()[:MAX_QUERY]
    field = search_field(query)
    (digest,) = digest_raw(field, [query]) if query else (None,)
    ids = lookup(session, field, [digest]).get(digest, []) if digest is not None else []
    cards = [
        card
        for card in customer_cards(session, ids).values()
        if (ref := customer_of(session, card.public_id)) is not None and ref.company_id == company_id
    ]
    return sorted(cards, key=lambda c: c.public_id)


def who_has_customer(db: Database, who_name: str, company_id: int, query: str) -> list[Found]:
    """:func:`customers_matching`, each with the apps that received its data (``ledger.queries.who_has``).

    The search is a security event (``user:customer:looked-up``) naming the field and the customers
    found, never the value searched for. Each read runs in its own session (SQLite allows one writer)."""
    with db.session() as session:
        cards = customers_matching(session, company_id, query)
    found = [Found(card, who_has(db, card.public_id)) for card in cards]
    with db.session() as session:
        record(
            session,
            EventTag.USER_CUSTOMER_LOOKED_UP,
            actor=who_name,
            company_id=company_id,
            field=search_field(query.strip()),
            customers=[f.card.public_id for f in found],
            via="console",
        )
    return found


def delivery_rows(found: Found) -> list[dict[str, Any]]:
    """``who_has`` rows with the field and mode as label message ids (translated in the template)."""
    return who_has_rows(found.deliveries)
