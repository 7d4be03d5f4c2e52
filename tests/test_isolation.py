"""Tenant isolation, property-tested: no token of company A ever yields company B's data, by any path.

Three companies, three apps each connected to all of them; hypothesis picks the app, the two companies,
page sizes, field subsets, foreign ids, foreign and mutated cursors and foreign tokens. Example counts
are moderate so the suite stays quick (it also runs on PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from appwarden.broker import pseudonym
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.platform.models import Transaction
from conftest import World, build_world
from test_broker import bearer, in_app_order, own_key, problem, walk

APPS = ("invoice-plus", "loyalty-stamp", "booking-go")
FIELDS = {
    "invoice-plus": ("name", "phone"),
    "loyalty-stamp": ("name", "phone", "points", "rank"),
    "booking-go": ("name", "email", "phone"),
}
COMPANIES = 3
EXAMPLES = hypothesis_settings(max_examples=25, deadline=None, derandomize=True)


@dataclass
class Isolation:
    """The world, every (app, company) token, and what each token legitimately sees."""

    world: World
    client: TestClient
    settings: Settings
    headers: dict[tuple[str, int], dict[str, str]]
    seen: dict[tuple[str, int], list[dict[str, Any]]]

    def company_id(self, tenant: int) -> int:
        return self.world.tenants[tenant].company.id

    def decode(self, app: str, value: str, prefix: str) -> pseudonym.Decoded | None:
        key = pseudonym.app_key(self.settings.master_key, self.world.apps[app][0])
        return pseudonym.decode_one(key, value, prefix)


def build(client: TestClient, db: Database, app_settings: Settings) -> Isolation:
    world = build_world(db, companies=COMPANIES, customers=7)
    with db.session() as session:
        for tenant in world.tenants:
            for i, customer in enumerate(tenant.customers):
                session.add(
                    Transaction(
                        company_id=tenant.company.id,
                        store_id=tenant.stores[i % 2].id,
                        customer_id=customer.id if i % 2 else None,
                        amount=100 * tenant.company.id + i,
                    )
                )
    headers = {
        (app, t): bearer(world.connect(app, world.tenants[t])) for app in APPS for t in range(COMPANIES)
    }
    seen = {key: walk(client, h, limit=500) for key, h in headers.items()}
    return Isolation(world, client, app_settings, headers, seen)


def other(a: int, offset: int) -> int:
    return (a + offset) % COMPANIES


def test_listing_only_ever_yields_the_tokens_company(
    client: TestClient, db: Database, settings: Settings
) -> None:
    iso = build(client, db, settings)

    @EXAMPLES
    @given(
        app=st.sampled_from(APPS),
        a=st.integers(0, COMPANIES - 1),
        limit=st.integers(1, 9),
        subset=st.data(),
    )
    def check(app: str, a: int, limit: int, subset: st.DataObject) -> None:
        fields = subset.draw(st.lists(st.sampled_from(FIELDS[app]), min_size=1, unique=True))
        rows = walk(iso.client, iso.headers[(app, a)], limit=limit, fields=",".join(fields))
        tenant = iso.world.tenants[a]
        people = []
        for row in rows:
            decoded = iso.decode(app, row["id"], pseudonym.ID_PREFIX)
            assert decoded is not None and decoded.company_id == tenant.company.id
            people.append(decoded.customer_id)
            assert set(row) == {"id", *fields}
            for field in fields:
                value = row[field]
                if isinstance(value, str) and value.startswith(pseudonym.TOKEN_PREFIX):
                    token = iso.decode(app, value, pseudonym.TOKEN_PREFIX)
                    assert token == pseudonym.Decoded(field, tenant.company.id, decoded.customer_id)
        # Every one of A's, once, in this app's own order; nobody else's.
        assert people == in_app_order(iso.settings, iso.world, app, tenant, [c.id for c in tenant.customers])
        # Values are A's own (phones carry the company number in this world; masked: 090-****-NNNN
        # keeps the last group, which is the person's index in A).
        numbers = {f"090-****-{i:04d}" for i in range(len(tenant.customers))}
        for row in rows:
            if "phone" in row and row["phone"] is not None and app != "loyalty-stamp":
                assert row["phone"] in numbers

    check()


def test_foreign_ids_are_404(client: TestClient, db: Database, settings: Settings) -> None:
    iso = build(client, db, settings)

    @EXAMPLES
    @given(
        app=st.sampled_from(APPS),
        id_app=st.sampled_from(APPS),
        a=st.integers(0, COMPANIES - 1),
        offset=st.integers(0, COMPANIES - 1),
        index=st.integers(0, 6),
    )
    def check(app: str, id_app: str, a: int, offset: int, index: int) -> None:
        b = other(a, offset)
        foreign = iso.seen[(id_app, b)][index]
        response = iso.client.get(f"/v1/customers/{foreign['id']}", headers=iso.headers[(app, a)])
        if app == id_app and b == a:
            assert response.status_code == 200 and response.json()["data"] == foreign
        else:
            # B's id as the same app sees it through B's token, or another app's id: never found.
            problem(response, 404, "customer_not_found")

    check()


def test_foreign_and_mutated_cursors_are_refused(
    client: TestClient, db: Database, settings: Settings
) -> None:
    iso = build(client, db, settings)

    @EXAMPLES
    @given(
        app=st.sampled_from(APPS),
        cursor_app=st.sampled_from(APPS),
        a=st.integers(1, COMPANIES - 1),
        offset=st.integers(1, COMPANIES - 1),
        limit=st.integers(1, 6),
        resource=st.sampled_from(["customers", "transactions"]),
    )
    def check(app: str, cursor_app: str, a: int, offset: int, limit: int, resource: str) -> None:
        b = other(a, offset)
        if resource == "transactions" and "invoice-plus" not in (app, cursor_app):
            resource = "customers"  # only invoice-plus may read transactions
        source = iso.client.get(
            f"/v1/{resource}", params={"limit": limit}, headers=iso.headers[(cursor_app, b)]
        )
        if source.status_code == 403:
            return
        cursor = source.json()["next_cursor"]
        response = iso.client.get(
            f"/v1/{resource}", params={"cursor": cursor, "limit": limit}, headers=iso.headers[(app, a)]
        )
        if response.status_code == 403:
            assert app != "invoice-plus" and resource == "transactions"
            return
        problem(response, 422, "invalid_cursor")

    @EXAMPLES
    @given(
        app=st.sampled_from(APPS),
        a=st.integers(0, COMPANIES - 1),
        position=st.integers(0, 200),
        char=st.sampled_from("AZaz09-_.="),
        action=st.sampled_from(["replace", "insert", "delete", "truncate"]),
    )
    def mutated(app: str, a: int, position: int, char: str, action: str) -> None:
        headers = iso.headers[(app, a)]
        cursor = iso.client.get("/v1/customers", params={"limit": 2}, headers=headers).json()["next_cursor"]
        i = position % len(cursor)
        bad = {
            "replace": cursor[:i] + char + cursor[i + 1 :],
            "insert": cursor[:i] + char + cursor[i:],
            "delete": cursor[:i] + cursor[i + 1 :],
            "truncate": cursor[:i],
        }[action]
        response = iso.client.get("/v1/customers", params={"cursor": bad}, headers=headers)
        if bad == cursor:
            assert response.status_code == 200
        else:
            problem(response, 422, "invalid_cursor")

    check()
    mutated()


def test_transactions_only_of_the_tokens_company(
    client: TestClient, db: Database, settings: Settings
) -> None:
    iso = build(client, db, settings)

    @EXAMPLES
    @given(a=st.integers(0, COMPANIES - 1), limit=st.integers(1, 8))
    def check(a: int, limit: int) -> None:
        headers = iso.headers[("invoice-plus", a)]
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            body = iso.client.get("/v1/transactions", params=params, headers=headers).json()
            rows += body["data"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        company = iso.company_id(a)
        stores = {s.public_id for s in iso.world.tenants[a].stores}
        assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), key=own_key)  # the app's order
        assert sorted(r["amount"] for r in rows) == [100 * company + i for i in range(7)]
        for row in rows:
            assert row["store"] in stores
            if row["customer"] is not None:
                decoded = iso.decode("invoice-plus", row["customer"], pseudonym.ID_PREFIX)
                assert decoded is not None and decoded.company_id == company

    check()


def test_foreign_tokens_never_detokenize(client: TestClient, db: Database, settings: Settings) -> None:
    iso = build(client, db, settings)

    def tokens(app: str, t: int) -> list[str]:
        field = "phone" if app == "loyalty-stamp" else "name"
        return [r[field] for r in iso.seen[(app, t)] if r.get(field)]

    @EXAMPLES
    @given(
        app=st.sampled_from(["loyalty-stamp", "booking-go"]),
        token_app=st.sampled_from(["loyalty-stamp", "booking-go"]),
        a=st.integers(0, COMPANIES - 1),
        offset=st.integers(0, COMPANIES - 1),
        picks=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    )
    def check(app: str, token_app: str, a: int, offset: int, picks: list[int]) -> None:
        b = other(a, offset)
        pool = tokens(token_app, b)
        chosen = [pool[i % len(pool)] for i in picks]
        response = iso.client.post(
            "/v1/detokenize",
            json={"purpose": "property test", "tokens": chosen},
            headers=iso.headers[(app, a)],
        )
        if app == token_app and a == b:
            assert response.status_code == 200
            tenant = iso.world.tenants[a]
            values = {c.phone for c in tenant.customers} | {c.name for c in tenant.customers}
            assert all(item["value"] in values for item in response.json()["data"])
        else:
            problem(response, 404, "token_not_found")
            assert "data" not in response.json()

    check()


def test_restricted_tokens_never_cross_companies(
    client: TestClient, db: Database, settings: Settings
) -> None:
    """A restricted token minted through company A's access token reads A's named people only: any other
    id — B's person as the app sees them, A's people it was not minted for — is refused, never data."""
    iso = build(client, db, settings)
    app = "invoice-plus"
    minted: dict[int, tuple[dict[str, str], set[str]]] = {}
    for a in range(COMPANIES):
        named = [row["id"] for row in iso.seen[(app, a)][:3]]
        response = iso.client.post(
            "/v1/restricted-tokens",
            json={"customers": named, "fields": ["name", "phone"], "purpose": "property test"},
            headers=iso.headers[(app, a)],
        )
        assert response.status_code == 201, response.text
        minted[a] = ({"Authorization": f"Bearer {response.json()['restricted_token']}"}, set(named))

    @EXAMPLES
    @given(a=st.integers(0, COMPANIES - 1), offset=st.integers(0, COMPANIES - 1), index=st.integers(0, 6))
    def check(a: int, offset: int, index: int) -> None:
        b = other(a, offset)
        headers, named = minted[a]
        target = iso.seen[(app, b)][index]["id"]
        response = iso.client.get(f"/v1/customers/{target}", headers=headers)
        if a == b and target in named:
            data = response.json()["data"]
            assert response.status_code == 200 and data["name"].startswith(f"山田 太郎{a}-")
        else:
            assert "data" not in problem(response, 403, "customer_not_minted")
        # Minting with A's access token for B's person is refused as if nobody had that id.
        if a != b:
            refused = iso.client.post(
                "/v1/restricted-tokens",
                json={"customers": [target], "fields": ["name"], "purpose": "property test"},
                headers=iso.headers[(app, a)],
            )
            problem(refused, 404, "customer_not_found")

    check()
