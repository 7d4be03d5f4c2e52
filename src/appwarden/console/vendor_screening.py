"""A vendor's person's screening pages: register an app (its client secret shown once), declare what
the draft version asks for (scopes with justifications, volume, retention), answer the questionnaire,
upload evidence, submit for review, see the review outcome and the next audit, rotate the client secret
(shown once) and read the monitor's alerts about the vendor's apps.

Every path is looked up within the person's vendor (another vendor's app is a 404), every form carries
the session's CSRF token, and every change is recorded with the person's username as ``actor`` (the
owner packages' functions do it). A refused change shows the page again with the reason."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.labels import LISTING_STATES
from appwarden.console.pages import (
    ConsoleRoute,
    check_csrf,
    db_of,
    lang_of,
    page,
    settings_of,
    signed_in,
)
from appwarden.console.reviews import VERSION_STATES
from appwarden.console.service import Visitor
from appwarden.db.base import utcnow
from appwarden.errors import AppwardenError, InvalidInput, NotFound
from appwarden.marketplace import vendor_pages
from appwarden.marketplace.scopes import FieldScope, parse_scope
from appwarden.marketplace.standing import find
from appwarden.marketplace.vendor_views import apps_of
from appwarden.monitor.service import AlertState, describe, list_alerts
from appwarden.obligations.endpoint_check import endpoint_check_of
from appwarden.obligations.erasure import set_own_endpoint
from appwarden.platform.roles import Role
from appwarden.screening import console_pages
from appwarden.screening.questionnaire import BY_KEY
from appwarden.screening.vocabulary import EvidenceKind

router = APIRouter(prefix="/console/vendor", include_in_schema=False, route_class=ConsoleRoute)


async def form_items(request: Request) -> list[tuple[str, str]]:
    """The posted form's text fields, in order (repeated names kept)."""
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


FormDep = Annotated[list[tuple[str, str]], Depends(form_items)]


def _vendor(who: Visitor) -> str:
    if not who.account.vendor:
        raise NotFound("this account works for no vendor", code="app_not_found")
    return who.account.vendor


def _fields(requested: list[dict[str, str]]) -> list[str]:
    """The customer fields the version asks for (each needs a retention declaration)."""
    parsed = [parse_scope(item["scope"]) for item in requested]
    return [p.field for p in parsed if isinstance(p, FieldScope)]


def _screening_page(
    request: Request,
    slug: str,
    *,
    status: int = 200,
    error: str | None = None,
    secret: str | None = None,
    endpoint_secret: str | None = None,
) -> Response:
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        profile = vendor_pages.vendor_profile(session, _vendor(who))
        view = console_pages.vendor_status(session, profile, slug)
        endpoint_ready, endpoint_reason = endpoint_check_of(session, find(session, view["app"]["slug"]).id)
    return page(
        request,
        "vendor_screening.html",
        who=who,
        status=status,
        view=view,
        error=error,
        secret=secret,
        endpoint_secret=endpoint_secret,
        endpoint_ready=endpoint_ready,
        endpoint_reason=endpoint_reason,
        done=request.query_params.get("done"),
        draft=view["version"]["status"] == "draft",
        kinds=[k.value for k in EvidenceKind],
        fields=_fields(view["version"]["requested"]),
        states=LISTING_STATES,
        version_states=VERSION_STATES,
        max_bytes=settings_of(request).evidence_max_bytes,
    )


# Why a change was refused, in the person's language; the English detail follows (it names the field,
# scope or what is missing).
REFUSALS = {
    "version_frozen": N_("This version is submitted or decided: it no longer changes."),
    "incomplete": N_("The version is not complete yet."),
    "justification_required": N_("Each scope needs a justification of at least 20 characters."),
    "invalid_scope": N_("A scope is not valid or is listed twice."),
    "answer_too_short": N_("Each answer needs at least 10 characters."),
    "date_required": N_("The assessment needs its date."),
    "date_in_future": N_("The assessment's date is in the future."),
    "invalid_volume": N_("Volume figures must be whole numbers, the average no more than the peak."),
    "invalid_retention": N_("Retention needs 0-3650 days and a purpose for each requested field."),
    "payload_too_large": N_("The file is over the evidence size limit."),
    "unsupported_media_type": N_("Evidence must be a PDF, PNG, JPEG or text file."),
    "empty_file": N_("Choose a file to upload."),
    "app_exists": N_("An app with this slug already exists."),
    "invalid_parameter": N_("The value is not valid."),
}


