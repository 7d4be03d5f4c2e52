"""The security team's overview and its security-event history pages.

- ``/console/security``: every app, riskiest first (``marketplace.facts.app_views``, ordered by the
  ``risk`` fact), the open alerts (``monitor.service.list_alerts``), the open incidents
  (``incident.service.list_incidents``) and the deliveries per hour over the last 48 hours
  (``ledger.activity.deliveries``).
- ``/console/security/events`` (filters ``app`` and ``company``) and a company's
  ``/console/security/companies/{public_id}/events``: ``events.service.history``, newest first.

Security events carry apps and companies, never a customer (a restricted token's event counts its
customers, nothing names them), so there is no per-person history here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.responses import Response

from appwarden.charts import Bar, bar_chart
from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.labels import LISTING_STATES
from appwarden.console.pages import ConsoleRoute, db_of, lang_of, page, signed_in
from appwarden.db.base import utcnow
from appwarden.errors import NotFound
from appwarden.events.service import Event, history
from appwarden.incident import service as incidents
from appwarden.ledger.activity import Activity, deliveries
from appwarden.marketplace import facts, standing
from appwarden.marketplace import service as marketplace
from appwarden.marketplace.vendors import profile_of
from appwarden.monitor import service as monitor
from appwarden.platform import totp
from appwarden.platform.directory import company_id_of, company_names
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console/security", include_in_schema=False, route_class=ConsoleRoute)
DASHBOARD_HOURS = 48
EVENTS_SHOWN = 200
NO_COMPANY = N_("There is no such company.")


@dataclass(frozen=True, slots=True)
class EventRow:
    """One security event as the history table shows it."""

    event: Event
    app_slug: str | None
    company_public_id: str | None
    company_name: str | None
    details: str  # the event's data as ``key=value`` pairs


def _details(data: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(data.items()))


def event_rows(session: Session, found: list[Event]) -> list[EventRow]:
    """``found`` with each app's slug and company's public id and name beside it."""
    slugs = marketplace.app_slugs(session, {e.app_id for e in found if e.app_id is not None})
    names = company_names(session, {e.company_id for e in found if e.company_id is not None})
    rows = []
    for e in found:
        company = names.get(e.company_id) if e.company_id is not None else None
        rows.append(
            EventRow(
                e,
                slugs.get(e.app_id) if e.app_id is not None else None,
                company.public_id if company else None,
                company.name if company else None,
                _details(dict(e.data)),
            )
        )
    return rows


def activity_chart(lang: str, activity: list[Activity], *, hourly: bool, label: str) -> Markup:
    """Entries per bucket as a bar chart; each bar's tooltip gives its entries and people."""
    tip = i18n.gettext(lang, "%(start)s: %(entries)s deliveries, %(people)s people")
    fmt = "%m-%d %H:00" if hourly else "%m-%d"
    bars = [
        Bar(
            a.start.strftime("%H" if hourly else "%m-%d"),
            a.entries,
            tip % {"start": a.start.strftime(fmt), "entries": a.entries, "people": a.people},
        )
        for a in activity
    ]
    return bar_chart(bars, label=label, label_every=6 if hourly else 5)


def vendor_names(session: Session) -> dict[str, str]:
    """``{app slug: its vendor's name}`` for the apps that have a vendor (the app list's summaries do
    not name it)."""
    names: dict[int, str] = {}
    found = {}
    for app in standing.all_standings(session):
        if app.vendor_id is None:
            continue
        if app.vendor_id not in names:
            profile = profile_of(session, app.vendor_id)
            names[app.vendor_id] = profile.name if profile else ""
        found[app.slug] = names[app.vendor_id]
    return found


@router.get("")
def dashboard(request: Request) -> Response:
    """The security team's overview: apps by risk, open alerts and incidents, deliveries per hour."""
    now = utcnow()
    lang = lang_of(request)
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        has_totp = totp.enabled(session, who.account.id)
        apps = facts.app_views(session, marketplace.list_apps(session), now)
        vendors = vendor_names(session)
        alerts = monitor.describe(session, monitor.list_alerts(session, state=monitor.AlertState.OPEN))
        open_incidents = [
            incidents.summary(session, i) for i in incidents.list_incidents(session, status="open")
        ]
        hourly = deliveries(session, since=now - timedelta(hours=DASHBOARD_HOURS - 1), until=now)
    chart = activity_chart(
        lang, hourly, hourly=True, label=i18n.gettext(lang, "Deliveries per hour, last 48 hours")
    )
    return page(
        request,
        "security_home.html",
        who=who,
        has_totp=has_totp,
        apps=apps,
        alerts=alerts,
        incidents=open_incidents,
        chart=chart,
        total=sum(a.entries for a in hourly),
        states=LISTING_STATES,
        vendors=vendors,
    )


def _history_page(request: Request, *, app: str | None, company: str | None, fixed_company: bool) -> Response:
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        app_id = marketplace.app_id_of(session, app) if app else None
        company_id = company_id_of(session, company) if company else None
        unknown = (app and app_id is None) or (company and company_id is None)
        if fixed_company and company_id is None:
            # The error page shows an uncatalogued code's detail: give it in the visitor's language.
            raise NotFound(i18n.gettext(lang_of(request), NO_COMPANY), code="security_company_not_found")
        found = [] if unknown else history(session, app_id=app_id, company_id=company_id, limit=EVENTS_SHOWN)
        rows = event_rows(session, found)
        company_name = company_names(session, [company_id]).get(company_id) if company_id else None
        app_choices = sorted(marketplace.app_slugs(session).values())
    return page(
        request,
        "security_events.html",
        who=who,
        rows=rows,
        app=app or "",
        company=company or "",
        company_name=company_name.name if company_name else None,
        fixed_company=fixed_company,
        unknown=bool(unknown),
        app_choices=app_choices,
        limit=EVENTS_SHOWN,
    )


@router.get("/events")
def events(request: Request, app: str | None = None, company: str | None = None) -> Response:
    """Security events, newest first, of one app and/or one company (public id) when filtered."""
    return _history_page(request, app=app or None, company=company or None, fixed_company=False)


@router.get("/companies/{public_id}/events")
def company_events(request: Request, public_id: str) -> Response:
    """One company's security events, newest first; an unknown company is a 404 page."""
    return _history_page(request, app=None, company=public_id, fixed_company=True)
