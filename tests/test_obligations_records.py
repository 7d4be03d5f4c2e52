"""APPI records of provision (``appwarden records provision|person``), equal to an independent recount
of the ledger for a company."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from appwarden.cli import run
from appwarden.events.service import EventTag, record
from appwarden.incident.appi import JST
from appwarden.ledger.chain import decode_payload
from appwarden.ledger.models import LedgerEntry
from appwarden.ledger.vocabulary import EntryKind
from appwarden.obligations.service import provision
from conftest import World
from ledger_helpers import deliver
from pdf_text import flat_text

# 23:30 UTC is 08:30 the next day in Tokyo: the records' days are Japan-time days.
T0 = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)


def _consent(world: World, slug: str, tenant: int, at: datetime, scopes: list[str]) -> None:
    with world.db.session() as session:
        event = record(
            session,
            EventTag.CONNECTION_CREATED,
            actor=world.tenants[tenant].owner_username,
            app_id=world.apps[slug][0],
            company_id=world.tenants[tenant].company.id,
            connection="con_test",
            scopes=scopes,
        )
        event.occurred_at = at


def _recount(world: World, tenant: int) -> dict[tuple[str, str], int]:
    """(JST day, app slug) -> distinct people, from the company's entries alone."""
    slugs = {v[0]: k for k, v in world.apps.items()}
    people: dict[tuple[str, str], set[int]] = {}
    with world.db.session() as session:
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.company_id == world.tenants[tenant].company.id)
        )
        for entry in rows:
            day = entry.recorded_at.astimezone(JST).date().isoformat()
            for bitmap in decode_payload(entry.payload).values():
                people.setdefault((day, slugs[entry.app_id]), set()).update(bitmap)
    return {k: len(v) for k, v in people.items() if v}


def _plan(world: World) -> None:
    _consent(world, "invoice-plus", 0, T0 - timedelta(days=1), ["customers.name:raw", "customers.phone:raw"])
    deliver(world, "invoice-plus", 0, T0, name__raw=[0, 1, 2], phone__raw=[0, 1])
    deliver(world, "invoice-plus", 0, T0 + timedelta(hours=2), name__raw=[2, 3])  # same Tokyo day
    deliver(world, "invoice-plus", 0, T0 + timedelta(days=1), phone__raw=[5])
    deliver(world, "loyalty-stamp", 0, T0, name__masked=[0, 1], phone__token=[0, 1])
    deliver(world, "invoice-plus", 1, T0, name__raw=[0])  # another company: not in company 0's records
    deliver(world, "invoice-plus", 0, T0, kind=EntryKind.RESTRICTED_MINT)  # delivers nothing


def test_records_equal_a_recount_of_the_ledger_per_app_and_japan_day(world: World) -> None:
    _plan(world)
    with world.db.session() as session:
        company, records = provision(
            session,
            company_ref=world.tenants[0].company.public_id,
            since=T0.date(),
            until=T0.date() + timedelta(days=3),
        )
    assert company == world.tenants[0].company.public_id
    assert {(r.day.isoformat(), r.app): r.people for r in records} == _recount(world, 0)
    first = next(r for r in records if r.app == "invoice-plus" and r.day.isoformat() == "2026-11-04")
    assert first.people == 4 and first.entries == 2
    assert first.items == ("氏名（そのまま）", "電話番号（そのまま）")
    assert first.consent is not None and first.consent.by == world.tenants[0].owner_username
    loyalty = next(r for r in records if r.app == "loyalty-stamp")
    assert loyalty.items == ("氏名（マスク）", "電話番号（仮名）")
    assert loyalty.consent is None  # no grant on record: the record says so rather than invent one


def test_cli_writes_csv_with_people_on_demand_and_a_pdf(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plan(world)
    company = world.tenants[0].company.public_id
    args = ["records", "provision", "--company", company, "--from", "2026-11-01", "--to", "2026-11-30"]
    assert run(args) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:5] == ["提供年月日", "提供先（第三者）", "アプリ", "個人データの項目", "本人の数"]
    assert sorted((r[0], r[2], r[4]) for r in rows[1:]) == [
        ("2026-11-04", "invoice-plus", "4"),
        ("2026-11-04", "loyalty-stamp", "2"),
        ("2026-11-05", "invoice-plus", "1"),
    ]
    assert run([*args, "--people"]) == 0
    people = list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]
    expected = {c.public_id for c in world.tenants[0].customers[:4]}
    assert {r[-1] for r in people if r[0] == "2026-11-04" and r[2] == "invoice-plus"} == expected
    pdf = tmp_path / "records.pdf"
    assert run([*args, "--format", "pdf", "--out", str(pdf)]) == 0
    text = flat_text(pdf.read_bytes())
    assert "第三者提供の記録（個人情報保護法第29条）" in text and company in text and "3年間保存" in text


def test_person_records_by_phone_in_any_spelling(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    _plan(world)
    phone = world.tenants[0].customers[0].phone
    assert phone is not None
    spelled = "+81 " + phone[1:].replace("-", " ")
    assert run(["records", "person", spelled, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["app"], r["field"], r["mode"]) for r in rows} == {
        ("invoice-plus", "name", "raw"),
        ("invoice-plus", "phone", "raw"),
        ("loyalty-stamp", "name", "masked"),
        ("loyalty-stamp", "phone", "token"),
    }
    assert {r["customer"] for r in rows} == {world.tenants[0].customers[0].public_id}


def test_bad_input_is_one_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    company = world.tenants[0].company.public_id
    assert run(["records", "provision", "--company", company, "--from", "yesterday"]) == 1
    assert capsys.readouterr().err.strip() == "error: --from must be a date YYYY-MM-DD, not 'yesterday'"
    assert (
        run(["records", "provision", "--company", company, "--from", "2026-11-05", "--to", "2026-11-01"]) == 1
    )
    assert "before" in capsys.readouterr().err
    assert run(["records", "provision", "--company", company, "--format", "pdf"]) == 1
    assert "--out" in capsys.readouterr().err
    assert run(["records", "person", "nobody@example.invalid"]) == 1
    assert capsys.readouterr().err.startswith("error: no customer has this id")
