"""The store owner's data pages over HTTP (the real ASGI app): what an app took (figures equal the
ledger's and the obligations' service functions), the notices received, the report drafts, and who has
a customer's data. Tenancy: another company's app, incident or customer is a 404 / "not found", the
same answer as one that does not exist."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.incident.context import load_facts
from appwarden.incident.delivery import send_notices
from appwarden.incident.notices import draft_notices
from appwarden.incident.service import get_incident, timeline
from appwarden.ledger.activity import Bucket, deliveries
from appwarden.ledger.exposure import received_by_company
from appwarden.ledger.queries import who_has
from appwarden.obligations.service import holdings
from conftest import OWNER_PASSWORD
from console_world import ConsoleWorld, build_console_world, form_token, sign_in
from test_blast_radius import deliver, incident_for

CONTACT = "security@appwarden.example"


class FakeSmtp:
    """Stands in for the SMTP server at the edge: keeps what it is handed."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send_message(self, message: EmailMessage) -> None:
        self.sent.append(message)

    def quit(self) -> None:
        pass


@pytest.fixture
def cw(db: Database) -> ConsoleWorld:
    """Company 0 got names and phones from invoice-plus (yesterday and today), company 1 got other
    counts from invoice-plus: each owner must see only its own."""
    world = build_console_world(db)
    t0, t1 = world.world.tenants
    yesterday = utcnow() - timedelta(days=1)
    deliver(world.world, "invoice-plus", t0, {("name", "raw"): range(3)}, at=yesterday)
    deliver(world.world, "invoice-plus", t0, {("name", "raw"): range(8), ("phone", "masked"): range(5)})
    deliver(world.world, "invoice-plus", t1, {("name", "raw"): range(11)})
    return world


def owner(client: TestClient, username: str = "owner0") -> TestClient:
    assert sign_in(client, username, OWNER_PASSWORD) == 303
    return client


def incident_with_notice(cw: ConsoleWorld, db: Database) -> str:
    """An incident about invoice-plus, its notices sent (to companies 0 and 1)."""
    ref = incident_for(cw.world, "invoice-plus")
    drafts = draft_notices(load_facts(db, ref), contact=CONTACT)
    report = send_notices(
        db,
        drafts,
        incident=ref,
        smtp_url="smtp://127.0.0.1:2525",
        sender=CONTACT,
        actor="test",
        connector=lambda target: FakeSmtp(),  # type: ignore[arg-type,return-value]
    )
    assert len(report.sent) == 2
    return ref


def cells(html: str, table: str) -> list[tuple[str, ...]]:
    body = html.split(f'data-testid="{table}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*data-field=\"([^\"]+)\"(?: data-mode=\"([^\"]+)\")?>(.*?)</tr>", body, re.S)
    return [
        (f, m, *(re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rest, re.S)))
        for f, m, rest in rows
    ]


