"""The obligations pages over HTTP (the real ASGI app): the store owner's records of provision (the
page equals ``obligations.service.provision``, the downloads are the documents ``appwarden records
provision`` writes), what each vendor may still hold of the owner's company, and the holdings per
company × field on the security team's app page. Only the owner's own company is ever shown."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from appwarden.cli import run
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.incident.appi import JST
from appwarden.obligations.service import holdings, provision, provision_document
from conftest import OWNER_PASSWORD
from console_world import ConsoleWorld, build_console_world, sign_in
from pdf_text import flat_text
from test_blast_radius import deliver

OLD = 40  # days: past the 30-day default retention


@pytest.fixture
def cw(db: Database) -> ConsoleWorld:
    """Company 0: invoice-plus names and phones today, loyalty-stamp names 40 days ago (past retention);
    company 1: invoice-plus names today. Each owner must see only its own."""
    world = build_console_world(db)
    t0, t1 = world.world.tenants
    deliver(
        world.world, "loyalty-stamp", t0, {("name", "masked"): range(6)}, at=utcnow() - timedelta(days=OLD)
    )
    deliver(world.world, "invoice-plus", t0, {("name", "raw"): range(8), ("phone", "masked"): range(5)})
    deliver(world.world, "invoice-plus", t1, {("name", "raw"): range(11)})
    return world


def owner(client: TestClient, username: str = "owner0") -> TestClient:
    assert sign_in(client, username, OWNER_PASSWORD) == 303
    return client


def company(cw: ConsoleWorld, tenant: int) -> str:
    return cw.world.tenants[tenant].company.public_id


def today() -> date:
    return utcnow().astimezone(JST).date()


def shown_records(html: str) -> list[tuple[str, str, str, int]]:
    """(day, app, items, people) of each record row on the page."""
    rows = re.findall(
        r'<tr data-testid="record" data-app="([^"]+)" data-day="([^"]+)">(.*?)</tr>', html, re.S
    )
    out = []
    for app, day, rest in rows:
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rest, re.S)]
        out.append((day, app, cells[3], int(cells[4].replace(",", ""))))
    return out


def test_records_page_lists_the_companys_records_as_the_service_does(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    owner(client)
    page = client.get("/console/records")
    assert page.status_code == 200
    assert "第三者提供の記録" in page.text  # Japanese by default, and in the nav
    assert 'href="/console/records" aria-current="page"' in page.text
    first = today().replace(year=today().year - 3)
    with db.session() as session:
        _, expected = provision(session, company_ref=company(cw, 0), since=first, until=today())
    shown = shown_records(page.text)
    assert shown == [(r.day.isoformat(), r.app, "、".join(r.items), r.people) for r in expected]
    assert {(app, people) for _, app, _, people in shown} == {("loyalty-stamp", 6), ("invoice-plus", 8)}
    assert "同意" in page.text and 'value="' + first.isoformat() + '"' in page.text


def test_records_page_filters_by_days_and_refuses_bad_bounds(client: TestClient, cw: ConsoleWorld) -> None:
    owner(client)
    recent = (today() - timedelta(days=1)).isoformat()
    only_today = shown_records(client.get(f"/console/records?from={recent}&to={today().isoformat()}").text)
    assert [app for _, app, _, _ in only_today] == ["invoice-plus"]
    old = (today() - timedelta(days=OLD)).isoformat()
    only_old = shown_records(client.get(f"/console/records?from={old}&to={old}").text)
    assert [app for _, app, _, _ in only_old] == ["loyalty-stamp"]
    assert client.get("/console/records?from=yesterday").status_code == 422
    assert client.get(f"/console/records?from={today().isoformat()}&to={old}").status_code == 422
    assert client.get("/console/records/download?format=xlsx").status_code == 422


def test_another_companys_records_and_holdings_are_never_shown(client: TestClient, cw: ConsoleWorld) -> None:
    owner(client, "owner1")
    shown = shown_records(client.get("/console/records").text)
    assert [(app, people) for _, app, _, people in shown] == [("invoice-plus", 11)]
    csv_body = client.get("/console/records/download?format=csv").text
    assert "loyalty-stamp" not in csv_body and ",11," in csv_body
    held = client.get("/console/holdings").text
    assert "loyalty-stamp" not in held and company(cw, 0) not in held
    # Company 0's connection is the same 404 as none at all.
    other = client.get(f"/console/apps/{cw.connections[('loyalty-stamp', 0)]}")
    assert other.status_code == client.get("/console/apps/con_nothing").status_code == 404


def test_pages_are_for_store_owners_only(client: TestClient, cw: ConsoleWorld) -> None:
    assert sign_in(client, "secadmin", cw.logins["secadmin"]) == 303
    for path in ("/console/records", "/console/records/download?format=csv", "/console/holdings"):
        assert client.get(path).status_code == 403, path


def test_downloads_are_the_documents_the_cli_writes(
    client: TestClient, cw: ConsoleWorld, db: Database, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    owner(client)
    first, last = today() - timedelta(days=60), today()
    query = f"from={first.isoformat()}&to={last.isoformat()}"
    got = client.get(f"/console/records/download?format=csv&{query}")
    assert got.status_code == 200 and got.headers["content-type"] == "text/csv; charset=utf-8"
    name = f"records-provision-{company(cw, 0)}-{first.isoformat()}-{last.isoformat()}.csv"
    assert got.headers["content-disposition"] == f'attachment; filename="{name}"'
    with db.session() as session:
        csv_doc, _ = provision_document(
            session, company_ref=company(cw, 0), since=first, until=last, fmt="csv"
        )
        pdf_doc, _ = provision_document(
            session, company_ref=company(cw, 0), since=first, until=last, fmt="pdf"
        )
    assert got.content == csv_doc
    cli = [
        "records",
        "provision",
        "--company",
        company(cw, 0),
        "--from",
        first.isoformat(),
        "--to",
        last.isoformat(),
    ]
    assert run(cli) == 0
    assert capsys.readouterr().out.encode("utf-8") == got.content  # the CLI prints the same bytes
    pdf = client.get(f"/console/records/download?format=pdf&{query}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert flat_text(pdf.content) == flat_text(pdf_doc)  # the same document (only its timestamp differs)
    text = flat_text(pdf.content)
    assert company(cw, 0) in text and "氏名（マスク）" in text and company(cw, 1) not in text


def holdings_rows(html: str, table: str = "holdings") -> list[tuple[str, str, int, int, int]]:
    """(app or company, field, may hold, should not hold, retention) of each holdings row."""
    out = []
    for section in html.split(f'data-testid="{table}"')[1:]:
        body = section.split("</table>", 1)[0]
        for key, rest in re.findall(r'<tr data-(?:field|key)="([^"]+)">(.*?)</tr>', body, re.S):
            nums = [
                re.sub(r"<[^>]+>", "", c).strip()
                for c in re.findall(r'<td class="num[^"]*">(.*?)</td>', rest)
            ]
            out.append((key, *(int(n.replace(",", "")) for n in nums)))  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def test_holdings_page_shows_the_services_rows_for_the_company(
    client: TestClient, cw: ConsoleWorld, db: Database
) -> None:
    owner(client)
    page = client.get("/console/holdings")
    assert page.status_code == 200 and "ベンダーが保持しうるデータ" in page.text
    with db.session() as session:
        expected = holdings(session, company_ref=company(cw, 0), now=utcnow())
    assert {(h.app, h.field, h.may_hold, h.should_not_hold) for h in expected} == {
        ("invoice-plus", "name", 8, 0),
        ("invoice-plus", "phone", 5, 0),
        ("loyalty-stamp", "name", 0, 6),
    }
    sections = re.findall(r'data-testid="app-holdings" data-app="([^"]+)"', page.text)
    assert sections == sorted({h.app for h in expected}, key=[h.app for h in expected].index)
    shown = [row[1:] for row in holdings_rows(page.text)]
    assert [tuple(r) for r in shown] == [(h.may_hold, h.should_not_hold, h.retention_days) for h in expected]
    # The app past retention is flagged, and links to the owner's own connection page.
    stamp = page.text.split('data-app="loyalty-stamp"', 1)[1]
    assert 'data-testid="past-retention"' in stamp
    assert 'data-testid="past-retention"' not in page.text.split('data-app="loyalty-stamp"', 1)[0]
    assert f'href="/console/apps/{cw.connections[("loyalty-stamp", 0)]}"' in stamp


def test_security_app_page_shows_holdings_per_company_with_past_retention_marked(
    client: TestClient, db: Database
) -> None:
    cw = build_console_world(db)
    t0, t1 = cw.world.tenants
    deliver(cw.world, "invoice-plus", t0, {("name", "raw"): range(4)}, at=utcnow() - timedelta(days=OLD))
    deliver(cw.world, "invoice-plus", t1, {("name", "raw"): range(9), ("phone", "masked"): range(2)})
    assert sign_in(client, "secadmin", cw.logins["secadmin"]) == 303
    page = client.get("/console/security/apps/invoice-plus").text
    with db.session() as session:
        expected = holdings(session, app_ref="invoice-plus", now=utcnow())
    assert [
        (f"{h.company}:{h.field}", h.may_hold, h.should_not_hold, h.retention_days) for h in expected
    ] == [row for row in holdings_rows(page)]
    assert {(h.company, h.should_not_hold) for h in expected if h.field == "name"} == {
        (t0.company.public_id, 4),
        (t1.company.public_id, 0),
    }
    groups = re.findall(
        r'<tbody data-testid="company-holdings" data-company="([^"]+)"( class="past-retention")?>', page
    )
    assert dict(groups) == {t0.company.public_id: ' class="past-retention"', t1.company.public_id: ""}
    assert re.search(r'data-testid="companies-past-retention" class="overdue">1<', page)
