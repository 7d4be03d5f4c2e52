"""One app as the security team sees it (``/console/security/apps/{slug}``) and the two moves it may
make there: restrict (raw identifying fields as tokens only, or every call paused) and relist.

The page reads only other packages' service functions: the app's view (``marketplace.facts.app_view``:
vendor, tier, state, scopes, risk), its lifecycle history (``events.service.history`` of the app),
its connections (``oauth.app_connections``), the people it holds per company and field
(``ledger.exposure.received_by_company``) beside what it may and should no longer hold
(``obligations.service.holdings``) and those holdings per company × field with the retention the
vendor accepted (companies past retention highlighted), its deliveries per day and its alerts
(``monitor.service``).
Both moves go through ``marketplace.standing`` with the person's username as ``actor``, which records
the lifecycle event (``app:listing:restricted`` / ``app:listing:relisted``) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.labels import (
    ATTESTATION_STATES,
    CONNECTION_STATUSES,
    FIELDS,
    LISTING_STATES,
    MODES,
    grant_rows,
)
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, lang_of, page, settings_of, signed_in
from appwarden.console.security_home import activity_chart, event_rows
from appwarden.db.base import utcnow
from appwarden.errors import InvalidInput, NotFound
from appwarden.events.service import history
from appwarden.ledger.activity import Bucket, deliveries
from appwarden.ledger.exposure import received_by_company
from appwarden.marketplace import facts, standing
from appwarden.marketplace import service as marketplace
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy
from appwarden.monitor import service as monitor
from appwarden.oauth.app_connections import app_connections
from appwarden.obligations import attestation
from appwarden.obligations.holdings import HoldingRow
from appwarden.obligations.service import holdings
from appwarden.platform.directory import company_names
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console/security/apps", include_in_schema=False, route_class=ConsoleRoute)
DAYS = 30
LIFECYCLE_PREFIX = "app:listing:"
NO_APP = N_("There is no such app.")
POLICIES = {
    RestrictedPolicy.TOKEN.value: N_("Token only: raw identifying fields are given as pseudonym tokens"),
    RestrictedPolicy.PAUSE.value: N_("Paused: every call is refused"),
}


@dataclass(frozen=True, slots=True)
class HeldRow:
    """People the app received of one field in one mode from one company, with what it may still hold
    and should no longer hold of that field (the obligations' count, per company × field)."""

    company_public_id: str
    company_name: str
    field: str
    mode: str
    people: int
    first_at: datetime
    last_at: datetime
    may_hold: int | None  # None: the mode hands over no value (tokens), so nothing is held
    should_not_hold: int | None


def _app(request: Request, session: Session, slug: str) -> AppStanding:
    try:
        return standing.find(session, slug)
    except NotFound:
        # The error page shows an uncatalogued code's detail: give it in the visitor's language.
        raise NotFound(i18n.gettext(lang_of(request), NO_APP), code="security_app_not_found") from None


@dataclass(frozen=True, slots=True)
class CompanyHoldings:
    """One company's rows of what the app's vendor may still hold (``obligations.service.holdings``)."""

    public_id: str
    name: str
    rows: list[HoldingRow]

    @property
    def past_retention(self) -> bool:
        """Whether the vendor should no longer hold some of this company's people (the company counts
        in ``companies_past_retention`` and the risk score)."""
        return any(r.should_not_hold for r in self.rows)


def company_holdings(owed: list[HoldingRow], names: dict[str, str]) -> list[CompanyHoldings]:
    """The app's holdings rows grouped by company (in the rows' order), named from ``names``
    (public id → name: the companies the ledger says the app received from)."""
    grouped: dict[str, list[HoldingRow]] = {}
    for row in owed:
        grouped.setdefault(row.company, []).append(row)
    return [CompanyHoldings(ref, names.get(ref, ref), rows) for ref, rows in grouped.items()]


def held_rows(session: Session, app: AppStanding, owed: list[HoldingRow]) -> list[HeldRow]:
    """:func:`received_by_company` of the app with its holdings (``owed``) beside each row."""
    received = received_by_company(session, app.id)
    names = company_names(session, {r.company_id for r in received})
    by_key = {(h.company, h.field): h for h in owed}
    rows = []
    for r in received:
        company = names[r.company_id]
        h = by_key.get((company.public_id, r.field)) if r.mode != "token" else None
        rows.append(
            HeldRow(
                company.public_id,
                company.name,
                r.field,
                r.mode,
                r.people,
                r.first_at,
                r.last_at,
                h.may_hold if h else None,
                h.should_not_hold if h else None,
            )
        )
    return rows


def app_context(request: Request, session: Session, app: AppStanding) -> dict[str, Any]:
    """Everything the app page shows."""
    now = utcnow()
    lang = lang_of(request)
    owed = holdings(session, app_ref=app.slug, now=now)
    held = held_rows(session, app, owed)
    view = facts.app_view(session, marketplace.get_app(session, app.slug), now)
    events = history(session, app_id=app.id)
    lifecycle = [e for e in events if e.tag.startswith(LIFECYCLE_PREFIX)]
    daily = deliveries(
        session, since=now - timedelta(days=DAYS - 1), until=now, bucket=Bucket.DAY, app_id=app.id
    )
    alerts = monitor.describe(
        session, monitor.list_alerts(session, app_ref=app.slug, state=monitor.AlertState.ALL)
    )
    return {
        "app": app,
        "view": view,
        "grants": grant_rows(app.approved_scopes, raw_by_restricted_token_only=not app.grandfathered),
        "lifecycle": event_rows(session, lifecycle),
        "connections": app_connections(session, app.id),
        "held": held,
        "holdings": company_holdings(owed, {h.company_public_id: h.company_name for h in held}),
        "chart": activity_chart(
            lang, daily, hourly=False, label=i18n.gettext(lang, "Deliveries per day, last 30 days")
        ),
        "total": sum(a.entries for a in daily),
        "alerts": alerts,
        "attestations": [
            v.to_dict()
            for v in attestation.attestations(session, settings_of(request), now, app_ref=app.slug)
        ],
        "attestation_states": ATTESTATION_STATES,
        "states": LISTING_STATES,
        "statuses": CONNECTION_STATUSES,
        "fields": FIELDS,
        "modes": MODES,
        "policies": POLICIES,
        "can_restrict": app.listing_state in (LifecycleState.LISTED, LifecycleState.RESTRICTED),
        "can_relist": app.listing_state == LifecycleState.RESTRICTED,
    }


@router.get("/{slug}")
def app_page(request: Request, slug: str, done: str | None = None) -> Response:
    """One app: who makes it, where it stands and stood, who connected it, whom it holds, its traffic
    and alerts, and the restrict / relist forms."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        context = app_context(request, session, _app(request, session, slug))
    return page(request, "security_app.html", who=who, done=done, error=None, **context)


@router.post("/{slug}/restrict")
def restrict(
    request: Request,
    slug: str,
    policy: str = Form(""),
    reason: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    """Restrict the app with ``policy`` (``token`` or ``pause``); recorded with the person's name."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        app = _app(request, session, slug)
        if policy not in POLICIES:
            raise InvalidInput("policy must be token or pause", parameter="policy")
        standing.transition(
            session,
            app.id,
            LifecycleState.RESTRICTED,
            actor=who.username,
            reason=reason.strip(),
            policy=RestrictedPolicy(policy),
        )
    return RedirectResponse(f"/console/security/apps/{slug}?done=restricted", status_code=303)


@router.post("/{slug}/relist")
def relist(request: Request, slug: str, reason: str = Form(""), csrf_token: str = Form("")) -> Response:
    """A restricted app back to listed, with the reason (required); recorded with the person's name."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        app = _app(request, session, slug)
        if not reason.strip():
            context = app_context(request, session, app)
            error = i18n.gettext(lang_of(request), "Relisting needs a reason (e.g. the audit it passed).")
            return page(request, "security_app.html", who=who, status=422, done=None, error=error, **context)
        standing.relist(session, app.id, actor=who.username, reason=reason.strip())
    return RedirectResponse(f"/console/security/apps/{slug}?done=relisted", status_code=303)