def _reason(request: Request, exc: AppwardenError) -> str:
    message = REFUSALS.get(exc.code)
    return f"{i18n.gettext(lang_of(request), message)} ({exc.detail})" if message else exc.detail


def _refused(request: Request, slug: str, exc: AppwardenError) -> Response:
    if exc.status == 404 or exc.code in ("csrf_failed", "wrong_role"):
        raise exc
    return _screening_page(request, slug, status=exc.status, error=_reason(request, exc))


def _done(slug: str, what: str) -> Response:
    return RedirectResponse(f"/console/vendor/apps/{slug}/screening?done={what}", status_code=303)


@router.get("/apps/new")
def new_app_form(request: Request) -> Response:
    """The form to register a new app."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
    return page(request, "vendor_new_app.html", who=who, error=None, slug="", name="", uris="")


@router.post("/apps/new")
def register(
    request: Request,
    slug: str = Form(""),
    name: str = Form(""),
    redirect_uris: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    """Register a draft app; its client secret is shown on this one answer only."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        check_csrf(request, who, csrf_token)
    uris = [u.strip() for u in redirect_uris.splitlines() if u.strip()]
    try:
        with db_of(request).session() as session:
            new = vendor_pages.register(
                session, _vendor(who), slug=slug, name=name, redirect_uris=uris, actor=who.username
            )
    except AppwardenError as exc:
        return page(
            request,
            "vendor_new_app.html",
            who=who,
            status=exc.status,
            error=_reason(request, exc),
            slug=slug,
            name=name,
            uris=redirect_uris,
        )
    return _screening_page(request, new.slug, status=201, secret=new.client_secret)


@router.get("/apps/{slug}/screening")
def screening(request: Request, slug: str) -> Response:
    """The app's draft or latest version: what it asks for, what is missing, the review, the audit."""
    return _screening_page(request, slug)


def _change(request: Request, slug: str, csrf_token: str | None, what: str, change: Any) -> Response:
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        check_csrf(request, who, csrf_token)
    try:
        with db_of(request).session() as session:
            change(session, who, _vendor(who))
    except AppwardenError as exc:
        return _refused(request, slug, exc)
    return _done(slug, what)


@router.post("/apps/{slug}/scopes")
def request_scopes(request: Request, slug: str, form: FormDep) -> Response:
    """The scopes the draft asks for; each row a scope and its justification (blank rows skipped)."""
    values = dict(form)
    scopes = [v for k, v in form if k == "scope"]
    reasons = [v for k, v in form if k == "justification"]
    asked = [
        {"scope": s.strip(), "justification": j} for s, j in zip(scopes, reasons, strict=False) if s.strip()
    ]
    return _change(
        request,
        slug,
        values.get("csrf_token"),
        "scopes",
        lambda session, who, vendor: vendor_pages.request_scopes(
            session, vendor, slug, asked, actor=who.username
        ),
    )


