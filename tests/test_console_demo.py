"""``appwarden demo`` prints one console login per role, and each signs in to its own landing page."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from appwarden.app import create_app
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import get_database
from console_world import sign_in

HOMES = {
    "store_owner": "/console/apps",
    "security_admin": "/console/security",
    "reviewer": "/console/reviews",
    "vendor": "/console/vendor/apps",
}


def test_demo_prints_one_working_login_per_role(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(["demo", "--no-serve", "--json", "--companies", "2", "--stores", "2", "--customers", "60"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    logins = summary["console_logins"]
    assert [login["role"] for login in logins] == list(HOMES)
    assert logins[0]["username"] == summary["logins"][0]["username"]  # the owner is the company's login
    assert {login["url"] for login in logins} == {f"{summary['base_url']}/console"}
    app = create_app(settings, get_database(settings))
    for login in logins:
        with TestClient(app, base_url="http://testserver") as client:
            assert sign_in(client, login["username"], login["password"]) == 303, login["role"]
            landing = client.get("/console")
            assert landing.url.path == HOMES[login["role"]]
            if login["role"] == "vendor":
                assert "invoice-plus" in landing.text
            if login["role"] == "store_owner":
                assert 'data-testid="connection"' in landing.text  # the demo connected apps to it
