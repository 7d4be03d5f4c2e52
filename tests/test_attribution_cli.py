"""``appwarden attribute`` and ``POST /admin/attributions``: JSON, people output, bad files, the upload cap,
and the incident timeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.cli import run
from appwarden.events.models import SecurityEvent
from appwarden.incident.models import TimelineEntry
from appwarden.incident.service import open_incident
from appwarden.marketplace.models import App
from attribution_helpers import deliver, write_csv
from conftest import World

NAME_PHONE = [("name", "raw"), ("phone", "raw")]


@pytest.fixture
def leak(world: World, tmp_path: Path) -> Path:
    """invoice-plus received company 0's names and phones; the leak is exactly those, in Shift_JIS."""
    t = world.tenants[0]
    deliver(world, "invoice-plus", t, t.customers, NAME_PHONE)
    rows = [[c.name, c.phone] for c in t.customers]
    return write_csv(tmp_path / "leak-invoice-plus.csv", ["氏名", "TEL"], rows, encoding="cp932")


def _incident(world: World) -> str:
    with world.db.session() as session:
        app = session.scalar(select(App).where(App.slug == "invoice-plus"))
        assert app is not None
        return open_incident(session, apps=[app], reason="dump on a forum", actor="test").public_id


def test_cli_json(leak: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["attribute", str(leak), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # stdout carries only the JSON
    assert out["rows"] == 12 and out["rows_matched"] == 12
    assert out["columns"] == {"氏名": "name", "TEL": "phone"}
    assert out["verdict"]["source"] == "app" and out["verdict"]["apps"] == ["invoice-plus"]
    assert set(out) >= {"rows", "rows_matched", "columns", "verdict", "candidates", "unexplained", "snapshot"}
    assert out["dump"]["encoding"] == "cp932"


def test_cli_people_output(leak: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["attribute", str(leak)]) == 0
    text = capsys.readouterr().out
    assert "12 rows — 12 matched to platform customers" in " ".join(text.split())
    assert "source: an app's vendor: invoice-plus" in text
    assert "invoice-plus" in text and "100.0%" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02\x03\xff\xfe\x00\x00" * 64, "binary"),
        ("色,形\n赤,丸\n青,四角\n".encode(), "no column looks like"),
    ],
)
def test_cli_bad_file_is_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert run(["attribute", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in captured.err


def test_cli_missing_file_and_unknown_incident(
    leak: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["attribute", str(tmp_path / "nope.csv")]) == 1
    assert capsys.readouterr().err.startswith("error: ")  # the first line, no blank line before it
    assert run(["attribute", str(leak), "--incident", "inc_missing"]) == 1
    assert "no incident 'inc_missing'" in capsys.readouterr().err


def test_cli_incident_gets_a_timeline_entry_and_event(
    world: World, leak: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _incident(world)
    assert run(["attribute", str(leak), "--json", "--incident", ref]) == 0
    assert json.loads(capsys.readouterr().out)["incident"] == ref
    with world.db.session() as session:
        entries = list(session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "attribution")))
        events = list(
            session.scalars(select(SecurityEvent).where(SecurityEvent.tag == "attribution:dump:attributed"))
        )
    assert len(entries) == 1 and entries[0].actor == "cli"
    assert "leak-invoice-plus.csv: 12 of 12 rows matched" in entries[0].text
    assert "invoice-plus" in entries[0].text
    assert entries[0].data["verdict"]["apps"] == ["invoice-plus"]
    assert (
        len(events) == 1
        and events[0].data["incident"] == ref
        and events[0].app_id == world.apps["invoice-plus"][0]
    )


def test_admin_upload(client: TestClient, world: World, leak: Path, admin_headers: dict[str, str]) -> None:
    files = {"file": ("forum-post.csv", leak.read_bytes(), "text/csv")}
    assert client.post("/admin/attributions", files=files).status_code == 401
    ref = _incident(world)
    response = client.post("/admin/attributions", files=files, data={"incident": ref}, headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"]["apps"] == ["invoice-plus"] and body["dump"]["name"] == "forum-post.csv"
    with world.db.session() as session:
        entry = session.scalar(select(TimelineEntry).where(TimelineEntry.kind == "attribution"))
    assert entry is not None and entry.actor == "admin-api" and "forum-post.csv" in entry.text


def test_admin_upload_broken_and_too_big(
    client: TestClient, world: World, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = {"file": ("x.csv", b"\x00\x01\x02\xff" * 100, "text/csv")}
    response = client.post("/admin/attributions", files=broken, headers=admin_headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "dump_binary"
    assert response.json()["detail"].startswith("x.csv: ")  # the uploaded file's name, not a temporary one

    from appwarden.config import get_settings

    monkeypatch.setattr(get_settings(), "attribution_upload_max_bytes", 1000)
    big = {"file": ("big.csv", "氏名,電話番号\n".encode() + b"a,090-0000-0000\n" * 5000, "text/csv")}
    response = client.post("/admin/attributions", files=big, headers=admin_headers)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
