"""The obligations package's operations for the CLI, the admin API and the app views."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from appwarden.blind_index.service import digest_raw, lookup
from appwarden.config import get_settings
from appwarden.errors import InvalidInput, NotFound
from appwarden.incident.appi import JST
from appwarden.ledger.queries import who_has_in
from appwarden.marketplace import standing
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.vendors import profile_of
from appwarden.obligations import attestation
from appwarden.obligations.holdings import AppHoldings, HoldingRow, app_holdings
from appwarden.obligations.provision import ProvisionRecord, provision_records, to_csv, to_markdown
from appwarden.platform.directory import customer_cards, customer_of
from appwarden.platform.service import get_company


def holdings(
    session: Session, *, app_ref: str | None = None, company_ref: str | None = None, now: datetime
) -> list[HoldingRow]:
    """Every app × company × field row (of one app, of one company), by app then company then field;
    404 ``app_not_found`` / ``company_not_found`` for an unknown reference."""
    apps = [standing.find(session, app_ref)] if app_ref is not None else standing.all_standings(session)
    companies = None if company_ref is None else {get_company(session, company_ref).id}
    found = app_holdings(
        session, apps, now=now, default_days=get_settings().retention_default_days, company_ids=companies
    )
    return [row for app in found for row in app.rows]


def holdings_of_apps(session: Session, apps: Sequence[AppStanding], now: datetime) -> dict[int, AppHoldings]:
    """:func:`app_holdings` of ``apps`` by app id (the app views' and the risk score's source)."""
    found = app_holdings(session, apps, now=now, default_days=get_settings().retention_default_days)
    return {h.app_id: h for h in found}


def holdings_fact(session: Session, apps: Sequence[AppStanding], now: datetime) -> dict[int, dict[str, Any]]:
    """The ``holdings`` shown on each app (``apps show``, ``GET /admin/apps/{slug}``): distinct people
    the vendor may hold and should no longer hold; an answer to ``marketplace.facts.app_facts``."""
    return {
        app_id: {
            "holdings": {
                "may_hold": h.may_hold,
                "should_not_hold": h.should_not_hold,
                "companies_past_retention": h.companies_past_retention,
            }
        }
        for app_id, h in holdings_of_apps(session, apps, now).items()
    }


def overdue_obligations(session: Session, app_ids: Collection[int], now: datetime) -> Mapping[int, int]:
    """Per app, the companies whose people it holds past retention or after their connection ended:
    the risk score's ``obligations`` count (``monitor.risk``)."""
    apps = list(standing.standings(session, app_ids).values())
    return {app_id: h.companies_past_retention for app_id, h in holdings_of_apps(session, apps, now).items()}


def overdue_attestation_counts(
    session: Session, app_ids: Collection[int], now: datetime
) -> Mapping[int, int]:
    """Per app, its delivered erasure requests unattested past their deadline (the risk score's
    ``obligations.attestations_overdue``)."""
    counts: dict[int, int] = {}
    for o in attestation.overdue(session, get_settings(), now, app_ids):
        counts[o.app_id] = counts.get(o.app_id, 0) + 1
    return counts


def provision(
    session: Session, *, company_ref: str, since: date, until: date, with_people: bool = False
) -> tuple[str, list[ProvisionRecord]]:
    """The company's public id and its records of provision for the Japan-time days ``since`` to
    ``until`` inclusive; 404 ``company_not_found``, 400 ``invalid_range``."""
    if until < since:
        raise InvalidInput("--to is before --from", code="invalid_range")
    company = get_company(session, company_ref)
    start = datetime.combine(since, time(), JST)
    end = datetime.combine(until + timedelta(days=1), time(), JST)
    return company.public_id, provision_records(
        session, company.id, since=start, until=end, with_people=with_people
    )


RECORDS_YEARS = 3  # the records' keeping period (施行規則 第14条), the default range of a listing
PROVISION_MEDIA = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


def provision_range(now: datetime, since: date | None = None, until: date | None = None) -> tuple[date, date]:
    """The Japan-time days a listing of records covers: the given bounds, else the last three years up
    to today (``records provision``'s and the console's default)."""
    today = now.astimezone(JST).date()
    first = since if since is not None else today.replace(year=today.year - RECORDS_YEARS)
    return first, until if until is not None else today


def provision_document(
    session: Session, *, company_ref: str, since: date, until: date, fmt: str, with_people: bool = False
) -> tuple[bytes, list[ProvisionRecord]]:
    """The records of provision as the file ``records provision --format csv|pdf`` writes (CSV in UTF-8,
    or the A4 PDF), and the records in it; 400 ``invalid_format`` for another format. The CLI and the
    store owner's console download both call this, so the two are one document."""
    if fmt not in PROVISION_MEDIA:
        raise InvalidInput(
            f"unknown format {fmt!r} (choose csv or pdf)", parameter="format", code="invalid_format"
        )
    company_id, records = provision(
        session, company_ref=company_ref, since=since, until=until, with_people=with_people
    )
    if fmt == "csv":
        return to_csv(records, with_people=with_people).encode("utf-8"), records
    from appwarden.incident.pdf import markdown_to_pdf

    markdown = to_markdown(records, company=company_id, since=since, until=until)
    return markdown_to_pdf(markdown, title=f"第三者提供の記録 {company_id}"), records


def person_records(session: Session, ref: str) -> list[dict[str, Any]]:
    """Every recipient, field and period of one person's data (a disclosure request for the records of
    provision): ``ref`` is a platform customer id (``cus_…``), a phone number or an e-mail address,
    found through the blind index (normalised: any common spelling). A phone or address may match
    customers of several companies: each is answered. 404 ``customer_not_found`` when none matches."""
    ids = customers_by(session, ref)
    if not ids:
        raise NotFound("no customer has this id, phone number or e-mail address", code="customer_not_found")
    cards = customer_cards(session, ids)
    apps = {a.slug: a for a in standing.all_standings(session)}
    out: list[dict[str, Any]] = []
    for customer_id in sorted(cards):
        card = cards[customer_id]
        received = who_has_in(session, card.public_id)
        for item in received:
            app = apps.get(item["app"])
            vendor = profile_of(session, app.vendor_id) if app and app.vendor_id is not None else None
            out.append(
                {
                    "customer": card.public_id,
                    "recipient": vendor.name if vendor else (app.name if app else item["app"]),
                    "app": item["app"],
                    "field": item["field"],
                    "mode": item["mode"],
                    "from": item["first_at"].isoformat(),
                    "to": item["last_at"].isoformat(),
                    "entries": item["entries"],
                }
            )
    return out


def customers_by(session: Session, ref: str) -> list[int]:
    """The internal ids of the customers ``ref`` names: a platform id (``cus_…``), or a phone number or
    e-mail address in any common spelling, through the blind index (several companies may match)."""
    ref = ref.strip()
    if ref.startswith("cus_"):
        found = customer_of(session, ref)
        return [found.id] if found else []
    field = "email" if "@" in ref else "phone"
    digests = [d for d in digest_raw(field, [ref]) if d is not None]
    if not digests:
        raise InvalidInput(
            f"{ref!r} is not a customer id, phone number or e-mail address", parameter="customer"
        )
    return sorted({i for ids in lookup(session, field, digests).values() for i in ids})
