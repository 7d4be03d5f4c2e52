"""``GET /v1/stores`` and ``GET /v1/products`` through the real ASGI app: scope, isolation, paging,
sealed cursors, the ledger entry before the response, and the demo's catalogue."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.db.session import Database
from appwarden.demo.catalog import Plan
from appwarden.demo.generator import build_platform
from appwarden.ledger.models import LedgerEntry
from appwarden.platform.models import Company, Product, Store
from conftest import Tenant, World
from test_broker import bearer, problem, register
from test_broker_ledger import ledger_broken

SHOP = ["stores:read", "products:read"]


def _walk(client: TestClient, path: str, headers: dict[str, str], limit: int) -> tuple[list[Any], list[str]]:
    rows: list[Any] = []
    issued: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, issued
        issued.append(cursor)


def _add_products(world: World, tenant: Tenant, n: int) -> list[Product]:
    with world.db.session() as session:
        products = [
            Product(
                company_id=tenant.company.id,
                store_id=tenant.stores[1].id if i % 3 == 2 else None,
                name=f"商品 {tenant.company.id}-{i}",
                price=100 * (i + 1),
            )
            for i in range(n)
        ]
        session.add_all(products)
        session.flush()
        session.expunge_all()
    return products


@pytest.fixture
def shop(world: World) -> World:
    register(world, "shop-sync", SHOP)
    return world


def test_stores_lists_the_tokens_company_only(client: TestClient, shop: World) -> None:
    t0, t1 = shop.tenants
    with shop.db.session() as session:  # more stores than one page
        company = session.get(Company, t0.company.id)
        assert company is not None
        session.add_all(Store(company_id=company.id, name=f"追加店 {i}") for i in range(5))
    headers = bearer(shop.connect("shop-sync", t0))
    rows, issued = _walk(client, "/v1/stores", headers, limit=2)
    with shop.db.session() as session:
        expected = [
            {"id": p, "name": n}
            for p, n in session.execute(
                select(Store.public_id, Store.name)
                .where(Store.company_id == t0.company.id)
                .order_by(Store.id)
            )
        ]
    assert rows == expected and len(rows) == 7 and len(issued) == 3
    assert not {s.public_id for s in t1.stores} & {r["id"] for r in rows}
    # Sealed cursors: bound to the listing, the app and the company.
    other = bearer(shop.connect("shop-sync", t1))
    problem(client.get("/v1/stores", params={"cursor": issued[0]}, headers=other), 422, "invalid_cursor")
    problem(client.get("/v1/products", params={"cursor": issued[0]}, headers=headers), 422, "invalid_cursor")
    problem(
        client.get("/v1/stores", params={"cursor": issued[0][:-2]}, headers=headers), 422, "invalid_cursor"
    )


def test_products_list_the_tokens_company_only(client: TestClient, shop: World) -> None:
    t0, t1 = shop.tenants
    mine = _add_products(shop, t0, 7)
    _add_products(shop, t1, 4)
    rows, issued = _walk(client, "/v1/products", bearer(shop.connect("shop-sync", t0)), limit=3)
    assert len(issued) == 2
    assert rows == [
        {
            "id": p.public_id,
            "name": p.name,
            "price": p.price,
            "store": t0.stores[1].public_id if p.store_id else None,
        }
        for p in mine
    ]
    assert all(r["id"].startswith("prd_") for r in rows)
    other = _walk(client, "/v1/products", bearer(shop.connect("shop-sync", t1)), limit=100)[0]
    assert len(other) == 4 and not {r["id"] for r in rows} & {r["id"] for r in other}


@pytest.mark.parametrize("path", ["/v1/stores", "/v1/products"])
def test_the_scope_is_required(client: TestClient, shop: World, path: str) -> None:
    t0 = shop.tenants[0]
    problem(client.get(path, headers=bearer(shop.connect("invoice-plus", t0))), 403, "insufficient_scope")
    # Consent narrower than the app's approval: only what the owner consented to.
    scope = "stores:read" if path == "/v1/stores" else "products:read"
    narrowed = [s for s in SHOP if s != scope]
    response = client.get(path, headers=bearer(shop.connect("shop-sync", t0, narrowed)))
    body = problem(response, 403, "insufficient_scope")
    assert body["required_scope"] == scope
    problem(client.get(path), 401, "invalid_token")


@pytest.mark.parametrize("path", ["/v1/stores", "/v1/products"])
def test_recorded_before_the_response_and_refused_without_the_ledger(
    client: TestClient, shop: World, db: Database, path: str
) -> None:
    t0 = shop.tenants[0]
    _add_products(shop, t0, 2)
    headers = bearer(shop.connect("shop-sync", t0))
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    with db.session() as session:
        entry = session.scalar(
            select(LedgerEntry).where(LedgerEntry.request_id == response.headers["x-request-id"])
        )
        assert entry is not None
        assert (entry.endpoint, entry.kind, entry.persons) == (f"GET {path}", "delivery", 0)
        assert entry.company_id == t0.company.id and entry.app_id == shop.apps["shop-sync"][0]
    with ledger_broken(db):
        refused = client.get(path, headers=headers)
    body = problem(refused, 503, "ledger_unavailable")
    assert "data" not in body


def test_openapi_documents_stores_and_products(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/stores", "/v1/products"):
        operation = paths[path]["get"]
        assert operation["description"] and {"403", "422", "503"} <= set(operation["responses"])


def test_the_demo_platform_has_a_catalogue(db: Database) -> None:
    build_platform(db, Plan(companies=3, stores=5, customers=40, seed=3))
    with db.session() as session:
        stores = {s.id: s.company_id for s in session.scalars(select(Store))}
        products = list(session.scalars(select(Product)))
    for company in set(stores.values()):
        own = [p for p in products if p.company_id == company]
        assert 7 <= len(own) <= 11 and all(p.price > 0 for p in own)
        only_here = [p for p in own if p.store_id is not None]
        assert len(only_here) == 1 and stores[only_here[0].store_id] == company