def _count(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number", code="invalid_volume") from None


@router.post("/apps/{slug}/volume")
def declare_volume(request: Request, slug: str, form: FormDep) -> Response:
    """People per day and requests per minute (average, peak) per company, and whether it syncs all."""
    values = dict(form)

    def change(session: Any, who: Visitor, vendor: str) -> None:
        volume = {
            "people_per_day": {
                "average": _count(values.get("people_average", ""), "people per day (average)"),
                "peak": _count(values.get("people_peak", ""), "people per day (peak)"),
            },
            "requests_per_minute": {
                "average": _count(values.get("requests_average", ""), "requests per minute (average)"),
                "peak": _count(values.get("requests_peak", ""), "requests per minute (peak)"),
            },
            "full_sync": values.get("full_sync") == "on",
        }
        vendor_pages.declare_volume(session, vendor, slug, volume, actor=who.username)

    return _change(request, slug, values.get("csrf_token"), "volume", change)


@router.post("/apps/{slug}/retention")
def declare_retention(request: Request, slug: str, form: FormDep) -> Response:
    """Retention (days) and purpose for each requested customer field (``days_<field>``)."""
    values = dict(form)

    def change(session: Any, who: Visitor, vendor: str) -> None:
        retention = {
            key.removeprefix("days_"): {
                "days": _count(value, f"retention of {key.removeprefix('days_')}"),
                "purpose": values.get("purpose_" + key.removeprefix("days_"), ""),
            }
            for key, value in form
            if key.startswith("days_")
        }
        vendor_pages.declare_retention(session, vendor, slug, retention, actor=who.username)

    return _change(request, slug, values.get("csrf_token"), "retention", change)


@router.post("/apps/{slug}/questionnaire")
def answer(request: Request, slug: str, form: FormDep) -> Response:
    """Answers by question (``answer_<key>``, ``date_<key>`` for a dated one); blank ones left as they are."""
    values = dict(form)

    def change(session: Any, who: Visitor, vendor: str) -> None:
        answers: dict[str, dict[str, Any]] = {}
        for key, text in form:
            question = key.removeprefix("answer_")
            if not key.startswith("answer_") or not text.strip() or question not in BY_KEY:
                continue
            raw_date = values.get("date_" + question, "").strip()
            try:
                when = dt.date.fromisoformat(raw_date) if raw_date else None
            except ValueError:
                raise InvalidInput(f"{question}: the date must be YYYY-MM-DD", code="date_required") from None
            answers[question] = {"answer": text, "date": when}
        if not answers:
            raise InvalidInput("no answer given", code="answer_too_short")
        profile = vendor_pages.vendor_profile(session, vendor)
        console_pages.answer(session, profile, slug, answers, actor=who.username, now=utcnow())

    return _change(request, slug, values.get("csrf_token"), "questionnaire", change)


@router.post("/evidence")
def upload_evidence(
    request: Request,
    app: str = Form(""),
    kind: str = Form(""),
    csrf_token: str = Form(""),
    file: UploadFile | None = File(None),
) -> Response:
    """An evidence file for the app's draft version (multipart; capped at the evidence size limit, its
    type judged by its bytes)."""
    settings = settings_of(request)
    # One byte past the cap is enough for screening to refuse it; the rest is never read.
    content = file.file.read(settings.evidence_max_bytes + 1) if file is not None else b""

    def change(session: Any, who: Visitor, vendor: str) -> None:
        if file is None:
            raise InvalidInput("choose a file to upload", code="empty_file")
        console_pages.attach(
            session,
            vendor_pages.vendor_profile(session, vendor),
            app,
            kind=kind,
            filename=file.filename or "evidence",
            content=content,
            data_dir=settings.ensure_data_dir(),
            max_bytes=settings.evidence_max_bytes,
            actor=who.username,
        )

    return _change(request, app, csrf_token, "evidence", change)


@router.post("/apps/{slug}/submit")
def submit(request: Request, slug: str, csrf_token: str = Form("")) -> Response:
    """Submit the draft version for review (what is missing is shown otherwise)."""
    return _change(
        request,
        slug,
        csrf_token,
        "submitted",
        lambda session, who, vendor: console_pages.submit(
            session, vendor_pages.vendor_profile(session, vendor), slug, actor=who.username, now=utcnow()
        ),
    )


@router.post("/apps/{slug}/rotate-secret")
def rotate_secret(request: Request, slug: str, csrf_token: str = Form("")) -> Response:
    """A new client secret, shown on this answer only; the old one stops working now."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        check_csrf(request, who, csrf_token)
    try:
        with db_of(request).session() as session:
            new = vendor_pages.rotate_secret(session, _vendor(who), slug, actor=who.username)
    except AppwardenError as exc:
        return _refused(request, slug, exc)
    return _screening_page(request, slug, secret=new.client_secret)


@router.post("/apps/{slug}/erasure-endpoint")
def erasure_endpoint(
    request: Request, slug: str, url: str = Form(""), csrf_token: str = Form("")
) -> Response:
    """Register (or replace) where the app receives erasure requests; the signing secret is shown on
    this answer only, and the review's check must pass (again) before the app is listed."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        check_csrf(request, who, csrf_token)
    try:
        with db_of(request).session() as session:
            profile = vendor_pages.vendor_profile(session, _vendor(who))
            _, secret = set_own_endpoint(
                session, settings_of(request), profile.id, slug, url.strip(), now=utcnow()
            )
    except AppwardenError as exc:
        return _refused(request, slug, exc)
    return _screening_page(request, slug, endpoint_secret=secret)


@router.get("/alerts")
def alerts(request: Request) -> Response:
    """The monitor's alerts about the vendor's own apps, newest first."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        found = []
        for app in apps_of(session, who.account.vendor) if who.account.vendor else []:
            found += describe(session, list_alerts(session, app_ref=app.slug, state=AlertState.ALL))
    found.sort(key=lambda a: a["alert"]["raised_at"], reverse=True)
    return page(request, "vendor_alerts.html", who=who, alerts=found)
