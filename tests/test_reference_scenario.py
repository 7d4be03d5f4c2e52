"""The reference scenario end to end, as the on-call engineer runs it (``appwarden.cli.run``):

demo --scenario incident-2026 → incident open --app invoice-plus → blast radius (name 136,346, phone
114,951, 8 companies) → notices for exactly those 8 companies (files, and sent to a real local SMTP
server) → a preliminary report for each.
"""

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
from sqlalchemy import select

from appwarden.cli import run
from appwarden.config import Settings, get_settings
from appwarden.db.session import Database
from appwarden.demo.leak import leak_path
from appwarden.demo.obligations import STORY_APPS
from appwarden.platform.models import Company, Store


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    box = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("APPWARDEN_SMTP_URL", f"smtp://127.0.0.1:{port}")
    get_settings.cache_clear()
    try:
        yield box
    finally:
        controller.stop()
        get_settings.cache_clear()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = run([*argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.mark.slow
def test_reference_scenario_end_to_end(
    db: Database, inbox: Inbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = cli(capsys, "demo", "--scenario", "incident-2026", "--no-serve")
    assert demo["companies"] == 12
    # The demo's lapsed audit restricts one app, and its companies are told by mail before any incident;
    # the monitor, auditing the month, mailed the security team its alerts on invoice-plus's pull.
    assert demo["restricted_by_audit"]
    subjects = [str(m["Subject"]) for _rcpt, m in inbox.received]
    # The demo's weeks after the traffic (demo.obligations) raise their own alerts on the story's apps.
    story = [s for s in subjects if any(f" on {app} " in s for app in STORY_APPS)]
    assert any("erasure_contradicted on point-hub" in s for s in story), subjects
    assert any("attestation_overdue on loyalty-stamp" in s for s in story), subjects
    subjects = [s for s in subjects if s not in story]
    restricted = [s for s in subjects if s.endswith(" is restricted")]
    alerted = [s for s in subjects if s.startswith("[appwarden] ") and " alert: " in s]
    assert restricted and alerted and len(restricted) + len(alerted) == len(subjects)
    assert all(s.endswith(" on invoice-plus (alert)") for s in alerted)
    inbox.received.clear()

    opened = cli(capsys, "incident", "open", "--app", "invoice-plus", "--reason", "名簿業者サイトで販売")
    inc = opened["incident"]
    assert opened["apps"] == ["invoice-plus"] and opened["connections_suspended"] >= 8
    assert opened["tokens_revoked"] > 0

    radius = cli(capsys, "incident", "blast-radius", inc)
    assert radius["fields"]["name"]["exposed"] == 136_346
    assert radius["fields"]["phone"]["exposed"] == 114_951
    affected = {c["id"] for c in radius["companies"]}
    assert len(affected) == 8
    # Each of the 8 connections was served its own canaries; they are in the ledger and out of the counts.
    canaries = get_settings().canaries_per_connection
    assert canaries > 0 and radius["canaries_excluded"] == 8 * canaries

    # The leaked dump the demo wrote (Shift_JIS, as posted) is attributed to invoice-plus, with canary proof.
    leak = leak_path(get_settings().data_dir)
    verdict = cli(capsys, "attribute", str(leak), "--json", "--incident", inc)
    assert verdict["verdict"]["source"] == "app" and verdict["verdict"]["apps"] == ["invoice-plus"]
    hits = verdict["verdict"]["canary_hits"]
    assert len(hits) == 8 * canaries and {h["app"] for h in hits} == {"invoice-plus"}
    assert {h["company"] for h in hits} == affected
    # Everyone with a phone is matched one to one (name-only rows may fit several people: not guessed).
    assert verdict["persons_matched"] >= 114_951
    assert verdict["rows_matched"] == verdict["persons_matched"] + len(hits)

    with db.session() as session:
        emails = {c.public_id: c.email for c in session.scalars(select(Company))}
    assert len(emails) == 12
    bystanders = set(emails) - affected
    assert len(bystanders) == 4

    out = tmp_path / "notices"
    written = cli(capsys, "incident", "notices", inc, "--out", str(out))
    assert {c["id"] for c in written["companies"]} == affected
    assert sorted(p.name for p in out.glob("*.eml")) == sorted(f"notice-{co}.eml" for co in affected)

    # The demo, like the real platform, has companies with no email on file: theirs go to the addresses
    # of their affected stores instead, so every affected company is told, once, and nobody else.
    with db.session() as session:
        store_emails: dict[str, set[str]] = {}
        for company_id, email in session.execute(
            select(Company.public_id, Store.email).join(Store, Store.company_id == Company.id)
        ):
            if email:
                store_emails.setdefault(company_id, set()).add(email)
    unmailed = {co for co in affected if not emails[co]}
    assert unmailed, "the scenario should include companies without an address"
    assert run(["incident", "notices", inc, "--send", "--json"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert sorted(sent["delivery"]["sent"]) == sorted(affected) and sent["delivery"]["failed"] == []
    assert len(inbox.received) == len(affected)
    by_company = {m["X-Appwarden-Company"]: set(rcpt) for rcpt, m in inbox.received}
    assert set(by_company) == affected
    for co in affected - unmailed:
        assert by_company[co] == {emails[co]}
    for co in unmailed:
        assert by_company[co] and by_company[co] <= store_emails[co]
    bystander_addresses = {emails[co] for co in bystanders} | {
        e for co in bystanders for e in store_emails.get(co, set())
    }
    recipients = {r for rcpt, _ in inbox.received for r in rcpt}
    assert not recipients & bystander_addresses  # the unaffected hear nothing

    reports = tmp_path / "reports"
    files = cli(
        capsys, "incident", "report", inc, "--kind", "preliminary", "--format", "json", "--out", str(reports)
    )
    assert len(files["files"]) == 8
    for path in files["files"]:
        report = json.loads(Path(path).read_text())
        assert report["kind"] == "preliminary"
    drafted = {json.loads(Path(p).read_text())["controller"]["id"] for p in files["files"]}
    assert drafted == affected

    shown = cli(capsys, "incident", "show", inc)
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds[:2] == ["opened", "kill_switch"] and "notice" in kinds and "report" in kinds
    assert "attribution" in kinds
