"""The incident page's files: a leaked dump uploaded for attribution (its verdict joins the incident's
timeline), the store notices (previewed per company, then sent as ``incident notices --send`` sends
them) and the report drafts to download (``incident report``: preliminary or final, md/json/pdf, ja/en).

The upload posts to one fixed path, ``/console/security/attributions`` (the incident is a form field), so
``web.body_limit.BodyLimit`` can give it the admin upload's cap (``app.py``); the progress bar is htmx's
``htmx:xhr:progress`` event drawn by ``static/incident-upload.js`` (the CSP forbids inline script).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from appwarden.attribution.upload import attribute_upload
from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.incidents import BASE, blast_view
from appwarden.console.labels import FIELDS
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, lang_of, page, settings_of, signed_in
from appwarden.errors import AppwardenError
from appwarden.incident import service
from appwarden.incident.delivery import delivery_log
from appwarden.incident.operations import notice_drafts, report_draft, send_store_notices
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console/security", include_in_schema=False, route_class=ConsoleRoute)
SOURCES = {
    "app": N_("An app's vendor"),
    "platform": N_("The platform itself (not through an app)"),
    "unknown": N_("Unknown (too few matches)"),
}


@router.post("/attributions")
async def upload_dump(
    request: Request,
    file: Annotated[UploadFile, File()],
    incident: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Attribute the uploaded dump with the incident named, so the verdict joins its timeline. htmx gets
    the verdict fragment; without JavaScript the incident page comes back with it."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        service.get_incident(session, incident)  # 404 before the dump is read
    htmx = request.headers.get("hx-request") == "true"
    verdict, error, status = None, None, 200
    try:
        result = await attribute_upload(
            db_of(request), settings_of(request), file, incident=incident, actor=who.username
        )
        verdict = result.to_dict()
    except AppwardenError as exc:  # a broken dump: said on the page, the incident unchanged
        error, status = exc.detail, exc.status
    context: dict[str, Any] = {"verdict": verdict, "verdict_error": error, "sources": SOURCES}
    if htmx:  # the fragment swaps in even for a refusal, so the operator reads why
        return page(request, "_incident_verdict.html", who=who, **context)
    with db_of(request).session() as session:
        record = service.describe(session, service.get_incident(session, incident))
    return page(
        request, "incident.html", who=who, status=status, inc=record, fields=FIELDS,
        blast=blast_view(db_of(request), incident, lang_of(request)), killed=False, fact_error=None,
        **context,
    )  # fmt: skip


@router.get("/incidents/{incident}/notices")
def notices(request: Request, incident: str, sent: str | None = None) -> Response:
    """Each affected company's notice as it will be sent (Japanese first), and the delivery log."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        record = service.describe(session, service.get_incident(session, incident))
    drafts = notice_drafts(db_of(request), incident, settings_of(request))
    log = {row["company"]: row for row in delivery_log(db_of(request), incident)}
    return page(
        request, "incident_notices.html", who=who, inc=record, drafts=drafts, log=log,
        smtp=settings_of(request).smtp_target is not None, sent=bool(sent), error=None,
    )  # fmt: skip


@router.post("/incidents/{incident}/notices")
def send(request: Request, incident: str, csrf_token: str = Form("")) -> Response:
    """Send every notice not yet sent (each company once; a failed one is retried on the next send)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        service.get_incident(session, incident)
    try:
        send_store_notices(db_of(request), incident, settings_of(request), actor=who.username)
    except AppwardenError as exc:
        if exc.code != "smtp_not_configured":
            raise
        with db_of(request).session() as session:
            record = service.describe(session, service.get_incident(session, incident))
        return page(
            request, "incident_notices.html", who=who, status=503, inc=record,
            drafts=notice_drafts(db_of(request), incident, settings_of(request)),
            log={r["company"]: r for r in delivery_log(db_of(request), incident)}, smtp=False, sent=False,
            error=i18n.gettext(lang_of(request), "No mail server is configured (APPWARDEN_SMTP_URL)."),
        )  # fmt: skip
    return RedirectResponse(f"{BASE}/{incident}/notices?sent=1", status_code=303)


@router.post("/incidents/{incident}/report")
def report(
    request: Request,
    incident: str,
    company: str = Form(""),
    kind: str = Form("preliminary"),
    lang: str = Form("ja"),
    format: str = Form("md"),
    csrf_token: str = Form(""),
) -> Response:
    """Download one company's report draft. A form post (with the CSRF token), not a link: drafting it
    is recorded on the timeline, as ``incident report`` is."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        service.get_incident(session, incident)
    draft = report_draft(
        db_of(request), incident, settings_of(request), company=company, kind=kind, lang=lang, fmt=format,
        actor=who.username,
    )  # fmt: skip
    return Response(
        draft.body,
        media_type=draft.media_type,
        headers={"Content-Disposition": f'attachment; filename="{draft.filename}"'},
    )
