"""Store notices over a real database and a real local SMTP server (aiosmtpd): exactly the affected
companies, each with its own numbers; .eml parse-back; delivery at most once; failures retried only."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from appwarden.app import create_app
from appwarden.cli import run
from appwarden.config import Settings, get_settings
from appwarden.incident.context import load_facts
from appwarden.incident.models import NoticeDelivery
from appwarden.incident.notices import draft_notices
from appwarden.incident.service import get_incident, timeline
from appwarden.platform.models import Company, Store
from conftest import World, build_world
from test_blast_radius import deliver, incident_for

CONTACT = "security@appwarden.example"


class Mailbox:
    """An aiosmtpd handler that keeps what it receives and refuses the addresses in ``refuse``."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.received if address in rcpt]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mailbox(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1, configured as APPWARDEN_SMTP_URL for the CLI and the API."""
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("APPWARDEN_SMTP_URL", f"smtp://127.0.0.1:{port}")
    get_settings.cache_clear()
    try:
        yield box
    finally:
        controller.stop()
        get_settings.cache_clear()


@pytest.fixture
def three(db: Any) -> World:
    """Three companies: 0 and 1 got data from invoice-plus (the incident), 2 only from loyalty-stamp."""
    return build_world(db, companies=3, stores=2, customers=12)


def affected_incident(world: World, *, with_third: bool = False) -> str:
    t0, t1, t2 = world.tenants
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(10), ("phone", "raw"): range(6)})
    deliver(world, "invoice-plus", t1, {("name", "raw"): range(4), ("phone", "raw"): range(2, 8)})
    deliver(world, "loyalty-stamp", t2, {("name", "masked"): range(12)})  # not in the incident
    if with_third:
        deliver(world, "invoice-plus", t2, {("phone", "raw"): range(3)})
    return incident_for(world, "invoice-plus")


def test_notices_for_exactly_the_affected_companies_with_their_own_numbers(three: World) -> None:
    t0, t1, t2 = three.tenants
    ref = affected_incident(three)
    drafts = draft_notices(load_facts(three.db, ref), contact=CONTACT)

    assert sorted(d.company.id for d in drafts) == sorted([t0.company.public_id, t1.company.public_id])
    by_id = {d.company.id: d for d in drafts}
    n0, n1 = by_id[t0.company.public_id], by_id[t1.company.public_id]
    assert "**10人**" in n0.markdown_ja and "| 氏名 | 10人 |" in n0.markdown_ja
    assert "| 電話番号 | 6人 |" in n0.markdown_ja
    assert "**8 of your members**" in n1.markdown_en and "| name | 4 |" in n1.markdown_en
    assert "| phone number | 6 |" in n1.markdown_en
    for draft in drafts:
        assert t2.company.name not in draft.markdown() and t2.company.public_id not in draft.markdown()
        # Deadlines and duties from the incident: unauthorised access is suspected by default → 60 days.
        assert "60日以内" in draft.markdown_ja and "within 60 days" in draft.markdown_en
        assert (
            "委託元" in draft.markdown_ja
            and draft.recipient == f"owner{three.tenants.index(_t(three, draft.company.id))}@example.jp"
        )
        stores = {s["id"] for s in draft.company.stores}
        assert all(sid in draft.markdown_ja for sid in stores)


def _t(world: World, company: str) -> Any:
    return next(t for t in world.tenants if t.company.public_id == company)


