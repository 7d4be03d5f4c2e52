"""A person's security-event history in the console (``/console/security/people``): found by id,
phone or e-mail through a recorded POST; the page lists the events that name them and what the ledger
says each app received."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.events.service import EventTag, record
from appwarden.ledger.queries import who_has
from console_world import ConsoleWorld, build_console_world, form_token, sign_in
from test_console_security import admin, pull


@pytest.fixture
def cw(db: Database) -> ConsoleWorld:
    return build_console_world(db)


def _person(cw: ConsoleWorld) -> tuple[str, str]:
    customer = next(c for c in cw.world.tenants[0].customers if c.phone)
    assert customer.phone is not None
    return customer.public_id, customer.phone


def test_only_a_security_admin_opens_it(client: TestClient, cw: ConsoleWorld) -> None:
    public_id, _ = _person(cw)
    assert sign_in(client, "owner0", cw.logins["owner0"]) == 303
    assert client.get("/console/security/people").status_code == 403
    assert client.get(f"/console/security/people/{public_id}").status_code == 403


def test_a_search_by_phone_in_another_spelling_is_recorded_and_leads_to_the_person(
    client: TestClient, cw: ConsoleWorld
) -> None:
    public_id, phone = _person(cw)
    admin(client, cw)
    csrf = form_token(client.get("/console/security/people").text)
    assert client.post("/console/security/people", data={"query": phone}).status_code == 403  # no CSRF
    spelled = "+81 " + phone[1:].replace("-", " ")
    found = client.post(
        "/console/security/people", data={"query": spelled, "csrf_token": csrf}, follow_redirects=False
    )
    assert found.status_code == 303 and found.headers["location"] == f"/console/security/people/{public_id}"
    with cw.db.session() as session:
        (event,) = session.scalars(
            select(SecurityEvent).where(SecurityEvent.tag == EventTag.USER_CUSTOMER_LOOKED_UP.value)
        )
        assert event.actor == "secadmin" and event.data["customers"] == [public_id]
        assert phone not in str(event.data) and spelled not in str(event.data)  # never the value
    nobody = client.post(
        "/console/security/people", data={"query": "nobody@example.invalid", "csrf_token": csrf}
    )
    assert nobody.status_code == 200 and 'data-testid="not-found"' in nobody.text
    bad = client.post("/console/security/people", data={"query": "hello", "csrf_token": csrf})
    assert bad.status_code == 422


def test_the_page_shows_events_naming_the_person_and_the_ledgers_deliveries(
    client: TestClient, cw: ConsoleWorld
) -> None:
    public_id, _ = _person(cw)
    other = cw.world.tenants[0].customers[-1].public_id
    pull(client, cw, "loyalty-stamp", 0)
    with cw.db.session() as session:
        record(
            session, EventTag.RESTRICTED_TOKEN_MINTED, actor="invoice-plus", named=[public_id], purpose="x"
        )
        record(session, EventTag.DETOKENIZE, actor="loyalty-stamp", named=[other], purpose="y")
    admin(client, cw)
    page = client.get(f"/console/security/people/{public_id}").text
    assert EventTag.RESTRICTED_TOKEN_MINTED.value in page
    assert EventTag.DETOKENIZE.value not in page  # names someone else
    received = who_has(cw.db, public_id)
    assert received  # the pull delivered this person
    for item in received:
        assert f'data-app="{item["app"]}" data-field="{item["field"]}" data-mode="{item["mode"]}"' in page
    assert client.get("/console/security/people/cus_nobody").status_code == 404
