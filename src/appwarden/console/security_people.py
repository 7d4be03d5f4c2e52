"""One person's security-event history as the security team sees it (``/console/security/people``).

A person is found by platform id, phone number or e-mail address (normalised, through the blind index:
``obligations.service.customers_by``); the search is a POST with the CSRF token, because a phone number
or an address must stay out of URLs and logs, and it is recorded (``user:customer:looked-up``, with the
customers found, never the value). A person's page (``/console/security/people/{cus_…}``, a
pseudonymous id) shows the security events that name them (``events.service.naming``: restricted
tokens and detokenizations naming them, earlier lookups) and every app, field and mode the ledger says
received their data (``ledger.queries.who_has_in``).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.labels import who_has_rows
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, lang_of, page, signed_in
from appwarden.console.security_home import event_rows
from appwarden.errors import InvalidInput, NotFound
from appwarden.events.service import EventTag, naming, record
from appwarden.ledger.queries import who_has_in
from appwarden.obligations.service import customers_by
from appwarden.platform.directory import company_names, customer_cards, customer_of
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console/security/people", include_in_schema=False, route_class=ConsoleRoute)
EVENTS_SHOWN = 200
MAX_QUERY = 320
NO_PERSON = N_("There is no such customer.")


@router.get("")
def search_form(request: Request) -> Response:
    """The search form."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
    return page(request, "security_people.html", who=who, query="", matches=None, bad=False)


@router.post("")
def search(
    request: Request, query: str = Form("", max_length=MAX_QUERY), csrf_token: str | None = Form(None)
) -> Response:
    """Find the people ``query`` names; one person goes straight to their page."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
        try:
            ids = customers_by(session, query)
        except InvalidInput:
            return page(
                request, "security_people.html", who=who, query=query, matches=None, bad=True, status=422
            )
        cards = sorted(customer_cards(session, ids).values(), key=lambda c: c.public_id)
        record(
            session,
            EventTag.USER_CUSTOMER_LOOKED_UP,
            actor=who.username,
            field="id" if query.strip().startswith("cus_") else ("email" if "@" in query else "phone"),
            customers=[c.public_id for c in cards],
            via="console",
        )
    if len(cards) == 1:
        return RedirectResponse(f"/console/security/people/{cards[0].public_id}", status_code=303)
    return page(request, "security_people.html", who=who, query=query, matches=cards, bad=False)


@router.get("/{public_id}")
def person(request: Request, public_id: str) -> Response:
    """One person's events and deliveries; an unknown id is a 404 page."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        ref = customer_of(session, public_id)
        if ref is None:
            raise NotFound(i18n.gettext(lang_of(request), NO_PERSON), code="security_person_not_found")
        card = customer_cards(session, [ref.id])[ref.id]
        company = company_names(session, [ref.company_id])[ref.company_id]
        rows = event_rows(session, naming(session, public_id, limit=EVENTS_SHOWN))
        received = who_has_rows(who_has_in(session, public_id))
    return page(
        request,
        "security_person.html",
        who=who,
        card=card,
        company=company,
        rows=rows,
        received=received,
        limit=EVENTS_SHOWN,
    )
