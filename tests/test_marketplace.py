"""Marketplace apps through the CLI and the admin API: register, list, show, suspend."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from appwarden.cli import run
from appwarden.db.session import Database
from appwarden.errors import InvalidInput
from appwarden.events.models import SecurityEvent
from appwarden.marketplace.models import App
from appwarden.marketplace.scopes import effective_scopes, parse_scopes


def register_args(
    slug: str = "invoice-plus", scopes: str = "customers.name:raw customers.phone:masked"
) -> list[str]:
    return [
        "apps", "register", "--slug", slug, "--name", "Invoice Plus",
        "--redirect-uri", "https://invoice.example/callback", "--scopes", scopes, "--json",
    ]  # fmt: skip


def test_register_prints_secret_once_and_stores_only_its_hash(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(register_args()) == 0
    registered = json.loads(capsys.readouterr().out)
    assert registered["slug"] == "invoice-plus"
    assert registered["approved_scopes"] == ["customers.name:raw", "customers.phone:masked"]
    secret = registered["client_secret"]
    with db.session() as session:
        app = session.query(App).one()
        assert secret not in (app.client_secret_hash, app.client_id)
        tags = [e.tag for e in session.query(SecurityEvent).order_by(SecurityEvent.id)]
    assert tags == ["app:listing:registered", "app:scope:approved"]

    assert run(["apps", "show", "invoice-plus", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "client_secret" not in shown and shown["client_id"] == registered["client_id"]


def test_list_and_suspend(db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    run(register_args("invoice-plus"))
    run(register_args("loyalty-stamp", "customers.points:raw"))
    capsys.readouterr()
    assert run(["apps", "list", "--json"]) == 0
    assert [a["slug"] for a in json.loads(capsys.readouterr().out)] == ["invoice-plus", "loyalty-stamp"]
    assert run(["apps", "suspend", "loyalty-stamp", "--reason", "audit lapsed", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["listing_state"], shown["restricted_policy"]) == ("restricted", "pause")
    with db.session() as session:
        event = session.query(SecurityEvent).filter_by(tag="app:listing:restricted").one()
        assert event.data["reason"] == "audit lapsed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (register_args(scopes="customers.salary:raw"), "unknown customer field 'salary'"),
        (register_args(scopes="customers.points:masked"), "only delivered raw"),
        (register_args(scopes="customers.name:raw customers.name:token"), "two modes"),
        (register_args(slug="Bad Slug"), "slug"),
        (["apps", "show", "nope"], "no app 'nope'"),
        (["apps", "suspend", "nope"], "no app 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    db: Database, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(args) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_duplicate_slug_and_http_redirect_refused(db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(register_args()) == 0
    assert run(register_args()) == 1
    assert "already exists" in capsys.readouterr().err
    args = register_args("other-app")
    args[args.index("https://invoice.example/callback")] = "http://evil.example/cb"
    assert run(args) == 1
    assert "https" in capsys.readouterr().err
    with db.session() as session:
        assert session.query(App).count() == 1  # nothing partial


def test_usage_error_exits_2(db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apps", "register", "--slug", "x"]) == 2


def test_admin_api_requires_the_key(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = client.get("/admin/apps", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_admin_key"


def test_admin_api_register_show_suspend(client: TestClient, admin_headers: dict[str, str]) -> None:
    body = {
        "slug": "booking-go",
        "name": "Booking Go",
        "redirect_uris": ["https://booking.example/cb"],
        "scopes": ["customers.name:token", "customers.email:masked"],
        "vendor": "Booking Go KK",
    }
    created = client.post("/admin/apps", json=body, headers=admin_headers)
    assert created.status_code == 201
    assert created.json()["client_secret"]
    shown = client.get("/admin/apps/booking-go", headers=admin_headers).json()
    assert shown["vendor"] == "Booking Go KK" and "client_secret" not in shown
    assert client.post("/admin/apps", json=body, headers=admin_headers).json()["code"] == "app_exists"
    suspended = client.post("/admin/apps/booking-go/suspend", json={"reason": "x"}, headers=admin_headers)
    assert suspended.json()["listing_state"] == "restricted"
    assert client.get("/admin/apps/nope", headers=admin_headers).status_code == 404


def test_admin_api_bad_body_is_422_problem(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.post("/admin/apps", json={"slug": "x"}, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_parameter"
    bad_scope = {"slug": "abc", "name": "A", "redirect_uris": ["https://a.example/cb"], "scopes": ["nope"]}
    response = client.post("/admin/apps", json=bad_scope, headers=admin_headers)
    assert response.status_code == 422 and response.json()["code"] == "invalid_scope"


def test_effective_scopes_is_the_intersection() -> None:
    approved = parse_scopes("customers.name:raw customers.phone:masked transactions:read")
    consented = ["customers.phone:masked", "customers.email:raw", "customers.name:raw"]
    assert effective_scopes(approved, consented) == ["customers.phone:masked", "customers.name:raw"]
    with pytest.raises(InvalidInput):
        parse_scopes("customers.name:plain")
