"""A vendor's person's erasure pages: the erasure requests owed to the vendor's apps (topic, company,
delivery, attestation deadline and state) and the attestation form of each delivered one (what — the
request's scope —, when, by whom). An attestation is final: the form is gone once it is made. Another
vendor's request is a 404; every form carries the session's CSRF token."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.labels import ATTESTATION_STATES
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, lang_of, page, settings_of, signed_in
from appwarden.console.service import Visitor
from appwarden.db.base import utcnow
from appwarden.errors import AppwardenError, InvalidInput, NotFound
from appwarden.marketplace import vendor_pages
from appwarden.obligations.attestation import attest, vendor_requests
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console/vendor", include_in_schema=False, route_class=ConsoleRoute)

REFUSALS = {
    "already_attested": N_("This request is attested already; an attestation cannot be changed."),
    "erasure_not_delivered": N_("This request has not been delivered yet."),
    "attestation_not_required": N_("A disclosure request needs no attestation."),
    "invalid_parameter": N_("The attestation is incomplete or its date is not possible."),
}


def _vendor_id(request: Request, who: Visitor) -> int:
    if not who.account.vendor:
        raise NotFound("this account works for no vendor", code="erasure_request_not_found")
    with db_of(request).session() as session:
        return vendor_pages.vendor_profile(session, who.account.vendor).id


def _list_page(request: Request, who: Visitor, *, status: int = 200, error: str | None = None) -> Response:
    vendor_id = _vendor_id(request, who)
    with db_of(request).session() as session:
        rows = [v.to_dict() for v in vendor_requests(session, settings_of(request), vendor_id, utcnow())]
    return page(
        request,
        "vendor_erasure.html",
        who=who,
        status=status,
        rows=rows,
        states=ATTESTATION_STATES,
        error=error,
        done=request.query_params.get("done"),
        today=utcnow().strftime("%Y-%m-%dT%H:%M"),
    )


@router.get("/erasure-requests")
def erasure_requests(request: Request) -> Response:
    """The vendor's erasure requests, newest first, with the attestation form of each one owed."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
    return _list_page(request, who)


def _when(text: str) -> datetime:
    """``erased_at`` from the form (``YYYY-MM-DDTHH:MM``, UTC unless it names an offset)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("erased_at must be a date and time", parameter="erased_at") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.post("/erasure-requests/{request_id}/attestation")
def attest_request(
    request: Request,
    request_id: str,
    erased_at: str = Form(""),
    name: str = Form(""),
    role: str = Form(""),
    statement: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    """Attest one request (final); the list again with the outcome."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        check_csrf(request, who, csrf_token)
    vendor_id = _vendor_id(request, who)
    try:
        with db_of(request).session() as session:
            attest(
                session,
                settings_of(request),
                vendor_id=vendor_id,
                request_ref=request_id,
                erased_at=_when(erased_at),
                name=name,
                role=role,
                statement=statement,
                now=utcnow(),
            )
    except AppwardenError as exc:
        if exc.status == 404:
            raise
        message = REFUSALS.get(exc.code)
        reason = f"{i18n.gettext(lang_of(request), message)} ({exc.detail})" if message else exc.detail
        return _list_page(request, who, status=exc.status, error=reason)
    return RedirectResponse("/console/vendor/erasure-requests?done=attested", status_code=303)
