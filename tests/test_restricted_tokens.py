"""Restricted tokens over the real ASGI app: raw identifying fields leave only through them, for the
named customers and fields, for at most 5 minutes, of one company, on one route, with their purpose in
the ledger; an access token gets the same fields masked; the kill switch and the access token's
revocation end them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from appwarden.broker.auth import authenticate
from appwarden.broker.restricted import RestrictedTokenIn, mint_restricted
from appwarden.broker.service import mask_name, mask_phone
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.errors import Unauthenticated
from appwarden.events.models import SecurityEvent
from appwarden.incident.blast_radius import compute_blast_radius
from appwarden.ledger.models import LedgerEntry
from appwarden.ledger.queries import list_entries
from appwarden.ledger.verify import verify
from appwarden.monitor.runtime import monitor_of
from appwarden.oauth.models import RestrictedToken
from conftest import Tenant, World
from test_blast_radius import incident_for
from test_broker import bearer, problem, walk

APP = "invoice-plus"  # approved customers.name:raw, customers.phone:raw, transactions:read
PURPOSE = "print the delivery slip for order 1042"


def listed(client: TestClient, token: dict[str, Any]) -> list[dict[str, Any]]:
    """The app's own customers (ids ``cus_…``), as its access token lists them."""
    return walk(client, bearer(token), limit=500)


def mint(client: TestClient, token: dict[str, Any], **body: Any) -> Any:
    body = {"fields": ["name", "phone"], "purpose": PURPOSE, **body}
    return client.post("/v1/restricted-tokens", json=body, headers=bearer(token))


def rt(minted: Any) -> dict[str, str]:
    assert minted.status_code == 201, minted.text
    return {"Authorization": f"Bearer {minted.json()['restricted_token']}"}


