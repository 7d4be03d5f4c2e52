"""The incident record through the CLI (``appwarden.cli.run``) and the admin API: open, show, list, note,
facts (known / not yet known), close; bad input is a one-line error / precise problem and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appwarden.cli import run
from appwarden.incident.killswitch import SEED_UNKNOWNS
from conftest import World


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = run(["incident", *argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert run(["incident", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_cli_record_lifecycle(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.connect("invoice-plus", world.tenants[0])
    opened = cli(capsys, "open", "--app", "invoice-plus", "--reason", "customer list for sale")
    inc = opened["incident"]
    assert opened["tokens_revoked"] == 1 and opened["connections_suspended"] == 1

    shown = cli(capsys, "show", inc)
    assert shown["id"] == inc and shown["apps"] == ["invoice-plus"] and shown["status"] == "open"
    assert shown["opened_by"].startswith("cli") and shown["closed_at"] is None
    assert shown["unauthorized_access"] is True
    assert [f["text"] for f in shown["unknown"]] == list(SEED_UNKNOWNS)
    assert "1 connections of 1 companies suspended" in shown["known"][0]["text"]
    assert [e["kind"] for e in shown["timeline"]] == ["opened", "kill_switch"]
    assert shown["refused_calls"]["count"] == 0

    cli(capsys, "note", inc, "called the vendor; no answer")
    facts = cli(capsys, "fact", inc, "--resolve", "1", "--known", "an unauthenticated export endpoint")
    assert len(facts["unknown"]) == 5 and facts["known"][-1]["answers"] == SEED_UNKNOWNS[0]
    facts = cli(capsys, "fact", inc, "--unknown", "whether backups were copied")
    assert facts["unknown"][-1]["text"] == "whether backups were copied"
    facts = cli(capsys, "fact", inc, "--remove-known", "2")
    assert len(facts["known"]) == 1

    # Bad edits: one line each, nothing changed.
    assert "no unknown fact #99" in fails(capsys, "fact", inc, "--resolve", "99", "--known", "x")
    assert "needs the answer" in fails(capsys, "fact", inc, "--resolve", "1")
    assert "nothing to change" in fails(capsys, "fact", inc)
    assert "no incident" in fails(capsys, "note", "inc_nope", "x")
    assert "a note needs text" in fails(capsys, "note", inc, "  ")

    listed = cli(capsys, "list")
    assert [r["id"] for r in listed] == [inc] and listed[0]["unknown"] == 6
    closed = cli(capsys, "close", inc, "--note", "vendor remediated")
    assert closed["status"] == "closed"
    assert "already closed" in fails(capsys, "close", inc)
    assert cli(capsys, "list", "--status", "open") == []

    shown = cli(capsys, "show", inc)
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds == ["opened", "kill_switch", "note", "fact", "fact", "fact", "closed"]
    assert shown["timeline"][2]["text"] == "called the vendor; no answer"
    assert shown["closed_at"] is not None
    assert len(shown["unknown"]) == 6


def test_cli_people_output(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["incident", "open", "--app", "invoice-plus", "--reason", "dump found"]) == 0
    opened = capsys.readouterr().out
    assert "kill switch" in opened and "incident inc_" in opened
    inc = opened.split("incident ")[1].split()[0]
    assert run(["incident", "show", inc]) == 0
    shown = capsys.readouterr().out
    assert "わかっていないこと" in shown and "kill_switch" in shown and "refused calls: 0" in shown
    assert run(["incident", "list"]) == 0
    assert inc in capsys.readouterr().out


def test_cli_open_errors_change_nothing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no app 'ghost'" in fails(
        capsys, "open", "--app", "invoice-plus", "--app", "ghost", "--reason", "x"
    )
    assert "reason is required" in fails(capsys, "open", "--app", "invoice-plus", "--reason", " ")
    assert cli(capsys, "list") == []
    assert run(["incident", "open", "--reason", "x"]) == 2  # --app is required: usage error


def test_admin_api_record(client: TestClient, world: World, admin_headers: dict[str, str]) -> None:
    h = admin_headers
    inc = client.post("/admin/incidents", json={"apps": ["loyalty-stamp"], "reason": "r"}, headers=h).json()
    ref = inc["incident"]
    assert client.post(f"/admin/incidents/{ref}/notes", json={"text": "n"}, headers=h).status_code == 201
    r = client.post(f"/admin/incidents/{ref}/facts", json={"resolve": 2, "known": "on 2025-12-02"}, headers=h)
    assert r.status_code == 200 and r.json()["known"][-1]["answers"] == SEED_UNKNOWNS[1]
    r = client.post(f"/admin/incidents/{ref}/facts", json={"resolve": 42, "known": "x"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "invalid_parameter"
    listed = client.get("/admin/incidents", headers=h).json()["data"]
    assert [i["id"] for i in listed] == [ref]
    assert client.get("/admin/incidents?status=bogus", headers=h).status_code == 422
    shown = client.get(f"/admin/incidents/{ref}", headers=h).json()
    assert [e["kind"] for e in shown["timeline"]] == ["opened", "kill_switch", "note", "fact"]
    assert client.post(f"/admin/incidents/{ref}/close", json={}, headers=h).json()["status"] == "closed"
    again = client.post(f"/admin/incidents/{ref}/close", json={}, headers=h)
    assert again.status_code == 409 and again.json()["code"] == "incident_closed"
    missing = client.get("/admin/incidents/inc_nope", headers=h)
    assert missing.status_code == 404 and missing.json()["code"] == "incident_not_found"
    assert client.get(f"/admin/incidents/{ref}").status_code == 401
