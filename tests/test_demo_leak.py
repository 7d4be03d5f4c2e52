"""The demo's leaked dump: written from what invoice-plus received, in Shift_JIS, and attributed to it
with canary proof by the real ``appwarden attribute`` command."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from pyroaring import BitMap
from sqlalchemy import select

from appwarden.canary.models import Canary
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import get_database
from appwarden.demo.catalog import INVOICE_PLUS
from appwarden.demo.leak import HEADER, leak_path, received
from appwarden.marketplace.models import App
from appwarden.platform.models import Customer


def test_demo_leak_is_the_apps_data_and_is_attributed_to_it_with_canary_proof(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["demo", "--no-serve", "--json", "--companies", "3", "--customers", "600", "--seed", "5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    path = leak_path(settings.data_dir)
    assert summary["leak"] == str(path) and path.exists()

    # Shift_JIS (cp932) as a forum post would have it: not UTF-8, and every row is a person the app got.
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = list(csv.reader(io.StringIO(raw.decode("cp932"))))
    assert tuple(rows[0]) == HEADER
    db = get_database(settings)
    with db.session() as session:
        app_id = session.scalar(select(App.id).where(App.slug == INVOICE_PLUS))
        assert app_id is not None
        people = received(session, app_id)
        names = list(session.scalars(select(Customer.name).where(Customer.id.in_(list(people)))))
        canaries = BitMap(session.scalars(select(Canary.customer_id).where(Canary.app_id == app_id)))
    assert len(rows) - 1 == len(people)
    as_written = [n.encode("cp932", errors="replace").decode("cp932") for n in names]
    assert sorted(r[0] for r in rows[1:]) == sorted(as_written)
    assert canaries and canaries <= people  # the app's canaries went out to it, so they are in its dump

    code = run(["attribute", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    verdict = json.loads(out.out)
    assert verdict["verdict"]["source"] == "app"
    assert verdict["verdict"]["apps"] == [INVOICE_PLUS]
    hits = verdict["verdict"]["canary_hits"]
    assert hits and {h["app"] for h in hits} == {INVOICE_PLUS}
    assert verdict["candidates"][0]["app"] == INVOICE_PLUS and verdict["candidates"][0]["coverage"] >= 0.99


def test_no_leak_file_without_deliveries(settings: Settings, tmp_path: Path) -> None:
    from appwarden.demo.leak import write_leak

    db = get_database(settings)
    with db.session() as session:
        assert write_leak(session, tmp_path) is None  # no such app in an empty platform
    assert not (tmp_path / "demo").exists()