def test_out_writes_eml_and_md_that_parse_back(three: World, tmp_path: Path, capsys: Any) -> None:
    t0, t1, _ = three.tenants
    ref = affected_incident(three)
    out = tmp_path / "notices"

    assert run(["incident", "notices", ref, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    expected = sorted(f"notice-{t.company.public_id}{ext}" for t in (t0, t1) for ext in (".eml", ".md"))
    assert names == expected
    assert {c["id"] for c in summary["companies"]} == {t0.company.public_id, t1.company.public_id}

    msg = message_from_bytes((out / f"notice-{t0.company.public_id}.eml").read_bytes(), policy=default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "owner0@example.jp" and msg["From"] == CONTACT
    assert "【重要】" in msg["Subject"] and "[Important]" in msg["Subject"]
    assert msg["Message-ID"] == f"<{ref}.{t0.company.public_id}@appwarden.example>"
    texts = [p for p in msg.iter_parts() if p.get_content_type() == "text/plain"]
    assert [p["Content-Language"] for p in texts] == ["ja", "en"]
    # Mail text travels with CRLF line ends; compare as lines.
    ja, en = (p.get_content().replace("\r\n", "\n") for p in texts)  # type: ignore[attr-defined]
    assert "| 氏名 | 10人 |" in ja and "| name | 10 |" in en
    attachments = {p.get_filename(): p for p in msg.iter_attachments() if p.get_filename()}
    co = t0.company.public_id
    assert set(attachments) == {f"report-preliminary-{co}-ja.md", f"report-preliminary-{co}-en.md"}
    report = attachments[f"report-preliminary-{co}-ja.md"].get_content()  # type: ignore[attr-defined]
    report = report.decode() if isinstance(report, bytes) else report
    assert "個人データの漏えい等報告書（速報）案" in report and "10人" in report
    md = (out / f"notice-{co}.md").read_text()
    assert ja.strip() in md and en.strip() in md


def test_send_delivers_each_notice_once(three: World, mailbox: Mailbox, capsys: Any) -> None:
    t0, t1, _ = three.tenants
    ref = affected_incident(three)

    assert run(["incident", "notices", ref, "--send", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert sorted(first["delivery"]["sent"]) == sorted([t0.company.public_id, t1.company.public_id])
    assert [len(mailbox.to(f"owner{i}@example.jp")) for i in range(3)] == [1, 1, 0]
    got = mailbox.to("owner1@example.jp")[0]
    assert got["X-Appwarden-Company"] == t1.company.public_id
    body = next(p for p in got.iter_parts() if p["Content-Language"] == "ja").get_content()  # type: ignore[attr-defined]
    assert "**8人**" in body

    assert run(["incident", "notices", ref, "--send", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["delivery"]["sent"] == [] and len(second["delivery"]["already_sent"]) == 2
    assert len(mailbox.received) == 2  # nothing sent twice
    assert {(r["status"], r["attempts"]) for r in second["log"]} == {("sent", 1)}
    with three.db.session() as session:
        entries = [e for e in timeline(session, get_incident(session, ref)) if e.kind == "notice"]
    assert len(entries) == 1 and "2 sent, 0 failed" in entries[0].text


def test_failures_are_recorded_and_only_they_are_retried(three: World, mailbox: Mailbox, capsys: Any) -> None:
    t0, t1, t2 = three.tenants
    ref = affected_incident(three, with_third=True)
    mailbox.refuse.add("owner0@example.jp")  # the server refuses company 0's address
    with three.db.session() as session:  # company 1 has no address at all
        session.execute(update(Company).where(Company.id == t1.company.id).values(email=None))

    assert run(["incident", "notices", ref, "--send", "--json"]) == 1
    first = json.loads(capsys.readouterr().out)
    assert first["delivery"]["sent"] == [t2.company.public_id]
    errors = {f["company"]: f["error"] for f in first["delivery"]["failed"]}
    assert "550" in errors[t0.company.public_id] and "owner0@example.jp" in errors[t0.company.public_id]
    assert "nor its affected stores have an email address" in errors[t1.company.public_id]
    log = {r["company"]: r for r in first["log"]}
    assert log[t1.company.public_id]["status"] == "failed" and log[t1.company.public_id]["recipient"] is None

    mailbox.refuse.clear()
    with three.db.session() as session:
        session.execute(update(Company).where(Company.id == t1.company.id).values(email="fixed1@example.jp"))
    assert run(["incident", "notices", ref, "--send", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert sorted(second["delivery"]["sent"]) == sorted([t0.company.public_id, t1.company.public_id])
    assert second["delivery"]["already_sent"] == [t2.company.public_id]
    assert len(mailbox.to("owner2@example.jp")) == 1  # the one that went out first is not repeated
    assert len(mailbox.to("owner0@example.jp")) == 1 and len(mailbox.to("fixed1@example.jp")) == 1
    with three.db.session() as session:
        rows = {r.company_id: r for r in session.scalars(select(NoticeDelivery))}
    attempts = {cid: (r.status, r.attempts, r.last_error) for cid, r in rows.items()}
    assert attempts == {
        t0.company.id: ("sent", 2, None),
        t1.company.id: ("sent", 2, None),
        t2.company.id: ("sent", 1, None),
    }


def test_a_company_without_an_address_is_reached_through_its_affected_stores(
    three: World, mailbox: Mailbox, capsys: Any
) -> None:
    t0, t1, _ = three.tenants
    ref = affected_incident(three)
    with three.db.session() as session:
        session.execute(update(Company).where(Company.id == t1.company.id).values(email=None))
        session.execute(update(Store).where(Store.id == t1.stores[0].id).values(email="shop-a@example.jp"))
        session.execute(update(Store).where(Store.id == t1.stores[1].id).values(email="shop-b@example.jp"))

    assert run(["incident", "notices", ref, "--send", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["delivery"]["sent"]) == sorted([t0.company.public_id, t1.company.public_id])
    [message] = mailbox.to("shop-a@example.jp")
    assert mailbox.to("shop-b@example.jp") == [message]  # one message to both stores, not two
    assert message["X-Appwarden-Company"] == t1.company.public_id
    assert mailbox.to("owner0@example.jp") and not mailbox.to("owner1@example.jp")
    log = {r["company"]: r for r in out["log"]}
    assert set(log[t1.company.public_id]["recipient"].split(", ")) == {
        "shop-a@example.jp",
        "shop-b@example.jp",
    }


def test_send_without_smtp_is_a_one_line_error(three: World, capsys: Any) -> None:
    ref = affected_incident(three)
    assert run(["incident", "notices", ref, "--send"]) == 1
    assert "APPWARDEN_SMTP_URL" in capsys.readouterr().err
    assert run(["incident", "notices", "inc_missing", "--json"]) == 1
    assert "inc_missing" in capsys.readouterr().err


def test_admin_api_sends_and_shows_the_log(
    three: World, mailbox: Mailbox, admin_headers: dict[str, str], db: Any
) -> None:
    t0, t1, _ = three.tenants
    ref = affected_incident(three)
    with TestClient(create_app(get_settings(), db)) as client:
        assert client.post(f"/admin/incidents/{ref}/notices").status_code == 401
        missing = client.get("/admin/incidents/inc_nope/notices", headers=admin_headers)
        assert missing.status_code == 404 and missing.json()["code"] == "incident_not_found"
        assert client.get(f"/admin/incidents/{ref}/notices", headers=admin_headers).json()["deliveries"] == []

        sent = client.post(f"/admin/incidents/{ref}/notices", headers=admin_headers)
        assert sent.status_code == 200
        assert sorted(sent.json()["sent"]) == sorted([t0.company.public_id, t1.company.public_id])
        again = client.post(f"/admin/incidents/{ref}/notices", headers=admin_headers).json()
        assert again["sent"] == [] and len(again["already_sent"]) == 2
        log = client.get(f"/admin/incidents/{ref}/notices", headers=admin_headers).json()["deliveries"]
    assert {(r["company"], r["status"], r["attempts"]) for r in log} == {
        (t0.company.public_id, "sent", 1),
        (t1.company.public_id, "sent", 1),
    }
    assert all(r["message_id"].startswith(f"<{ref}.") for r in log)
    assert len(mailbox.received) == 2


def test_admin_api_without_smtp_is_503(
    three: World, client: TestClient, admin_headers: dict[str, str]
) -> None:
    ref = affected_incident(three)
    response = client.post(f"/admin/incidents/{ref}/notices", headers=admin_headers)
    assert response.status_code == 503 and response.json()["code"] == "smtp_not_configured"
    assert response.headers["content-type"].startswith("application/problem+json")


def test_people_output_lists_recipients_and_delivery(three: World, mailbox: Mailbox, capsys: Any) -> None:
    ref = affected_incident(three)
    assert run(["incident", "notices", ref]) == 0
    preview = capsys.readouterr().out
    assert "owner0@example.jp" in preview and "Company 2" not in preview
    assert run(["incident", "notices", ref, "--send"]) == 0
    assert "sent (1)" in capsys.readouterr().out
