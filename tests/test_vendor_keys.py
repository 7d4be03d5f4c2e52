"""A vendor's API keys: a lost key is replaced with the password (never re-shown or mailed), keys are
listed by prefix and revoked at once, and password guessing is throttled like every login."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.cli import run
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from screening_helpers import new_vendor

EMAIL = "security@invoice.example"  # new_vendor's address for "Invoice Vendor KK"
PASSWORD = "vendor-password-1"


def tags(db: Database, prefix: str) -> list[str]:
    with db.session() as session:
        return [t for t in session.scalars(select(SecurityEvent.tag)) if t.startswith(prefix)]


def test_a_lost_key_is_replaced_with_the_password_and_the_old_one_revoked(
    client: TestClient, db: Database
) -> None:
    vendor = new_vendor(client, db)
    issued = client.post("/vendor/keys", json={"email": EMAIL, "password": PASSWORD})
    assert issued.status_code == 201, issued.text
    new_key = issued.json()["api_key"]
    assert new_key.startswith("vk_") and new_key != vendor.key
    new_headers = {"Authorization": f"Bearer {new_key}"}

    listed = client.get("/vendor/keys", headers=new_headers).json()
    assert [k["prefix"] for k in listed] == [new_key[:10], vendor.key[:10]]
    assert all("api_key" not in k and k["revoked_at"] is None for k in listed)

    # Rotation: the new key revokes the old one, which stops working at once.
    gone = client.delete(f"/vendor/keys/{vendor.key[:10]}", headers=new_headers)
    assert gone.status_code == 200 and gone.json()["revoked_at"] is not None
    assert vendor.get("/vendor/apps").status_code == 401
    assert client.get("/vendor/apps", headers=new_headers).status_code == 200
    again = client.delete(f"/vendor/keys/{vendor.key[:10]}", headers=new_headers)
    assert (again.status_code, again.json()["code"]) == (404, "key_not_found")
    assert tags(db, "vendor:key:") == ["vendor:key:issued", "vendor:key:issued", "vendor:key:revoked"]


def test_a_wrong_password_gets_no_key_and_guessing_is_throttled(client: TestClient, db: Database) -> None:
    new_vendor(client, db)
    for password in ("wrong-password-1", "wrong-password-2"):
        refused = client.post("/vendor/keys", json={"email": EMAIL, "password": password})
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_vendor_login")
        assert "api_key" not in refused.text
    nobody = client.post("/vendor/keys", json={"email": "nobody@x.example", "password": PASSWORD})
    assert (nobody.status_code, nobody.json()["code"]) == (401, "invalid_vendor_login")
    assert len(tags(db, "vendor:login:failed")) == 3
    # Keep failing until the account is locked: then even the right password is refused.
    for _ in range(20):
        r = client.post("/vendor/keys", json={"email": EMAIL, "password": "still-wrong-123"})
        if r.status_code == 429:
            break
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    locked = client.post("/vendor/keys", json={"email": EMAIL, "password": PASSWORD})
    assert (locked.status_code, locked.json()["code"]) == (429, "login_throttled")
    assert tags(db, "vendor:key:issued") == ["vendor:key:issued"]  # only the account's first


@pytest.mark.parametrize(
    "body",
    [{}, {"email": EMAIL}, {"email": EMAIL, "password": "x" * 201}, {"email": 5, "password": PASSWORD}],
)
def test_bad_login_bodies_are_422(client: TestClient, db: Database, body: dict[str, object]) -> None:
    new_vendor(client, db)
    r = client.post("/vendor/keys", json=body)
    assert r.status_code == 422, r.text


def test_keys_commands(client: TestClient, db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    vendor = new_vendor(client, db)
    assert run(["vendors", "issue-key", "Invoice Vendor KK", "--json"]) == 0
    key = json.loads(capsys.readouterr().out)["api_key"]
    assert client.get("/vendor/apps", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert run(["vendors", "keys", vendor.vendor_id, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert run(["vendors", "revoke-key", "Invoice Vendor KK", key[:10], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prefix"] == key[:10]
    assert client.get("/vendor/apps", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert run(["vendors", "revoke-key", "Invoice Vendor KK", "vk_nothing"]) != 0
    assert "no live key" in capsys.readouterr().err
