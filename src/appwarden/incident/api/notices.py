"""Admin API routes for incidents: store notices (send and log) and APPI report drafts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from appwarden.web.deps import AdminDep, DatabaseDep, SettingsDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses

router = APIRouter(
    prefix="/admin/incidents", tags=["admin: incidents"], responses=problem_responses(ADMIN_AUTH)
)
NOT_FOUND = {404: "`incident_not_found`: no incident has this id."}


@router.post(
    "/{incident}/notices",
    responses=problem_responses(
        NOT_FOUND
        | {
            422: "`invalid_parameter`: `APPWARDEN_SMTP_URL` is malformed.",
            503: "`smtp_not_configured`: no SMTP server is configured.",
        }
    ),
)
def send_notices(incident: str, actor: AdminDep, db: DatabaseDep, settings: SettingsDep) -> dict[str, Any]:
    """Send the store notices over SMTP: each affected company once; failures are retried on the next call."""
    from appwarden.incident.operations import send_store_notices

    sent = send_store_notices(db, incident, settings, actor=actor)
    return sent.report | {"deliveries": sent.log}


@router.get("/{incident}/notices", responses=problem_responses(NOT_FOUND))
def notice_log(incident: str, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """The delivery log: per company, recipient, status (pending/sending/sent/failed), attempts, error."""
    from appwarden.incident.delivery import delivery_log

    return {"incident": incident, "deliveries": delivery_log(db, incident)}


@router.get(
    "/{incident}/report",
    response_model=None,
    responses={
        200: {
            "description": "The draft: JSON by default, Markdown or PDF with `format`.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/markdown": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(
            {
                404: "`incident_not_found`, or `company_not_affected`: the company had nobody exposed.",
                503: "`font_unavailable`: no Japanese font to draw `format=pdf` with.",
            }
        ),
    },
)
def report(
    incident: str,
    actor: AdminDep,
    db: DatabaseDep,
    settings: SettingsDep,
    company: Annotated[str, Query(description="The affected company (co_… or name).")],
    kind: Annotated[Literal["preliminary", "final"], Query()] = "preliminary",
    lang: Annotated[Literal["ja", "en"], Query()] = "ja",
    format: Annotated[Literal["md", "json", "pdf"], Query()] = "json",
) -> Response | dict[str, Any]:
    """One company's report draft to the Personal Information Protection Commission (recorded on the
    timeline)."""
    from appwarden.incident.context import load_facts
    from appwarden.incident.reports import draft_reports, record_drafted

    facts = load_facts(db, incident)
    (draft,) = draft_reports(facts, kind=kind, lang=lang, contact=settings.security_contact, company=company)
    body = draft.render(format)
    record_drafted(db, facts, [draft], fmt=format, actor=actor)
    if format == "json":
        return draft.data
    media = "application/pdf" if format == "pdf" else "text/markdown; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{draft.filename(format)}"'},
    )