def test_app_page_shows_exactly_the_ledgers_figures_for_the_owners_company(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    owner(client)
    company_id = cw.world.tenants[0].company.id
    app_id = cw.world.apps["invoice-plus"][0]
    html = client.get(f"/console/apps/{cw.connections[('invoice-plus', 0)]}").text
    with db.session() as session:
        expected = received_by_company(session, app_id, company_id=company_id)
        held = holdings(
            session, app_ref="invoice-plus", company_ref=cw.world.tenants[0].company.public_id, now=utcnow()
        )
        now = utcnow()
        days = deliveries(
            session,
            since=now - timedelta(days=29),
            until=now,
            bucket=Bucket.DAY,
            app_id=app_id,
            company_id=company_id,
        )
    shown = cells(html, "received")
    assert [(f, m, int(p.replace(",", ""))) for f, m, _, _, p, *_ in shown] == [
        (r.field, r.mode, r.people) for r in expected
    ]
    assert {(r.field, r.mode, r.people) for r in expected} == {("name", "raw", 8), ("phone", "masked", 5)}
    shown_held = cells(html, "holdings")
    assert [(f, int(may), int(gone)) for f, _, _, may, gone, _ in shown_held] == [
        (h.field, h.may_hold, h.should_not_hold) for h in held
    ]
    # The chart: thirty days, the last two with the owner's deliveries (3, then 8 people), not company 1's 11.
    chart = html.split('data-testid="deliveries-chart"', 1)[1].split("</figure>", 1)[0]
    assert chart.count("<rect") == 30 == len(days)
    tips = re.findall(r"<rect[^>]*><title>([^<]+)</title>", chart)
    assert [int(t.split(": ")[1].split(" ")[0].replace(",", "")) for t in tips] == [d.people for d in days]
    assert [d.people for d in days][-2:] == [3, 8]


def test_another_companys_app_is_not_found(client: TestClient, cw: ConsoleWorld) -> None:
    owner(client)
    other = client.get(f"/console/apps/{cw.connections[('invoice-plus', 1)]}")
    missing = client.get("/console/apps/conn_does_not_exist")
    assert other.status_code == missing.status_code == 404
    assert "11" not in other.text.split("<main>", 1)[1]


def test_pages_are_for_store_owners_only(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "vendor-a-dev", cw.logins["vendor-a-dev"]) == 303
    for path in ("/console/notices", "/console/reports", "/console/who-has"):
        assert client.get(path).status_code == 403


def test_notices_received_each_with_its_text_and_only_the_companys_own(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    ref = incident_with_notice(cw, db)
    owner(client)
    listing = client.get("/console/notices")
    assert listing.status_code == 200 and f"/console/notices/{ref}" in listing.text
    assert "送信済み" in listing.text  # sent, in Japanese by default
    text = client.get(f"/console/notices/{ref}")
    assert text.status_code == 200
    (draft,) = [
        d
        for d in draft_notices(load_facts(db, ref), contact=CONTACT)
        if d.company.id == cw.world.tenants[0].company.public_id
    ]
    ja = re.search(r'data-testid="notice-ja">(.*?)</pre>', text.text, re.S)
    assert ja is not None
    # The same text as the notice drafted for company 0 (HTML-escaped), dated as logged.
    first_line = draft.markdown_ja.splitlines()[0]
    assert first_line.replace("&", "&amp;") in ja.group(1)
    assert "Company 0" in ja.group(1) and "Company 1" not in ja.group(1)


def test_a_company_without_the_notice_gets_not_found(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    t0 = cw.world.tenants[0]
    t1 = cw.world.tenants[1]
    deliver(cw.world, "loyalty-stamp", t0, {("name", "masked"): range(4)})
    # Company 1 got only pseudonym tokens from loyalty-stamp: nobody exposed, so not its incident.
    deliver(cw.world, "loyalty-stamp", t1, {("phone", "token"): range(5)})
    ref = incident_for(cw.world, "loyalty-stamp")
    drafts = draft_notices(load_facts(db, ref), contact=CONTACT)
    assert [d.company.id for d in drafts] == [t0.company.public_id]
    send_notices(db, drafts, incident=ref, smtp_url="smtp://127.0.0.1:2525", sender=CONTACT, actor="test",
                 connector=lambda target: FakeSmtp())  # type: ignore[arg-type,return-value]  # fmt: skip
    owner(client, "owner1")
    assert ref not in client.get("/console/notices").text
    assert client.get(f"/console/notices/{ref}").status_code == 404
    assert client.get("/console/notices/inc_nothing").status_code == 404
    assert ref not in client.get("/console/reports").text
    assert client.get(f"/console/reports/{ref}/download?kind=preliminary&format=md").status_code == 404


def test_report_draft_downloads_for_the_company_and_is_recorded(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    ref = incident_for(cw.world, "invoice-plus")
    owner(client)
    listing = client.get("/console/reports")
    assert f"/console/reports/{ref}/download?kind=final&amp;lang=ja&amp;format=pdf" in listing.text
    got = client.get(f"/console/reports/{ref}/download?kind=preliminary&lang=ja&format=md")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/markdown")
    company = cw.world.tenants[0].company.public_id
    assert f'filename="report-preliminary-{company}-ja.md"' in got.headers["content-disposition"]
    body = got.text
    assert "Company 0" in body and "Company 1" not in body
    assert "8" in body  # eight of company 0's people had their name delivered raw
    with db.session() as session:
        entries = [e for e in timeline(session, get_incident(session, ref)) if e.kind == "report"]
        assert [(e.actor, e.data["companies"]) for e in entries] == [("owner0", [company])]
    pdf = client.get(f"/console/reports/{ref}/download?kind=final&lang=ja&format=pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert client.get(f"/console/reports/{ref}/download?kind=nope").status_code == 422
    assert client.get(f"/console/reports/{ref}/download?format=json").status_code == 422


def lookups(db: Database) -> list[SecurityEvent]:
    with db.session() as session:
        rows = session.scalars(select(SecurityEvent).where(SecurityEvent.tag == "user:customer:looked-up"))
        return list(rows)


def search(client: TestClient, query: str) -> Any:
    token = form_token(client.get("/console/who-has").text)
    return client.post("/console/who-has", data={"query": query, "csrf_token": token})


def test_who_has_finds_the_companys_customer_by_phone_or_email_normalised(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    owner(client)
    customer = cw.world.tenants[0].customers[1]
    assert customer.phone == "090-0000-0001"
    expected = who_has(db, customer.public_id)
    assert {(r["app"], r["field"], r["mode"]) for r in expected} == {
        ("invoice-plus", "name", "raw"),
        ("invoice-plus", "phone", "masked"),
    }
    for query in ("09000000001", "０９０-００００-０００１", "+81 90 0000 0001"):
        page = search(client, query)
        assert page.status_code == 200
        assert customer.public_id in page.text
        rows = re.findall(r'data-testid="who-has-row"><td><code>([^<]+)</code>', page.text)
        assert rows == [r["app"] for r in expected]
        assert page.text.count('data-testid="who-has-row"') == len(expected)
    by_mail = search(client, "TARO0.1@Example.JP")
    assert customer.public_id in by_mail.text
    events = lookups(db)
    assert len(events) == 4
    assert {e.actor for e in events} == {"owner0"}
    assert events[-1].data["field"] == "email" and events[-1].data["customers"] == [customer.public_id]
    assert all("0001" not in str(e.data) and "taro" not in str(e.data).lower() for e in events)


def test_who_has_never_finds_another_companys_customer(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    owner(client)
    theirs = cw.world.tenants[1].customers[1]  # delivered to invoice-plus (company 1's deliveries)
    assert theirs.phone is not None
    other = search(client, theirs.phone)
    nobody = search(client, "090-9999-9999")
    assert theirs.public_id not in other.text
    assert 'data-testid="not-found"' in other.text and 'data-testid="not-found"' in nobody.text
    strip = lambda html: html.split('data-testid="who-has-result"', 1)[1]  # noqa: E731
    assert strip(other.text) == strip(nobody.text)
    assert [e.data["customers"] for e in lookups(db)] == [[], []]


def test_who_has_search_needs_the_form_token_and_the_form_alone_records_nothing(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    owner(client)
    assert client.get("/console/who-has").status_code == 200
    assert lookups(db) == []
    refused = client.post("/console/who-has", data={"query": "090-0000-0001", "csrf_token": "forged"})
    assert refused.status_code == 403
    assert lookups(db) == []
