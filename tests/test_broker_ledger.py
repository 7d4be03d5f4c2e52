"""The broker and the ledger: nothing leaves unrecorded, the index equals what left, detokenize is audited."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from appwarden.broker.auth import authenticate
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.events.service import EventTag
from appwarden.ledger import service as ledger
from appwarden.ledger.models import LedgerEntry
from appwarden.marketplace.scopes import CUSTOMER_FIELDS
from conftest import World
from test_broker import bearer, internal_id, problem, walk


@contextmanager
def ledger_broken(db: Database) -> Iterator[None]:
    """Make every ledger append fail for real, inside the database (no mocks), then repair it."""
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.execute(
                text(
                    "CREATE TRIGGER break_ledger BEFORE INSERT ON ledger_entries "
                    "BEGIN SELECT RAISE(ABORT, 'ledger disk on fire'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION break_ledger() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'ledger disk on fire'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER break_ledger BEFORE INSERT ON ledger_entries "
                    "FOR EACH ROW EXECUTE FUNCTION break_ledger()"
                )
            )
    try:
        yield
    finally:
        with db.engine.begin() as conn:
            if db.is_sqlite:
                conn.execute(text("DROP TRIGGER break_ledger"))
            else:
                conn.execute(text("DROP TRIGGER break_ledger ON ledger_entries"))
                conn.execute(text("DROP FUNCTION break_ledger()"))


def entries(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


def test_ledger_failure_means_503_and_no_data(client: TestClient, world: World) -> None:
    t0 = world.tenants[0]
    invoice = bearer(world.connect("invoice-plus", t0))
    loyalty = bearer(world.connect("loyalty-stamp", t0))
    known = client.get("/v1/customers", headers=invoice).json()["data"][0]["id"]
    token = client.get("/v1/customers", headers=loyalty).json()["data"][0]["phone"]
    before = entries(world.db)
    with ledger_broken(world.db):
        responses = [
            client.get("/v1/customers", headers=invoice),
            client.get(f"/v1/customers/{known}", headers=invoice),
            client.get("/v1/transactions", headers=invoice),
            client.post(
                "/v1/detokenize", json={"purpose": "support call", "tokens": [token]}, headers=loyalty
            ),
        ]
        for response in responses:
            body = problem(response, 503, "ledger_unavailable")
            assert set(body) <= {"type", "title", "status", "detail", "code", "instance", "request_id"}
            assert "data" not in body
            # Nothing of any customer anywhere in the problem (``instance`` is the caller's own request path).
            leaked = str({k: v for k, v in body.items() if k != "instance"})
            assert "山田" not in leaked and "090-" not in leaked and "cus_" not in leaked
    assert entries(world.db) == before  # nothing half-written
    with world.db.session() as session:
        failed = session.scalars(
            select(SecurityEvent).where(SecurityEvent.tag == EventTag.LEDGER_WRITE_FAILED)
        )
        assert len(list(failed)) == len(responses)
    # Repaired: service resumes.
    assert client.get("/v1/customers", headers=invoice).status_code == 200


def test_request_id_names_the_ledger_entry(client: TestClient, world: World) -> None:
    response = client.get(
        "/v1/customers?limit=3", headers=bearer(world.connect("invoice-plus", world.tenants[1]))
    )
    request_id = response.headers["x-request-id"]
    with world.db.session() as session:
        entry = session.scalar(select(LedgerEntry).where(LedgerEntry.request_id == request_id))
        assert entry is not None
        assert entry.endpoint == "GET /v1/customers"
        assert entry.company_id == world.tenants[1].company.id
        assert entry.app_id == world.apps["invoice-plus"][0]
        assert entry.persons == 3


def test_ledger_index_equals_what_was_delivered(client: TestClient, world: World, settings: Settings) -> None:
    t0, t1 = world.tenants
    delivered: dict[tuple[str, str, int], set[int]] = {}
    plans = [("loyalty-stamp", t0, {"limit": 5}), ("booking-go", t0, {"limit": 7, "fields": "email"})]
    plans += [("invoice-plus", t1, {"limit": 4})]
    for slug, tenant, params in plans:
        token = world.connect(slug, tenant)
        with world.db.session() as session:
            modes = authenticate(session, str(token["access_token"])).field_modes
        for row in walk(client, bearer(token), **params):
            person = internal_id(settings, world, slug, row["id"])
            for field, value in row.items():
                if field != "id" and value is not None:
                    delivered.setdefault((slug, field, tenant.company.id), set()).add(person)
                    assert modes[field]  # only granted fields appear
    # One more single-customer read by booking-go adds its name tokens for that person only.
    booking = bearer(world.connect("booking-go", t0))
    one = client.get("/v1/customers?limit=1", headers=booking).json()["data"][0]
    client.get(f"/v1/customers/{one['id']}", headers=booking)
    person = internal_id(settings, world, "booking-go", one["id"])
    for field in ("name", "email", "phone"):
        if one[field] is not None:
            delivered.setdefault(("booking-go", field, t0.company.id), set()).add(person)
    modes_of = {
        "invoice-plus": {"name": "masked", "phone": "masked"},  # raw-approved, masked by access token
        "loyalty-stamp": {"name": "masked", "phone": "token", "points": "raw", "rank": "raw"},
        "booking-go": {"name": "token", "email": "masked", "phone": "masked"},
    }
    with world.db.session() as session:
        for slug, (app_id, _, _) in world.apps.items():
            for tenant in world.tenants:
                for field in CUSTOMER_FIELDS:
                    for mode in ("raw", "masked", "token"):
                        got = set(
                            ledger.persons(
                                session, app_id=app_id, field=field, mode=mode, company_id=tenant.company.id
                            )
                        )
                        expected = set()
                        if modes_of[slug].get(field) == mode:
                            expected = delivered.get((slug, field, tenant.company.id), set())
                        assert got == expected, (slug, tenant.company.id, field, mode)
    # Nulls are not deliveries: the phone set leaves out the people without a phone.
    assert delivered[("loyalty-stamp", "phone", t0.company.id)] == {c.id for c in t0.customers if c.phone}


# --- detokenize ---


def _tokens(client: TestClient, headers: dict[str, str], field: str) -> list[str]:
    return [r[field] for r in client.get("/v1/customers", headers=headers).json()["data"] if r[field]]


def test_detokenize_round_trip_is_recorded(client: TestClient, world: World, settings: Settings) -> None:
    t0 = world.tenants[0]
    headers = bearer(world.connect("loyalty-stamp", t0))
    rows = [r for r in client.get("/v1/customers", headers=headers).json()["data"] if r["phone"]][:3]
    tokens = [r["phone"] for r in rows]
    response = client.post(
        "/v1/detokenize", json={"purpose": "delivery call", "tokens": tokens}, headers=headers
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    phone_of = {c.id: c.phone for c in t0.customers}
    phones = [phone_of[internal_id(settings, world, "loyalty-stamp", r["id"])] for r in rows]
    assert data == [{"token": t, "field": "phone", "value": p} for t, p in zip(tokens, phones, strict=True)]
    people = {c.id for c in t0.customers if c.phone and c.phone in phones}
    with world.db.session() as session:
        app_id = world.apps["loyalty-stamp"][0]
        assert set(ledger.persons(session, app_id=app_id, field="phone", mode="raw")) == people
        entry = session.scalar(
            select(LedgerEntry).where(LedgerEntry.request_id == response.headers["x-request-id"])
        )
        assert entry is not None and entry.kind == "detokenize" and entry.persons == 3
        event = session.scalar(select(SecurityEvent).where(SecurityEvent.tag == EventTag.DETOKENIZE))
        assert event is not None and event.app_id == app_id and event.company_id == t0.company.id
        assert event.data["purpose"] == "delivery call" and event.data["tokens"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"tokens": ["tok_x"]},
        {"purpose": "", "tokens": ["tok_x"]},
        {"purpose": "   ", "tokens": ["tok_x"]},
        {"purpose": "why", "tokens": []},
        {"purpose": "why", "tokens": "tok_x"},
        {"purpose": "why", "tokens": ["tok_x"] * 101},
        {"purpose": "why"},
    ],
)
def test_detokenize_bad_requests(client: TestClient, world: World, body: dict[str, Any]) -> None:
    headers = bearer(world.connect("loyalty-stamp", world.tenants[0]))
    problem(client.post("/v1/detokenize", json=body, headers=headers), 422, "invalid_parameter")


def test_detokenize_refuses_foreign_tokens_all_or_nothing(client: TestClient, world: World) -> None:
    t0, t1 = world.tenants
    own = bearer(world.connect("loyalty-stamp", t0))
    mine = _tokens(client, own, "phone")
    other_company = _tokens(client, bearer(world.connect("loyalty-stamp", t1)), "phone")
    other_app = _tokens(client, bearer(world.connect("booking-go", t0)), "name")
    own_id = client.get("/v1/customers", headers=own).json()["data"][0]["id"]
    before = entries(world.db)
    for foreign in (other_company[0], other_app[0], own_id, "tok_" + "A" * 22, "garbage"):
        body = {"purpose": "why", "tokens": [mine[0], foreign]}
        response = client.post("/v1/detokenize", json=body, headers=own)
        problem(response, 404, "token_not_found")
        assert "090-" not in response.text
    assert entries(world.db) == before


def test_detokenize_needs_the_field_still_granted_in_token_mode(client: TestClient, world: World) -> None:
    t0 = world.tenants[0]
    full = bearer(world.connect("booking-go", t0))
    names = _tokens(client, full, "name")
    # The owner withdraws consent for the name: old tokens can no longer be exchanged.
    narrowed = bearer(world.connect("booking-go", t0, ["customers.email:masked", "customers.phone:masked"]))
    body = problem(
        client.post("/v1/detokenize", json={"purpose": "x", "tokens": names[:2]}, headers=narrowed),
        403,
        "insufficient_scope",
    )
    assert body["required_scope"] == ["customers.name:token"]
