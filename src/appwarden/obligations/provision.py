"""Records of provision to third parties (第三者提供の記録, APPI art. 29) for one company, from the ledger.

When a company's customer data goes to a marketplace app, the company (the 提供者) must record, for
each provision, the date, the recipient (the app's vendor), the people concerned, the data items and
that the provision rests on consent — and keep the record for three years (施行規則 第14条: 3 years
for records made per provision). The ledger already holds every delivery, tamper-evident; this module
reads it into one record per app and day (``ledger.provision.batches``), the form the rules allow for
continuous provision, with the consent on record at the time: the owner's grant of the connection
(``connection:grant:created`` / ``updated``, with who consented, when, and to which scopes).

Canaries are left out (synthetic people, not anyone's personal data). The people are counted per record
and listed on demand (one row per person), by their platform public ids.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from appwarden.canary.lookup import canary_ids
from appwarden.events.service import Event, EventTag, occurrences_for_company
from appwarden.incident.appi import JST, label
from appwarden.ledger.provision import batches
from appwarden.marketplace.scopes import Mode
from appwarden.marketplace.standing import standings
from appwarden.marketplace.vendors import profile_of
from appwarden.platform.customer_rows import PERSON_FIELDS
from appwarden.platform.directory import customer_cards

CONSENT_TAGS = (EventTag.CONNECTION_CREATED, EventTag.CONNECTION_UPDATED)
MODE_JA = {Mode.RAW.value: "そのまま", Mode.MASKED.value: "マスク", Mode.TOKEN.value: "仮名"}


@dataclass(frozen=True, slots=True)
class Consent:
    """The owner's grant in force when the data went out."""

    connection: str | None
    by: str | None
    at: datetime
    scopes: tuple[str, ...]

    def text(self) -> str:
        """One line for the record: who consented, when (Japan time), to what."""
        when = self.at.astimezone(JST).strftime("%Y-%m-%d %H:%M")
        return f"{self.by or '?'} が {when} に同意（{self.connection or '?'}: {' '.join(self.scopes)}）"


@dataclass(frozen=True, slots=True)
class ProvisionRecord:
    """One record: an app's deliveries to the company on one day (Japan time)."""

    day: date
    recipient: str  # the vendor's name (the app's name when it has no vendor on record)
    app: str
    items: tuple[str, ...]  # "氏名（そのまま）", …, in field order
    people: int
    entries: int
    first_at: datetime
    last_at: datetime
    consent: Consent | None
    customers: tuple[str, ...] = ()  # public ids, only when asked for

    def to_dict(self) -> dict[str, object]:
        """The JSON form of a record."""
        return {
            "date": self.day.isoformat(),
            "recipient": self.recipient,
            "app": self.app,
            "items": list(self.items),
            "people": self.people,
            "entries": self.entries,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "consent": None if self.consent is None else self.consent.text(),
        }


def _consent_at(events: Sequence[Event], at: datetime) -> Consent | None:
    """The latest grant recorded at or before ``at`` (None: no consent on record, which the record says)."""
    before = [e for e in events if e.occurred_at <= at]
    if not before:
        return None
    e = before[-1]
    scopes = tuple(str(s) for s in e.data.get("scopes", []))
    return Consent(e.data.get("connection"), e.actor, e.occurred_at, scopes)


def provision_records(
    session: Session, company_id: int, *, since: datetime, until: datetime, with_people: bool = False
) -> list[ProvisionRecord]:
    """The company's records of provision for deliveries in ``[since, until)``, by day then app."""
    found = batches(session, company_id, since=since, until=until, tz=JST)
    apps = standings(session, {b.app_id for b in found})
    vendors = {
        a.vendor_id: profile_of(session, a.vendor_id) for a in apps.values() if a.vendor_id is not None
    }
    consents = occurrences_for_company(session, CONSENT_TAGS, company_id=company_id)
    canaries = canary_ids(session, company_ids=[company_id])
    records = []
    for batch in found:
        app = apps[batch.app_id]
        vendor = vendors.get(app.vendor_id) if app.vendor_id is not None else None
        keys = sorted(batch.people_by_key, key=lambda k: (_field_order(k[0]), k[1]))
        items = tuple(
            f"{label(f, 'ja')}（{MODE_JA.get(m, m)}）"
            for f, m in keys
            if batch.people_by_key[(f, m)] - canaries
        )
        people = batch.people - canaries
        if not people:
            continue  # only canaries went out that day: no one's personal data
        customers: tuple[str, ...] = ()
        if with_people:
            cards = customer_cards(session, list(people))
            customers = tuple(sorted(cards[i].public_id for i in people if i in cards))
        records.append(
            ProvisionRecord(
                day=batch.day,
                recipient=vendor.name if vendor else app.name,
                app=app.slug,
                items=items,
                people=len(people),
                entries=batch.entries,
                first_at=batch.first_at,
                last_at=batch.last_at,
                consent=_consent_at([e for e in consents if e.app_id == app.id], batch.first_at),
                customers=customers,
            )
        )
    return records


def _field_order(field: str) -> int:
    return PERSON_FIELDS.index(field) if field in PERSON_FIELDS else len(PERSON_FIELDS)


HEADER = (
    "提供年月日",
    "提供先（第三者）",
    "アプリ",
    "個人データの項目",
    "本人の数",
    "記録件数",
    "最初の提供",
    "最後の提供",
    "本人の同意",
)


def to_csv(records: Sequence[ProvisionRecord], *, with_people: bool = False) -> str:
    """The records as CSV (UTF-8, Japanese headers); with people, one row per person per record."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*HEADER, "本人（顧客ID）"] if with_people else HEADER)
    for r in records:
        row = [
            r.day.isoformat(),
            r.recipient,
            r.app,
            "、".join(r.items),
            r.people,
            r.entries,
            r.first_at.astimezone(JST).isoformat(timespec="seconds"),
            r.last_at.astimezone(JST).isoformat(timespec="seconds"),
            r.consent.text() if r.consent else "同意の記録なし",
        ]
        if with_people:
            for customer in r.customers:
                writer.writerow([*row, customer])
        else:
            writer.writerow(row)
    return out.getvalue()


def to_markdown(records: Sequence[ProvisionRecord], *, company: str, since: date, until: date) -> str:
    """The records as a Markdown document (a table per the headers), for the PDF."""
    lines = [
        f"# 第三者提供の記録（個人情報保護法第29条）: {company}",
        "",
        f"期間: {since.isoformat()} – {until.isoformat()}（日本時間）。",
        "記録は台帳（改ざん検知付き）から作成し、3年間保存します。",
        "",
        "| " + " | ".join(HEADER[:6]) + " | " + HEADER[8] + " |",
        "|" + " --- |" * 7,
    ]
    for r in records:
        consent = r.consent.text() if r.consent else "同意の記録なし"
        cells = [
            r.day.isoformat(),
            r.recipient,
            r.app,
            "、".join(r.items),
            f"{r.people:,}",
            f"{r.entries:,}",
            consent,
        ]
        lines.append("| " + " | ".join(c.replace("|", "／") for c in cells) + " |")
    if not records:
        lines.append("| – | – | – | – | 0 | 0 | – |")
    return "\n".join(lines) + "\n"
