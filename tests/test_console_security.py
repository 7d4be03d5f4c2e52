"""The security team's console pages over HTTP (the real ASGI app): the overview (apps by risk, open
alerts and incidents, deliveries per hour), an app's page, the security-event history pages, and the
restrict / relist forms; only a security admin may open them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.events.service import EventTag, history, record
from appwarden.incident import service as incidents
from appwarden.ledger.activity import Bucket, deliveries
from appwarden.ledger.exposure import received_by_company
from appwarden.marketplace import facts, standing
from appwarden.marketplace import service as marketplace
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.monitor import service as monitor
from appwarden.monitor.policy import Detector, Severity
from appwarden.monitor.service import Finding
from appwarden.obligations.service import holdings
from console_world import ConsoleWorld, build_console_world, form_token, sign_in

PAGES = [
    "/console/security",
    "/console/security/apps/invoice-plus",
    "/console/security/events",
    "/console/security/events?app=invoice-plus",
]
# A bar's tooltip: "<start>: <entries> deliveries, <people> people" (English) inside <rect><title>.
BAR = re.compile(r"<rect [^>]*><title>([^<]*)</title></rect>")
NUMBERS = re.compile(r"(\d+) deliveries, (\d+) people")


@pytest.fixture
def cw(db: Database) -> ConsoleWorld:
    return build_console_world(db)


def english(client: TestClient) -> None:
    token = form_token(client.get("/console/login").text)
    client.post("/console/lang", data={"lang": "en", "csrf_token": token, "next": "/console/login"})


def admin(client: TestClient, cw: ConsoleWorld) -> None:
    english(client)
    assert sign_in(client, "secadmin", cw.logins["secadmin"]) == 303


def pull(client: TestClient, cw: ConsoleWorld, slug: str, tenant: int, times: int = 1) -> None:
    """Calls of the data API that the ledger records as deliveries."""
    bearer = {"Authorization": f"Bearer {cw.tokens[(slug, tenant)]}"}
    for _ in range(times):
        assert client.get("/v1/customers", headers=bearer).status_code == 200


def bars(html: str) -> list[tuple[int, int]]:
    found = []
    for title in BAR.findall(html):
        match = NUMBERS.search(title)
        assert match is not None, title
        found.append((int(match.group(1)), int(match.group(2))))
    return found


def restricted_events(db: Database) -> list[SecurityEvent]:
    with db.session() as session:
        query = select(SecurityEvent).where(SecurityEvent.tag == "app:listing:restricted")
        return list(session.scalars(query))


@pytest.mark.parametrize("username", ["reviewer1", "owner0", "vendor-a-dev"])
def test_other_roles_get_403_on_every_security_page(
    client: TestClient, cw: ConsoleWorld, username: str
) -> None:
    assert sign_in(client, username, cw.logins[username]) == 303
    company = cw.world.tenants[0].company.public_id
    for path in [*PAGES, f"/console/security/companies/{company}/events"]:
        assert client.get(path).status_code == 403, path
    csrf = form_token(client.get("/console").text)
    refused = client.post(
        "/console/security/apps/invoice-plus/restrict", data={"csrf_token": csrf, "policy": "pause"}
    )
    assert refused.status_code == 403
    assert restricted_events(cw.db) == []


def test_without_a_session_the_pages_send_to_the_login_form(client: TestClient, cw: ConsoleWorld) -> None:
    response = client.get("/console/security/apps/invoice-plus", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/console/login?next=")


def test_the_overview_shows_the_services_figures(client: TestClient, cw: ConsoleWorld) -> None:
    pull(client, cw, "invoice-plus", 0, times=3)
    pull(client, cw, "loyalty-stamp", 0)
    admin(client, cw)
    html = client.get("/console/security").text
    now = utcnow()
    with cw.db.session() as session:
        views = facts.app_views(session, marketplace.list_apps(session), now)
        hourly = deliveries(session, since=now - timedelta(hours=47), until=now)
    # Every app, riskiest first, each with the score the app views give it.
    shown = re.findall(r'data-testid="risk-([^"]+)">([0-9.]+)<', html)
    assert shown == [(v["slug"], f"{v['risk']['score']:.2f}") for v in views]
    assert len(shown) == 5
    vendor_row = re.search(r'<tr data-slug="vendor-a-app">.*?</tr>', html, re.S)
    assert vendor_row is not None and "<td>Vendor A</td>" in vendor_row.group(0)
    # The chart: 48 hourly bars, each the ledger's entries and people of its hour.
    assert bars(html) == [(a.entries, a.people) for a in hourly]
    assert len(hourly) == 48 and sum(a.entries for a in hourly) == 4
    assert "4 in all" in html


def test_the_app_page_shows_the_services_figures(client: TestClient, cw: ConsoleWorld) -> None:
    pull(client, cw, "invoice-plus", 0, times=2)
    pull(client, cw, "invoice-plus", 1)
    admin(client, cw)
    response = client.get("/console/security/apps/invoice-plus")
    assert response.status_code == 200
    html = response.text
    app_id = cw.world.apps["invoice-plus"][0]
    now = utcnow()
    with cw.db.session() as session:
        daily = deliveries(
            session, since=now - timedelta(days=29), until=now, bucket=Bucket.DAY, app_id=app_id
        )
        received = received_by_company(session, app_id)
        view = facts.app_view(session, marketplace.get_app(session, "invoice-plus"), now)
    assert bars(html) == [(a.entries, a.people) for a in daily]
    assert len(daily) == 30 and sum(a.entries for a in daily) == 3
    assert f'data-testid="risk">{view["risk"]["score"]:.2f}<' in html
    assert f'data-testid="tier">{view["tier"]}<' in html
    # People per company and field, as the ledger counts them.
    rows = re.findall(r'data-key="([^"]+)">.*?<td class="people">(\d+)</td>', html, re.S)
    assert received and sorted(rows) == sorted(
        (f"{company}:{r.field}:{r.mode}", str(r.people))
        for r in received
        for company in [next(t.company.public_id for t in cw.world.tenants if t.company.id == r.company_id)]
    )
    # Beside each field held as a value, what the vendor may and should no longer hold of it.
    with cw.db.session() as session:
        owed = holdings(session, app_ref="invoice-plus", now=utcnow())
    pairs = re.findall(
        r'data-key="([^"]+):(?:raw|masked)">.*?'
        r'<td class="may">(\d+)</td>\s*<td class="should-not">(\d+)</td>',
        html,
        re.S,
    )
    assert owed and sorted(pairs) == sorted(
        (f"{h.company}:{h.field}", str(h.may_hold), str(h.should_not_hold)) for h in owed
    )
    # Both companies' connections, with a link to each company's history.
    for tenant in cw.world.tenants:
        assert f"/console/security/companies/{tenant.company.public_id}/events" in html
    assert "/console/security/events?app=invoice-plus" in html


def test_an_app_that_does_not_exist_is_a_404_page(client: TestClient, cw: ConsoleWorld) -> None:
    admin(client, cw)
    response = client.get("/console/security/apps/no-such-app")
    assert response.status_code == 404 and "There is no such app." in response.text
    company = client.get("/console/security/companies/cmp_nope/events")
    assert company.status_code == 404 and "There is no such company." in company.text


def test_restrict_needs_the_csrf_token(client: TestClient, cw: ConsoleWorld) -> None:
    admin(client, cw)
    url = "/console/security/apps/invoice-plus/restrict"
    assert client.post(url, data={"policy": "pause", "reason": "x"}).status_code == 403
    assert (
        client.post(url, data={"policy": "pause", "reason": "x", "csrf_token": "forged"}).status_code == 403
    )
    assert restricted_events(cw.db) == []
    with cw.db.session() as session:
        assert standing.find(session, "invoice-plus").listing_state == "listed"
    pull(client, cw, "invoice-plus", 0)


def test_restrict_is_recorded_with_the_persons_name_and_cuts_the_app_off(
    client: TestClient, cw: ConsoleWorld
) -> None:
    admin(client, cw)
    csrf = form_token(client.get("/console/security/apps/invoice-plus").text)
    done = client.post(
        "/console/security/apps/invoice-plus/restrict",
        data={"csrf_token": csrf, "policy": "pause", "reason": "suspicious night pulls"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    (event,) = restricted_events(cw.db)
    assert event.actor == "secadmin" and event.data["policy"] == "pause"
    assert event.data["reason"] == "suspicious night pulls"
    bearer = {"Authorization": f"Bearer {cw.tokens[('invoice-plus', 0)]}"}
    assert client.get("/v1/customers", headers=bearer).status_code == 403  # paused: every call refused
    page = client.get(done.headers["location"]).text
    assert "The app is restricted." in page and 'data-testid="relist-form"' in page
    assert "app:listing:restricted" in page  # its lifecycle history
    # Relist: a reason is required, then it is recorded with the person's name too.
    assert (
        client.post(
            "/console/security/apps/invoice-plus/relist", data={"csrf_token": csrf, "reason": " "}
        ).status_code
        == 422
    )
    relisted = client.post(
        "/console/security/apps/invoice-plus/relist",
        data={"csrf_token": csrf, "reason": "audit passed"},
        follow_redirects=False,
    )
    assert relisted.status_code == 303
    with cw.db.session() as session:
        app = standing.find(session, "invoice-plus")
        (latest, *_) = history(session, app_id=app.id)
    assert app.listing_state == "listed"
    assert latest.tag == "app:listing:relisted" and latest.actor == "secadmin"
    assert client.get("/v1/customers", headers=bearer).status_code == 200


def test_a_delisted_app_cannot_be_restricted(client: TestClient, cw: ConsoleWorld) -> None:
    with cw.db.session() as session:
        standing.transition(session, cw.world.apps["booking-go"][0], LifecycleState.DELISTED, actor="test")
    admin(client, cw)
    page = client.get("/console/security/apps/booking-go").text
    assert 'data-testid="restrict-form"' not in page and 'data-testid="relist-form"' not in page
    csrf = form_token(page)
    refused = client.post(
        "/console/security/apps/booking-go/restrict", data={"csrf_token": csrf, "policy": "token"}
    )
    assert refused.status_code == 409 and restricted_events(cw.db) == []


def test_the_history_pages_filter_by_app_and_company(client: TestClient, cw: ConsoleWorld) -> None:
    company, other = (t.company for t in cw.world.tenants)
    app_id = cw.world.apps["invoice-plus"][0]
    with cw.db.session() as session:  # events of the app and a company, of the company alone, of another
        record(session, EventTag.CONNECTION_CREATED, actor="owner0", app_id=app_id, company_id=company.id)
        record(session, EventTag.USER_LOGIN, actor="owner0", company_id=company.id)
        record(session, EventTag.CONNECTION_CREATED, actor="owner1", app_id=app_id, company_id=other.id)
    admin(client, cw)
    with cw.db.session() as session:
        of_app = history(session, app_id=app_id)
        of_company = history(session, company_id=company.id)
        of_both = history(session, app_id=app_id, company_id=company.id)
    assert of_app and of_company and len(of_both) < len(of_app)

    def tags(path: str) -> list[str]:
        response = client.get(path)
        assert response.status_code == 200
        return re.findall(r'<tr data-tag="([^"]+)">', response.text)

    # The admin's own sign-in is an event too: read the full history after it.
    with cw.db.session() as session:
        everything = history(session)
    assert tags("/console/security/events?app=invoice-plus") == [e.tag for e in of_app]
    assert tags(f"/console/security/events?company={company.public_id}") == [e.tag for e in of_company]
    assert tags(f"/console/security/events?app=invoice-plus&company={company.public_id}") == [
        e.tag for e in of_both
    ]
    assert tags(f"/console/security/companies/{company.public_id}/events") == [e.tag for e in of_company]
    assert tags("/console/security/events") == [e.tag for e in everything]
    unknown = client.get("/console/security/events?app=no-such-app")
    assert "No such app or company" in unknown.text and tags("/console/security/events?app=nope") == []


def test_open_alerts_and_incidents_are_those_the_services_list(client: TestClient, cw: ConsoleWorld) -> None:
    now = utcnow()
    invoice, loyalty = cw.world.apps["invoice-plus"][0], cw.world.apps["loyalty-stamp"][0]
    company = cw.world.tenants[0].company
    with cw.db.session() as session:
        raised = []
        for app_id, detector in ((invoice, Detector.UNUSUAL_HOURS), (loyalty, Detector.MIRROR)):
            finding = Finding(
                detector, Severity.HIGH, app_id, company.id, {"calls": 9}, {"calls": 1},
                now - timedelta(hours=1), now, ledger_entries=[],
            )  # fmt: skip
            outcome, alert = monitor.raise_alert(session, finding, cap=10, now=now)
            assert outcome is monitor.Outcome.RAISED and alert is not None
            raised.append(alert.public_id)
        monitor.acknowledge(session, raised[1], actor="secadmin")  # no longer open
        opened = incidents.open_incident(
            session, apps=[standing.find(session, "invoice-plus")], reason="night pulls", actor="secadmin"
        ).public_id
    admin(client, cw)
    html = client.get("/console/security").text
    with cw.db.session() as session:
        open_alerts = [a.public_id for a in monitor.list_alerts(session, state="open")]
        open_incidents = [i.public_id for i in incidents.list_incidents(session, status="open")]
    assert open_alerts == [raised[0]] and open_incidents == [opened]
    overview = re.search(r'data-testid="alerts">.*?</table>', html, re.S)
    assert overview is not None
    assert re.findall(r"<code>(alr_[^<]*)</code>", overview.group(0)) == open_alerts
    assert f"<code>{opened}</code>" in html and "(1)" in html
    # The app's page lists its alerts, acknowledged too (with who acknowledged them).
    page = client.get("/console/security/apps/loyalty-stamp").text
    assert f"<code>{raised[1]}</code>" in page and f"<code>{raised[0]}</code>" not in page
    assert "secadmin · " in page
