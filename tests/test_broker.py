"""The data API: projection by grant in every mode, paging, cursors, parameters and errors."""

from __future__ import annotations

import base64
import re
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from appwarden.broker import pseudonym, service
from appwarden.config import Settings
from appwarden.digests import token_hash
from appwarden.marketplace import service as marketplace
from appwarden.marketplace.models import App
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.oauth.models import Connection, Token
from appwarden.platform import service as platform
from conftest import Tenant, World

TOKEN = re.compile(r"^tok_[A-Za-z0-9_-]{22}$")
CUS_ID = re.compile(r"^cus_[A-Za-z0-9_-]{22}$")
TXN_ID = re.compile(r"^txn_[A-Za-z0-9_-]{22}$")
PROBLEM = "application/problem+json"


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def walk(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every customer, following next_cursor to the end."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/customers", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        out.extend(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


def register(world: World, slug: str, scopes: list[str]) -> None:
    with world.db.session() as session:
        reg = marketplace.register_app(
            session,
            slug=slug,
            name=slug,
            redirect_uris=[f"https://{slug}.example/cb"],
            scopes=scopes,
            grandfathered=False,  # as the world's apps: screened, raw identifying fields by restricted token
        )
        world.apps[slug] = (reg.app.id, reg.app.client_id, reg.client_secret)


def internal_id(settings: Settings, world: World, slug: str, public: str) -> int:
    """Server-side decoding of an app's customer id (what only the platform can do)."""
    key = pseudonym.app_key(settings.master_key, world.apps[slug][0])
    decoded = pseudonym.decode_one(key, public, pseudonym.ID_PREFIX)
    assert decoded is not None
    return decoded.customer_id


def own_key(public: str) -> bytes:
    """The 16 bytes behind an app's own id (``cus_…`` / ``txn_…``): what its listings are sorted by."""
    return base64.urlsafe_b64decode(public[4:] + "==")


def in_app_order(settings: Settings, world: World, slug: str, tenant: Tenant, ids: list[int]) -> list[int]:
    """Internal customer ids in the order ``slug`` lists them: by its own pseudonym of each."""
    key = pseudonym.app_key(settings.master_key, world.apps[slug][0])
    return sorted(ids, key=lambda i: own_key(pseudonym.encode_one(key, tenant.company.id, "id", i)))


def by_person(
    settings: Settings, world: World, slug: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Listed rows in the platform's internal order (only the server can decode ids), so they line up
    with the fixtures; the listing itself is in the app's own order (asserted here on the way)."""
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), key=own_key)
    return sorted(rows, key=lambda r: internal_id(settings, world, slug, r["id"]))


# --- masking, pure ---


@pytest.mark.parametrize(
    ("masker", "value", "expected"),
    [
        (service.mask_name, "山田 太郎", "山田 **"),
        (service.mask_name, "山田\u3000太郎", "山田 **"),
        (service.mask_name, "ヤマダ タロウ", "ヤマダ **"),
        (service.mask_name, "山田太郎", "山**"),
        (service.mask_phone, "090-1234-5678", "090-****-5678"),
        (service.mask_phone, "03-1234-5678", "03-****-5678"),
        (service.mask_phone, "09012345678", "090-****-5678"),
        (service.mask_phone, "123", "****"),
        (service.mask_email, "yamada@example.com", "y***@example.com"),
        (service.mask_email, "broken", "***"),
        (service.mask_address, "東京都千代田区1-1", "東京都***"),
        (service.mask_address, "京都府京都市左京区", "京都府***"),
        (service.mask_address, "神奈川県横浜市", "神奈川県***"),
        (service.mask_address, "どこか", "***"),
        (service.mask_birthday, date(1985, 4, 1), "1985-**-**"),
    ],
)
def test_maskers(masker: Any, value: Any, expected: str) -> None:
    assert masker(value) == expected


def test_pseudonyms_are_stable_keyed_and_reversible() -> None:
    k1, k2 = pseudonym.app_key(b"m", 1), pseudonym.app_key(b"m", 2)
    a = pseudonym.encode_one(k1, 7, "phone", 42)
    assert TOKEN.match(a)
    assert a == pseudonym.encode_one(k1, 7, "phone", 42)
    assert a != pseudonym.encode_one(k2, 7, "phone", 42)
    assert a != pseudonym.encode_one(k1, 7, "email", 42)
    assert pseudonym.decode_one(k1, a, "tok_") == pseudonym.Decoded("phone", 7, 42)
    assert pseudonym.decode_one(k2, a, "tok_") is None  # another app's key: not a token at all
    assert pseudonym.decode_one(k1, a, "cus_") is None
    flipped = a[:-3] + ("A" if a[-3] != "A" else "B") + a[-2:]
    assert pseudonym.decode_one(k1, flipped, "tok_") is None
    assert CUS_ID.match(pseudonym.encode_one(k1, 7, "id", 42))
    with pytest.raises(OverflowError):
        pseudonym.encode_one(k1, 7, "id", 2**32)


# --- projection over HTTP ---


def test_raw_approved_identifying_fields_go_out_masked_and_absent_vs_null(
    client: TestClient, world: World, settings: Settings
) -> None:
    t0 = world.tenants[0]
    body = client.get("/v1/customers", headers=bearer(world.connect("invoice-plus", t0))).json()
    rows = by_person(settings, world, "invoice-plus", body["data"])
    assert len(rows) == 12 and body["next_cursor"] is None
    for row, customer in zip(rows, t0.customers, strict=True):
        assert set(row) == {"id", "name", "phone"}  # email, address, … are absent, not null
        assert CUS_ID.match(row["id"])
        # Approved raw, but an access token gets identifying fields masked (raw: restricted tokens).
        assert row["name"] == service.mask_name(customer.name) != customer.name
        assert row["phone"] == (None if customer.phone is None else service.mask_phone(customer.phone))
    assert rows[4]["phone"] is None  # granted but missing: null


def test_masked_and_token_modes(client: TestClient, world: World, settings: Settings) -> None:
    t0 = world.tenants[0]
    loyalty = client.get("/v1/customers", headers=bearer(world.connect("loyalty-stamp", t0))).json()["data"]
    booking = client.get("/v1/customers", headers=bearer(world.connect("booking-go", t0))).json()["data"]
    people = zip(
        by_person(settings, world, "loyalty-stamp", loyalty),
        by_person(settings, world, "booking-go", booking),
        strict=True,
    )
    for i, (lo, bo) in enumerate(people):
        assert set(lo) == {"id", "name", "phone", "points", "rank"}
        assert lo["name"] == "山田 **"
        assert lo["points"] == i * 10 and lo["rank"] == ("gold" if i % 3 == 0 else "silver")
        assert set(bo) == {"id", "name", "email", "phone"}
        assert TOKEN.match(bo["name"])
        if i % 5 == 4:
            assert lo["phone"] is None and bo["phone"] is None
        else:
            assert TOKEN.match(lo["phone"])
            assert bo["phone"] == f"090-****-{i:04d}"
        assert bo["email"] == (None if i % 4 == 3 else "t***@example.jp")
        assert lo["id"] != bo["id"]  # each app has its own id for the person
    # Stable across requests.
    again = client.get("/v1/customers", headers=bearer(world.connect("loyalty-stamp", t0))).json()["data"]
    assert again == loyalty


def test_kana_address_birthday_masks_and_tokens_differ_per_app(
    client: TestClient, world: World, settings: Settings
) -> None:
    t0 = world.tenants[0]
    with world.db.session() as session:
        company = platform.get_company(session, t0.company.public_id)
        platform.add_customers(
            session,
            company,
            [
                {
                    "home_store_id": t0.stores[0].id,
                    "name": "佐藤 花子",
                    "name_kana": "サトウ ハナコ",
                    "phone": "080-1111-2222",
                    "address": "大阪府大阪市北区1-2-3",
                    "birthday": date(1985, 4, 1),
                }
            ],
        )
    register(
        world,
        "masker",
        ["customers.name_kana:masked", "customers.address:masked", "customers.birthday:masked"],
    )
    register(world, "tokens-a", ["customers.phone:token", "customers.birthday:raw"])
    register(world, "tokens-b", ["customers.phone:token"])
    listed = client.get("/v1/customers", headers=bearer(world.connect("masker", t0))).json()["data"]
    last = by_person(settings, world, "masker", listed)[-1]  # the customer just added
    assert last == {
        "id": last["id"],
        "name_kana": "サトウ **",
        "address": "大阪府***",
        "birthday": "1985-**-**",
    }
    a = client.get("/v1/customers", headers=bearer(world.connect("tokens-a", t0))).json()["data"]
    b = client.get("/v1/customers", headers=bearer(world.connect("tokens-b", t0))).json()["data"]
    a, b = by_person(settings, world, "tokens-a", a), by_person(settings, world, "tokens-b", b)
    assert a[-1]["birthday"] == "1985-**-**" and a[0]["birthday"] is None  # raw-approved: masked
    for x, y in zip(a, b, strict=True):
        assert x["id"] != y["id"]
        assert x["phone"] is None or (TOKEN.match(x["phone"]) and x["phone"] != y["phone"])
    assert internal_id(settings, world, "tokens-a", a[-1]["id"]) == internal_id(
        settings, world, "tokens-b", b[-1]["id"]
    )


def test_consent_narrows_the_approved_scopes(client: TestClient, world: World) -> None:
    token = world.connect("invoice-plus", world.tenants[0], ["customers.name:raw"])
    rows = client.get("/v1/customers", headers=bearer(token)).json()["data"]
    assert all(set(r) == {"id", "name"} for r in rows)
    problem(client.get("/v1/customers?fields=phone", headers=bearer(token)), 403, "insufficient_scope")


def test_fields_parameter(client: TestClient, world: World) -> None:
    headers = bearer(world.connect("loyalty-stamp", world.tenants[0]))
    rows = client.get("/v1/customers?fields=points,name", headers=headers).json()["data"]
    assert all(set(r) == {"id", "name", "points"} for r in rows)
    assert problem(client.get("/v1/customers?fields=email", headers=headers), 403, "insufficient_scope")
    body = problem(
        client.get("/v1/customers?fields=name,shoe_size", headers=headers), 422, "invalid_parameter"
    )
    assert "shoe_size" in body["detail"]
    problem(client.get("/v1/customers?fields=", headers=headers), 422, "invalid_parameter")
    problem(client.get("/v1/customers?fields=name,,points", headers=headers), 422, "invalid_parameter")


def test_app_without_customer_fields_cannot_list(client: TestClient, world: World) -> None:
    token = world.connect("invoice-plus", world.tenants[0], ["transactions:read"])
    problem(client.get("/v1/customers", headers=bearer(token)), 403, "insufficient_scope")


# --- paging and cursors ---


@pytest.mark.parametrize("limit", [1, 5, 11, 12, 13, 500])
def test_pagination_walks_every_customer_once(
    client: TestClient, world: World, settings: Settings, limit: int
) -> None:
    t1 = world.tenants[1]
    rows = walk(client, bearer(world.connect("invoice-plus", t1)), limit=limit)
    order = in_app_order(settings, world, "invoice-plus", t1, [c.id for c in t1.customers])
    people = [internal_id(settings, world, "invoice-plus", r["id"]) for r in rows]
    assert people == order  # the app's own order, across pages
    assert len({r["id"] for r in rows}) == len(t1.customers)


def test_default_limit_is_100(client: TestClient, world: World) -> None:
    t0 = world.tenants[0]
    with world.db.session() as session:
        company = platform.get_company(session, t0.company.public_id)
        rows = [{"home_store_id": t0.stores[0].id, "name": f"追加 {i}"} for i in range(150)]
        platform.add_customers(session, company, rows)
    body = client.get("/v1/customers", headers=bearer(world.connect("invoice-plus", t0))).json()
    assert len(body["data"]) == 100 and body["next_cursor"]


@pytest.mark.parametrize("limit", ["0", "-1", "501", "abc", "1.5"])
def test_limit_bounds(client: TestClient, world: World, limit: str) -> None:
    headers = bearer(world.connect("invoice-plus", world.tenants[0]))
    problem(client.get(f"/v1/customers?limit={limit}", headers=headers), 422, "invalid_parameter")


def test_cursor_tampering_and_foreign_cursors(client: TestClient, world: World) -> None:
    t0, t1 = world.tenants
    own = bearer(world.connect("invoice-plus", t0))
    cursor = client.get("/v1/customers?limit=3", headers=own).json()["next_cursor"]
    assert client.get("/v1/customers", params={"cursor": cursor}, headers=own).status_code == 200
    for bad in [cursor[:-1] + ("A" if cursor[-1] != "A" else "B"), cursor[1:], "x", cursor + "x", ""]:
        problem(client.get("/v1/customers", params={"cursor": bad}, headers=own), 422, "invalid_cursor")
    other_company = client.get("/v1/customers?limit=3", headers=bearer(world.connect("invoice-plus", t1)))
    other_app = client.get("/v1/customers?limit=3", headers=bearer(world.connect("booking-go", t0)))
    for foreign in (other_company.json()["next_cursor"], other_app.json()["next_cursor"]):
        problem(client.get("/v1/customers", params={"cursor": foreign}, headers=own), 422, "invalid_cursor")
    # A customers cursor is not a transactions cursor.
    problem(client.get("/v1/transactions", params={"cursor": cursor}, headers=own), 422, "invalid_cursor")


# --- authentication and authorisation ---


def test_401s(client: TestClient, world: World) -> None:
    problem(client.get("/v1/customers"), 401, "invalid_token")
    problem(client.get("/v1/customers", headers={"Authorization": "Basic abc"}), 401, "invalid_token")
    problem(client.get("/v1/customers", headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
    expired = world.connect("invoice-plus", world.tenants[0])
    revoked = world.connect("invoice-plus", world.tenants[0])
    with world.db.session() as session:
        session.execute(
            update(Token)
            .where(Token.access_token_hash == token_hash(str(expired["access_token"])))
            .values(access_expires_at=Token.issued_at)
        )
        session.execute(
            update(Token)
            .where(Token.access_token_hash == token_hash(str(revoked["access_token"])))
            .values(revoked_at=Token.issued_at)
        )
    response = client.get("/v1/customers", headers=bearer(expired))
    problem(response, 401, "token_expired")
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem(client.get("/v1/customers", headers=bearer(revoked)), 401, "invalid_token")
    # Authentication comes before parameter checks: a bad caller learns nothing else.
    problem(client.get("/v1/customers?limit=0"), 401, "invalid_token")
    problem(client.post("/v1/detokenize", json={}), 401, "invalid_token")


@pytest.mark.parametrize(("state", "code"), [("suspended", "app_restricted"), ("delisted", "app_delisted")])
def test_suspended_or_delisted_app_is_refused(
    client: TestClient, world: World, state: str, code: str
) -> None:
    headers = bearer(world.connect("invoice-plus", world.tenants[0]))
    assert client.get("/v1/customers", headers=headers).status_code == 200
    with world.db.session() as session:
        app = session.get(App, world.apps["invoice-plus"][0])
        assert app is not None
        if state == "suspended":
            marketplace.suspend_app(session, app, actor="test", reason="test")
        else:
            marketplace.transition(session, app, LifecycleState.DELISTED, actor="test", reason="test")
    for path in ("/v1/customers", "/v1/transactions"):
        problem(client.get(path, headers=headers), 403, code)


def test_inactive_connection_is_refused(client: TestClient, world: World) -> None:
    headers = bearer(world.connect("invoice-plus", world.tenants[0]))
    with world.db.session() as session:
        session.execute(update(Connection).values(status="revoked"))
    problem(client.get("/v1/customers", headers=headers), 403, "connection_inactive")


def test_transactions_need_their_scope(client: TestClient, world: World) -> None:
    headers = bearer(world.connect("loyalty-stamp", world.tenants[0]))
    body = problem(client.get("/v1/transactions", headers=headers), 403, "insufficient_scope")
    assert body["required_scope"] == "transactions:read"


# --- single customer ---


def test_get_customer_by_own_id(client: TestClient, world: World) -> None:
    headers = bearer(world.connect("booking-go", world.tenants[0]))
    listed = client.get("/v1/customers", headers=headers).json()["data"]
    for row in listed[:5]:
        response = client.get(f"/v1/customers/{row['id']}", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"data": row}
        assert response.headers["x-request-id"].startswith("req_")
    narrowed = client.get(f"/v1/customers/{listed[0]['id']}?fields=email", headers=headers).json()["data"]
    assert narrowed == {"id": listed[0]["id"], "email": listed[0]["email"]}


def test_get_customer_of_another_company_or_app_is_404(client: TestClient, world: World) -> None:
    t0, t1 = world.tenants
    own = bearer(world.connect("invoice-plus", t0))
    theirs = client.get("/v1/customers", headers=bearer(world.connect("invoice-plus", t1))).json()["data"]
    other_app = client.get("/v1/customers", headers=bearer(world.connect("booking-go", t0))).json()["data"]
    for foreign in (theirs[0]["id"], other_app[0]["id"], "cus_nope", t0.customers[0].public_id, "1"):
        problem(client.get(f"/v1/customers/{foreign}", headers=own), 404, "customer_not_found")


# --- transactions ---


def _add_transactions(world: World, tenant: Tenant, count: int) -> None:
    from appwarden.platform.models import Transaction

    with world.db.session() as session:
        for i in range(count):
            session.add(
                Transaction(
                    company_id=tenant.company.id,
                    store_id=tenant.stores[i % 2].id,
                    customer_id=None if i % 3 == 2 else tenant.customers[i % 12].id,
                    amount=1000 + i,
                )
            )


def test_transactions(client: TestClient, world: World, settings: Settings) -> None:
    t0, t1 = world.tenants
    _add_transactions(world, t0, 7)
    _add_transactions(world, t1, 5)
    headers = bearer(world.connect("invoice-plus", t0))
    first = client.get("/v1/transactions?limit=4", headers=headers).json()
    second = client.get(
        "/v1/transactions", params={"limit": 4, "cursor": first["next_cursor"]}, headers=headers
    )
    listed = first["data"] + second.json()["data"]
    assert second.json()["next_cursor"] is None
    assert [r["id"] for r in listed] == sorted((r["id"] for r in listed), key=own_key)  # the app's order
    assert all(TXN_ID.match(r["id"]) for r in listed)
    rows = sorted(listed, key=lambda r: r["amount"])
    assert [r["amount"] for r in rows] == [1000 + i for i in range(7)]
    stores = {s.public_id for s in t0.stores}
    listed = {r["id"]: r for r in client.get("/v1/customers", headers=headers).json()["data"]}
    for i, row in enumerate(rows):
        assert row["id"].startswith("txn_") and row["store"] in stores
        if i % 3 == 2:
            assert row["customer"] is None
        else:
            assert row["customer"] in listed
            assert internal_id(settings, world, "invoice-plus", row["customer"]) == t0.customers[i % 12].id


# --- OpenAPI ---


def test_openapi_documents_the_data_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/v1/customers", "get"),
        ("/v1/customers/{customer_id}", "get"),
        ("/v1/transactions", "get"),
        ("/v1/detokenize", "post"),
    ]:
        operation = paths[path][method]
        assert operation["description"] and "503" in operation["responses"]
