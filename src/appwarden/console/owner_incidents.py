"""The store owner's incident pages and customer search: the notices the company received (each one's
text), the APPI report drafts for the incidents that concern it (downloaded as Markdown or PDF, drafted
by the same functions as ``incident report``), and "who has this customer's data".

Every lookup is within the owner's company: another company's incident, notice or customer is the same
404 / "not found" as one that does not exist.

The search is a POST with the session's CSRF token, not a GET: it is recorded (a security event, so a
GET would have a side effect), and the phone number or address searched for is personal data that must
not sit in URLs, the browser's history, server logs or a ``Referer``.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from appwarden.console.i18n import N_
from appwarden.console.owner_data import company_ref, delivery_rows, search_field, who_has_customer
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, page, settings_of, signed_in
from appwarden.errors import InvalidInput
from appwarden.incident.company_view import (
    company_notice,
    company_notices,
    incident_concerning,
    incidents_concerning,
    notice_draft,
)
from appwarden.incident.context import load_facts
from appwarden.incident.reports import KINDS, check_kind_lang, draft_reports, record_drafted
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
DOWNLOADS = ("md", "pdf")
NOTICE_STATUSES = {
    "pending": N_("Not sent yet"),
    "sending": N_("Being sent"),
    "sent": N_("Sent"),
    "failed": N_("Not delivered (to be retried)"),
}
MEDIA = {"md": "text/markdown; charset=utf-8", "pdf": "application/pdf"}


@router.get("/notices")
def notices(request: Request) -> Response:
    """Every incident notice logged for the owner's company."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        rows = company_notices(session, who.account.company_id)
    return page(request, "owner_notices.html", who=who, rows=rows, notice_statuses=NOTICE_STATUSES)


@router.get("/notices/{incident}")
def notice(request: Request, incident: str) -> Response:
    """One notice's text (Japanese and English), drafted again as it was sent."""
    db = db_of(request)
    with db.session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        found = company_notice(session, who.account.company_id, incident)
        company = company_ref(session, who.account.company_id)
    draft = notice_draft(db, company, found, contact=settings_of(request).security_contact)
    return page(
        request, "owner_notice.html", who=who, notice=found, draft=draft, notice_statuses=NOTICE_STATUSES
    )


@router.get("/reports")
def reports(request: Request) -> Response:
    """The incidents that concern the company, each with its report drafts to download."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        rows = incidents_concerning(session, who.account.company_id)
    return page(request, "owner_reports.html", who=who, rows=rows, kinds=KINDS, formats=DOWNLOADS)


@router.get("/reports/{incident}/download")
def report_download(
    request: Request, incident: str, kind: str = "preliminary", lang: str = "ja", format: str = "md"
) -> Response:
    """One report draft for the owner's company (recorded on the incident's timeline with the owner's
    name, as the CLI and the admin API record theirs)."""
    db = db_of(request)
    with db.session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        check_kind_lang(kind=kind, lang=lang)  # before the blast radius is computed
        if format not in DOWNLOADS:
            raise InvalidInput(f"unknown format {format!r} (choose md or pdf)")
        found = incident_concerning(session, who.account.company_id, incident)
        company = company_ref(session, who.account.company_id)
    facts = load_facts(db, found.incident)
    (draft,) = draft_reports(
        facts, kind=kind, lang=lang, contact=settings_of(request).security_contact, company=company
    )
    body = draft.render(format)
    record_drafted(db, facts, [draft], fmt=format, actor=who.username)
    return Response(
        body,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{draft.filename(format)}"'},
    )


@router.get("/who-has")
def who_has_form(request: Request) -> Response:
    """The search form (nothing is looked up or recorded until it is posted)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
    return page(request, "owner_who_has.html", who=who, query="", field=None, found=None)


@router.post("/who-has")
def who_has_search(request: Request, query: str = Form(""), csrf_token: str = Form("")) -> Response:
    """Look one of the company's customers up by phone or e-mail (a recorded security event)."""
    db = db_of(request)
    with db.session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        check_csrf(request, who, csrf_token)
    assert who.account.company_id is not None
    found = who_has_customer(db, who.username, who.account.company_id, query)
    rows = [(f.card, delivery_rows(f)) for f in found]
    return page(
        request,
        "owner_who_has.html",
        who=who,
        query=query.strip(),
        field=search_field(query.strip()),
        found=rows,
    )
