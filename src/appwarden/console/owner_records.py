"""The store owner's obligations pages: the company's records of provision to third parties
(第三者提供の記録, APPI art. 29) with the CSV and PDF ``appwarden records provision`` writes, and what
each vendor may still hold of the company's customers. Everything is read through
``obligations.service`` and scoped to the signed-in owner's company: there is no company in the URL,
and another company's connection is the same 404 as one that does not exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from appwarden.console.labels import FIELDS
from appwarden.console.owner_data import company_ref
from appwarden.console.pages import ConsoleRoute, db_of, page, signed_in
from appwarden.db.base import utcnow
from appwarden.errors import InvalidInput
from appwarden.incident.appi import JST
from appwarden.oauth.connections import company_connections
from appwarden.obligations.holdings import HoldingRow
from appwarden.obligations.service import (
    PROVISION_MEDIA,
    holdings,
    provision,
    provision_document,
    provision_range,
)
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


def _day(text: str | None, name: str) -> date | None:
    """A ``from`` / ``to`` bound (YYYY-MM-DD, Japan time); empty is no bound; anything else a 422."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a date YYYY-MM-DD", parameter=name) from None


def _range(since: str | None, until: str | None) -> tuple[date, date]:
    first, last = provision_range(utcnow(), _day(since, "from"), _day(until, "to"))
    if last < first:
        raise InvalidInput("to is before from", parameter="to", code="invalid_range")
    return first, last


@router.get("/records")
def records(
    request: Request,
    since: str | None = Query(None, alias="from"),
    until: str | None = Query(None, alias="to"),
) -> Response:
    """The company's records of provision per app and Japan-time day, between ``from`` and ``to``
    (query parameters ``from`` / ``to``; by default the last three years), with the downloads."""
    first, last = _range(since, until)
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        _, found = provision(
            session, company_ref=company_ref(session, who.account.company_id), since=first, until=last
        )
    return page(request, "owner_records.html", who=who, records=found, since=first, until=last, jst=JST)


@router.get("/records/download")
def records_download(
    request: Request,
    format: str = "csv",
    since: str | None = Query(None, alias="from"),
    until: str | None = Query(None, alias="to"),
) -> Response:
    """The records as ``appwarden records provision --format csv|pdf`` writes them, for the same days."""
    first, last = _range(since, until)
    if format not in PROVISION_MEDIA:
        raise InvalidInput(f"unknown format {format!r} (choose csv or pdf)", parameter="format")
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        company = company_ref(session, who.account.company_id)
        body, _ = provision_document(session, company_ref=company, since=first, until=last, fmt=format)
    name = f"records-provision-{company}-{first.isoformat()}-{last.isoformat()}.{format}"
    return Response(
        body,
        media_type=PROVISION_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@dataclass(frozen=True, slots=True)
class AppHeld:
    """One app's rows of what its vendor may still hold of the company's customers."""

    app: str
    app_name: str
    vendor: str | None
    connection: str | None  # the company's connection to it (the link to the app's page)
    rows: list[HoldingRow]

    @property
    def past_retention(self) -> bool:
        """Whether the vendor should no longer hold some of these people."""
        return any(r.should_not_hold for r in self.rows)


def company_holdings(session: Session, company_id: int) -> list[AppHeld]:
    """``obligations.service.holdings`` of the company, grouped by app, each with the company's
    connection to it (the latest, when it connected the app more than once)."""
    rows = holdings(session, company_ref=company_ref(session, company_id), now=utcnow())
    conns = {
        c.app_slug: c for c in sorted(company_connections(session, company_id), key=lambda c: c.created_at)
    }
    out: list[AppHeld] = []
    for row in rows:
        if not out or out[-1].app != row.app:
            conn = conns.get(row.app)
            out.append(
                AppHeld(
                    row.app,
                    conn.app_name if conn else row.app,
                    conn.vendor if conn else None,
                    conn.public_id if conn else None,
                    [],
                )
            )
        out[-1].rows.append(row)
    return out


@router.get("/holdings")
def vendor_holdings(request: Request) -> Response:
    """Per app × field: how many of the company's customers each vendor may still hold, how many it
    should no longer hold, and the retention it accepted."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        apps = company_holdings(session, who.account.company_id)
    return page(request, "owner_holdings.html", who=who, apps=apps, fields=FIELDS)
