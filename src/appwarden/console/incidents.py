"""The security team's incident pages: the list (open first), the kill switch behind a typed
confirmation, and one incident: its timeline, known and not-yet-known facts, and the blast radius.

Every figure comes from the function the CLI uses (``incident.blast_radius.compute_blast_radius``, as
``appwarden incident blast-radius``), every change from the incident package's service functions with
the person's username as actor. The dump upload, notices and reports are in ``console.incident_files``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from appwarden.charts import Bar, hbar_chart
from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.labels import FIELDS, LISTING_STATES
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, lang_of, page, signed_in
from appwarden.errors import AppwardenError
from appwarden.incident import service
from appwarden.incident.blast_radius import compute_blast_radius
from appwarden.incident.killswitch import kill_switch
from appwarden.incident.operations import FACT_KINDS, add_fact
from appwarden.incident.revocation import worker_signal
from appwarden.incident.vocabulary import IncidentStatus
from appwarden.marketplace.standing import AppStanding, all_standings
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console/security", include_in_schema=False, route_class=ConsoleRoute)
BASE = "/console/security/incidents"

# What the kill-switch form says for each refusal the kill switch can give (else the error's detail).
KILL_ERRORS = {
    "app_not_found": N_("There is no such app."),
    "incident_already_open": N_("This app already has an open incident."),
}
FACT_ERRORS = {"known": N_("Write the fact first."), "unknown": N_("Write the question first.")}


@router.get("/incidents")
def incidents(request: Request) -> Response:
    """Every incident, the open ones first (newest first within each)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        rows = [service.summary(session, i) for i in service.list_incidents(session)]
    rows.sort(key=lambda r: r["status"] != IncidentStatus.OPEN)  # stable: newest first stays
    return page(request, "incidents.html", who=who, rows=rows)


def _killable(apps: list[AppStanding]) -> list[AppStanding]:
    """Apps the kill switch can still cut off (a delisted app already is)."""
    return [a for a in apps if a.listing_state != LifecycleState.DELISTED]


@router.get("/incidents/new")
def new_incident(request: Request, app: str | None = None) -> Response:
    """The kill switch: pick the app, say why, type its slug to confirm."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        apps = _killable(all_standings(session))
    return page(
        request, "incident_new.html", who=who, apps=apps, states=LISTING_STATES,
        chosen=app or "", reason="", error=None,
    )  # fmt: skip


@router.post("/incidents/new")
def kill(
    request: Request,
    app: str = Form(""),
    reason: str = Form(""),
    confirm: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    """Run the kill switch once the typed slug matches the chosen app; a mismatch changes nothing."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        apps = _killable(all_standings(session))
    lang = lang_of(request)

    def again(status: int, error: str) -> Response:
        return page(
            request, "incident_new.html", who=who, status=status, apps=apps, states=LISTING_STATES,
            chosen=app, reason=reason, error=error,
        )  # fmt: skip

    if not app.strip():
        return again(422, i18n.gettext(lang, "Choose the app to cut off."))
    if not reason.strip():
        return again(422, i18n.gettext(lang, "Give the reason: it goes on the record and to the companies."))
    if confirm.strip() != app.strip():
        message = i18n.gettext(lang, "The confirmation %(typed)s does not match the app's slug %(slug)s.")
        return again(422, message % {"typed": f"“{confirm.strip()}”", "slug": f"“{app.strip()}”"})
    try:
        result = kill_switch(
            db_of(request),
            apps=[app.strip()],
            reason=reason,
            actor=who.username,
            signal=worker_signal(request.app),  # this worker's copy, as the admin API uses
        )
    except AppwardenError as exc:
        known = KILL_ERRORS.get(exc.code)
        return again(exc.status, i18n.gettext(lang, known) if known else exc.detail)
    return RedirectResponse(f"{BASE}/{result.incident}?killed=1", status_code=303)


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One line of the blast radius's field table."""

    field: str
    label: str
    raw: int
    masked: int
    token: int
    exposed: int


def blast_view(db: Any, incident: str, lang: str) -> dict[str, Any]:
    """The blast radius as the page shows it: the CLI's figures (``to_dict``), rows and the chart."""
    radius = compute_blast_radius(db, incident)
    data = radius.to_dict()
    rows = [
        FieldRow(name, FIELDS.get(name, name), c.raw, c.masked, c.token, c.exposed)
        for name, c in radius.fields.items()
    ]
    bars = [Bar(c.name, c.persons_exposed) for c in radius.companies]
    chart = hbar_chart(bars, label=i18n.gettext(lang, "People exposed per company")) if bars else None
    return {"data": data, "rows": rows, "chart": chart}


@router.get("/incidents/{incident}")
def incident_page(request: Request, incident: str, killed: str | None = None) -> Response:
    """One incident: what happened, what is known and not, who was exposed, the timeline."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        record = service.describe(session, service.get_incident(session, incident))
    blast = blast_view(db_of(request), incident, lang_of(request))
    return page(
        request, "incident.html", who=who, inc=record, blast=blast, fields=FIELDS,
        killed=bool(killed), fact_error=None, verdict=None, verdict_error=None,
    )  # fmt: skip


@router.post("/incidents/{incident}/facts")
def add_incident_fact(
    request: Request, incident: str, kind: str = Form(""), text: str = Form(""), csrf_token: str = Form("")
) -> Response:
    """Add a known fact or an open question (a ``fact`` timeline entry and a security event)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        service.get_incident(session, incident)  # 404 before anything else
    if kind in FACT_KINDS and not text.strip():
        with db_of(request).session() as session:
            record = service.describe(session, service.get_incident(session, incident))
        return page(
            request, "incident.html", who=who, status=422, inc=record, fields=FIELDS,
            blast=blast_view(db_of(request), incident, lang_of(request)), killed=False,
            fact_error=i18n.gettext(lang_of(request), FACT_ERRORS[kind]), verdict=None, verdict_error=None,
        )  # fmt: skip
    add_fact(db_of(request), incident, kind=kind, text=text, actor=who.username)
    return RedirectResponse(f"{BASE}/{incident}#facts", status_code=303)