def by_id(settings: Settings, world: World, tenant: Tenant, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``cus_…`` id → the platform's customer row (what only the server can decode)."""
    from test_broker import internal_id

    customers = {c.id: c for c in tenant.customers}
    return {r["id"]: customers[internal_id(settings, world, APP, r["id"])] for r in rows}


@pytest.fixture
def setup(
    client: TestClient, world: World, settings: Settings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    token = world.connect(APP, world.tenants[0])
    return token, listed(client, token)


def test_the_access_token_gets_masked_the_restricted_token_raw_with_its_purpose_in_the_ledger(
    client: TestClient, world: World, settings: Settings, setup: Any
) -> None:
    token, rows = setup
    t0 = world.tenants[0]
    people = by_id(settings, world, t0, rows)
    first = rows[0]["id"]
    customer = people[first]
    # The access token: approved raw, delivered masked.
    masked = client.get(f"/v1/customers/{first}", headers=bearer(token)).json()["data"]
    assert masked == {"id": first, "name": mask_name(customer.name), "phone": mask_phone(customer.phone)}

    minted = mint(client, token, customers=[first, rows[1]["id"], first], expires_in=120)
    body = minted.json()
    assert minted.status_code == 201 and minted.headers["cache-control"] == "no-store"
    assert body["id"].startswith("rdt_") and body["restricted_token"].startswith("rtk_")
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 120
    assert body["customers"] == [first, rows[1]["id"]]  # duplicates named once
    assert body["fields"] == ["name", "phone"] and body["purpose"] == PURPOSE

    got = client.get(f"/v1/customers/{first}", headers=rt(minted))
    assert got.status_code == 200, got.text
    assert got.json()["data"] == {"id": first, "name": customer.name, "phone": customer.phone}
    narrowed = client.get(f"/v1/customers/{first}?fields=name", headers=rt(minted)).json()["data"]
    assert narrowed == {"id": first, "name": customer.name}

    # Stored hashed: the plaintext is nowhere in the table.
    with world.db.session() as session:
        row = session.scalar(select(RestrictedToken).where(RestrictedToken.public_id == body["id"]))
        assert row is not None and body["restricted_token"] not in row.token_hash
        assert row.company_id == t0.company.id and row.customer_ids == sorted(
            {customer.id, people[rows[1]["id"]].id}
        )
        event = session.scalar(
            select(SecurityEvent).where(SecurityEvent.tag == "broker:restricted-token:minted")
        )
        assert (
            event is not None
            and event.data["purpose"] == PURPOSE
            and event.data["restricted_token"] == body["id"]
        )
        # The event names its people (platform ids), so each person's history can show it.
        assert event.data["named"] == sorted({customer.public_id, people[rows[1]["id"]].public_id})

    # The ledger: the minting and each delivery made with it carry the token and the purpose.
    entries = list_entries(world.db, app=APP)["data"]
    restricted = [e for e in entries if e["restricted_token"] is not None]
    assert [(e["kind"], e["endpoint"]) for e in restricted] == [
        ("restricted_mint", "POST /v1/restricted-tokens"),
        ("restricted", "GET /v1/customers/{id}"),
        ("restricted", "GET /v1/customers/{id}"),
    ]
    assert {e["restricted_token"] for e in restricted} == {body["id"]}
    assert {e["purpose"] for e in restricted} == {PURPOSE}
    assert restricted[0]["persons"] == 0 and restricted[1]["fields"] == {"name:raw": 1, "phone:raw": 1}
    assert all(e["purpose"] is None for e in entries if e["kind"] == "delivery")
    assert verify(world.db).intact

    # The blast radius counts what went out with the restricted token as raw.
    radius = compute_blast_radius(world.db, incident_for(world, APP)).to_dict()
    assert radius["fields"]["name"]["raw"] == 1 and radius["fields"]["name"]["masked"] == len(t0.customers)


def test_the_purpose_is_inside_the_chain(client: TestClient, world: World, setup: Any) -> None:
    token, rows = setup
    client.get(f"/v1/customers/{rows[0]['id']}", headers=rt(mint(client, token, customers=[rows[0]["id"]])))
    client.get(f"/v1/customers/{rows[0]['id']}", headers=bearer(token))  # an authentic entry after it
    with world.db.session() as session:
        session.execute(
            update(LedgerEntry).where(LedgerEntry.kind == "restricted").values(purpose="nothing to see")
        )
    report = verify(world.db)
    assert not report.intact and {p.kind for p in report.problems} == {"altered"}


def test_expiry_with_an_injected_clock(
    client: TestClient, world: World, settings: Settings, setup: Any
) -> None:
    token, rows = setup
    issued = utcnow() - timedelta(minutes=10)
    with world.db.sessionmaker() as session:
        session.begin()
        ctx = authenticate(session, str(token["access_token"]))
        body = RestrictedTokenIn(customers=[rows[0]["id"]], fields=["name"], purpose=PURPOSE, expires_in=300)
        minted = mint_restricted(
            session,
            world.db,
            settings,
            ctx,
            body,
            monitor=monitor_of(client.app),
            request_id="req_clock",
            now=issued,
        )
    bearer_rt = str(minted["restricted_token"])
    assert minted["expires_at"] == (issued + timedelta(seconds=300)).isoformat()
    with world.db.sessionmaker() as session:
        ok = authenticate(session, bearer_rt, now=issued + timedelta(seconds=299), allow_restricted=True)
        assert ok.restriction is not None and ok.restriction.fields == ("name",)
        with pytest.raises(Unauthenticated) as expired:
            authenticate(session, bearer_rt, now=issued + timedelta(seconds=300), allow_restricted=True)
        assert expired.value.code == "token_expired"
    response = client.get(f"/v1/customers/{rows[0]['id']}", headers={"Authorization": f"Bearer {bearer_rt}"})
    problem(response, 401, "token_expired")
    assert "data" not in response.json()


def test_only_the_named_customers_and_fields(
    client: TestClient, world: World, settings: Settings, setup: Any
) -> None:
    token, rows = setup
    headers = rt(mint(client, token, customers=[rows[0]["id"]], fields=["name"]))
    # Another customer of the same company, a made-up id, another company's id: refused before any read.
    other_company = listed(client, world.connect(APP, world.tenants[1]))[0]["id"]
    for wrong in (rows[1]["id"], "cus_AAAAAAAAAAAAAAAAAAAAAA", "nobody", other_company):
        body = problem(client.get(f"/v1/customers/{wrong}", headers=headers), 403, "customer_not_minted")
        assert "data" not in body
    # A field it was not minted for (though granted raw to the access token), an unknown one.
    problem(
        client.get(f"/v1/customers/{rows[0]['id']}?fields=phone", headers=headers), 403, "field_not_minted"
    )
    problem(
        client.get(f"/v1/customers/{rows[0]['id']}?fields=shoe", headers=headers), 422, "invalid_parameter"
    )


def test_minting_checks_fields_against_the_raw_grant(client: TestClient, world: World, setup: Any) -> None:
    token, rows = setup
    one = [rows[0]["id"]]
    denied = problem(mint(client, token, customers=one, fields=["email"]), 403, "insufficient_scope")
    assert denied["required_scope"] == ["customers.email:raw"]
    problem(mint(client, token, customers=one, fields=["points"]), 422, "invalid_parameter")
    problem(mint(client, token, customers=one, fields=["shoe_size"]), 422, "invalid_parameter")
    # An access token consented without the raw scope cannot mint for it.
    narrow = world.connect(APP, world.tenants[0], ["customers.name:raw"])
    problem(mint(client, narrow, customers=one, fields=["phone"]), 403, "insufficient_scope")
    # An app approved only masked or token for a field has nothing to mint.
    stamp = world.connect("loyalty-stamp", world.tenants[0])
    stamp_ids = [listed(client, stamp)[0]["id"]]
    problem(mint(client, stamp, customers=stamp_ids, fields=["name"]), 403, "insufficient_scope")


def test_ids_of_another_company_are_refused_without_revealing_existence(
    client: TestClient, world: World, setup: Any
) -> None:
    token, rows = setup
    theirs = listed(client, world.connect(APP, world.tenants[1]))[0]["id"]
    foreign = problem(mint(client, token, customers=[rows[0]["id"], theirs]), 404, "customer_not_found")
    made_up = problem(
        mint(client, token, customers=[rows[0]["id"], "cus_" + "B" * 22]), 404, "customer_not_found"
    )
    assert set(foreign) == set(made_up) and foreign["title"] == made_up["title"]
    with world.db.session() as session:  # all or nothing: no token was stored
        assert session.scalar(select(RestrictedToken.id)) is None


def test_reuse_across_companies_is_impossible(
    client: TestClient, world: World, settings: Settings, setup: Any
) -> None:
    token0, rows0 = setup
    t1 = world.tenants[1]
    token1 = world.connect(APP, t1)
    rows1 = listed(client, token1)
    headers0 = rt(mint(client, token0, customers=[rows0[0]["id"]]))
    # Company 0's restricted token never reads company 1's people, whatever id is presented.
    for row in rows1:
        problem(client.get(f"/v1/customers/{row['id']}", headers=headers0), 403, "customer_not_minted")
    # Company 1's access token cannot mint for company 0's ids either; its own token reads its own only.
    problem(mint(client, token1, customers=[rows0[0]["id"]]), 404, "customer_not_found")
    headers1 = rt(mint(client, token1, customers=[rows1[0]["id"]]))
    got = client.get(f"/v1/customers/{rows1[0]['id']}", headers=headers1).json()["data"]
    assert got["name"] == by_id(settings, world, t1, rows1)[rows1[0]["id"]].name
    problem(client.get(f"/v1/customers/{rows0[0]['id']}", headers=headers1), 403, "customer_not_minted")


def test_every_other_route_refuses_a_restricted_token(client: TestClient, setup: Any) -> None:
    token, rows = setup
    headers = rt(mint(client, token, customers=[rows[0]["id"]]))
    for response in (
        client.get("/v1/customers", headers=headers),
        client.get("/v1/transactions", headers=headers),
        client.get("/v1/stores", headers=headers),
        client.get("/v1/products", headers=headers),
        client.post("/v1/detokenize", json={"purpose": "p", "tokens": ["tok_x"]}, headers=headers),
        client.post(
            "/v1/restricted-tokens",
            json={"customers": [rows[0]["id"]], "fields": ["name"], "purpose": "p"},
            headers=headers,
        ),
    ):
        assert "data" not in problem(response, 403, "restricted_token_not_accepted")


def test_the_kill_switch_and_revocation_end_restricted_tokens(
    client: TestClient, world: World, setup: Any, admin_headers: dict[str, str]
) -> None:
    token, rows = setup
    first = rows[0]["id"]
    # Revoking the access token (RFC 7009) takes the restricted tokens it minted with it.
    revoked = rt(mint(client, token, customers=[first]))
    _, client_id, secret = world.apps[APP]
    response = client.post("/oauth/revoke", data={"token": token["access_token"]}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    problem(client.get(f"/v1/customers/{first}", headers=revoked), 401, "invalid_token")

    fresh = world.connect(APP, world.tenants[0])
    live = rt(mint(client, fresh, customers=[first]))
    assert client.get(f"/v1/customers/{first}", headers=live).status_code == 200
    killed = client.post(
        "/admin/incidents", json={"apps": [APP], "reason": "dump found"}, headers=admin_headers
    )
    assert killed.status_code in (200, 201), killed.text
    assert "data" not in problem(client.get(f"/v1/customers/{first}", headers=live), 403, "app_delisted")
    with world.db.session() as session:
        assert all(r.revoked_at is not None for r in session.scalars(select(RestrictedToken)))


def test_minting_is_capped_per_connection(
    client: TestClient, world: World, settings: Settings, setup: Any
) -> None:
    token, rows = setup
    client.app.state.settings = settings.model_copy(update={"restricted_token_mints_per_minute": 2})  # type: ignore[attr-defined]
    one = [rows[0]["id"]]
    assert [mint(client, token, customers=one).status_code for _ in range(2)] == [201, 201]
    capped = mint(client, token, customers=one)
    problem(capped, 429, "restricted_token_cap")
    assert capped.headers["retry-after"] == "60"
    # Another company's connection of the same app has a cap of its own.
    other = world.connect(APP, world.tenants[1])
    assert mint(client, other, customers=[listed(client, other)[0]["id"]]).status_code == 201


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"customers": ["cus_x"], "fields": ["name"], "purpose": "p"', "json"),  # malformed
        ({"customers": [f"cus_{i}" for i in range(101)], "fields": ["name"], "purpose": "p"}, "customers"),
        ({"customers": [], "fields": ["name"], "purpose": "p"}, "customers"),
        ({"customers": ["cus_x"], "fields": ["name"], "purpose": "p", "expires_in": 301}, "expires_in"),
        ({"customers": ["cus_x"], "fields": ["name"], "purpose": "p", "expires_in": 0}, "expires_in"),
        ({"customers": ["cus_x"], "fields": ["name"]}, "purpose"),
        ({"customers": ["cus_x"], "fields": ["name"], "purpose": "   "}, "purpose"),
        ({"customers": ["cus_x"], "fields": ["name"], "purpose": "x" * 501}, "purpose"),
        ({"customers": ["cus_x"], "fields": ["name"], "purpose": "\ud800"}, "purpose"),
        ({"customers": ["cus_x"], "fields": ["name"], "purpose": "p", "scope": "all"}, "scope"),
        ({"customers": "cus_x", "fields": ["name"], "purpose": "p"}, "customers"),
        ({"customers": ["cus_x"], "fields": [], "purpose": "p"}, "fields"),
    ],
)
def test_bad_input_to_the_mint_route_is_a_precise_422(
    client: TestClient, setup: Any, body: Any, fragment: str
) -> None:
    token, rows = setup
    headers = {**bearer(token), "Content-Type": "application/json"}
    if isinstance(body, dict):
        # Real ids where the case is not about them, so only the named defect can be refused.
        if body.get("customers") == ["cus_x"]:
            body["customers"] = [rows[0]["id"]]
        import json

        content = json.dumps(body)
    else:
        content = body
    response = client.post("/v1/restricted-tokens", content=content, headers=headers)
    refused = problem(response, 422, "invalid_parameter")
    assert fragment in refused["detail"].lower()


def test_credentials_before_the_body(client: TestClient) -> None:
    response = client.post(
        "/v1/restricted-tokens", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    problem(response, 401, "invalid_token")
    unknown = client.post(
        "/v1/restricted-tokens", content=b"{}", headers={"Authorization": "Bearer rtk_unknown"}
    )
    problem(unknown, 401, "invalid_token")


def test_openapi_documents_the_route_and_its_problems(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/v1/restricted-tokens"]["post"]
    assert {"201", "401", "403", "404", "422", "429", "503"} <= set(route["responses"])
    assert "restricted_token_cap" in route["responses"]["429"]["description"]
    one = spec["paths"]["/v1/customers/{customer_id}"]["get"]
    assert "customer_not_minted" in one["responses"]["403"]["description"]
