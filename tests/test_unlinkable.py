"""Two apps connected to the same company cannot link any person through ids, tokens, cursors or order.

Per-app pseudonyms (``cus_…``, ``tok_…``, ``txn_…``) exist so that vendors cannot join their data across
apps. The listing must not undo that: cursors are sealed (no internal id inside, not decodable without the
server's key) and each app walks the company in an order of its own, a keyed permutation unrelated to
another app's and to the internal ids. The test knows who is who through the platform's internal ids
(server-side decoding), which no app can do. Everything is deterministic: the master key, the app ids
and the data are fixed.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np
import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer

from appwarden.broker import cursor as cursors
from appwarden.broker import ordering
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import InvalidInput
from appwarden.platform.models import Transaction
from appwarden.platform.service import delete_customer
from conftest import World, build_world
from test_broker import bearer, internal_id, own_key, problem, register

PEOPLE = 300
# Only pseudonymous fields: whatever the two apps hold in common must come from the listing itself.
SCOPES = ["customers.name:token", "customers.phone:token", "customers.email:token", "transactions:read"]
TWINS = ("twin-a", "twin-b")
# Chance alone puts about one person at the same position in two independent orders of 300.
SAME_POSITION_MAX = 0.03 * PEOPLE
RHO_MAX = 0.25  # |Spearman rho| of two unrelated orders of 300 is above this with probability < 1e-5


def _walk(client: TestClient, path: str, headers: dict[str, str], limit: int) -> tuple[list[Any], list[str]]:
    """Every row of a listing, and every cursor handed out on the way."""
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


def _strings(rows: list[dict[str, Any]]) -> set[str]:
    return {v for row in rows for v in row.values() if isinstance(v, str)}


def _id_spellings(internal: int) -> list[bytes]:
    """The ways an internal id could sit in a cursor's bytes as a number (as text: see ``_text``)."""
    return [internal.to_bytes(4, "big"), internal.to_bytes(4, "little")]


def _text(cursor: str) -> Any:
    """What a readable cursor carried: the JSON before the signature (None when there is none)."""
    try:
        return orjson.loads(_unb64(cursor.split(".")[0]))
    except (orjson.JSONDecodeError, ValueError):
        return None


def _unb64(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _rho(x: list[int], y: list[int]) -> float:
    """Spearman's rank correlation of two position lists (positions are ranks already)."""
    return float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])


@pytest.fixture
def twins(db: Database, client: TestClient) -> tuple[World, dict[str, dict[str, str]]]:
    world = build_world(db, companies=2, customers=PEOPLE)
    tenant = world.tenants[0]
    with db.session() as session:
        for i, customer in enumerate(tenant.customers):
            session.add(
                Transaction(
                    company_id=tenant.company.id,
                    store_id=tenant.stores[i % 2].id,
                    customer_id=customer.id,
                    amount=10_000 + i,  # unique: the test's way to know which sale is which
                )
            )
    for slug in TWINS:
        register(world, slug, SCOPES)
    return world, {slug: bearer(world.connect(slug, tenant)) for slug in TWINS}


def test_two_apps_cannot_link_customers(
    client: TestClient, settings: Settings, twins: tuple[World, dict[str, dict[str, str]]]
) -> None:
    world, headers = twins
    tenant = world.tenants[0]
    listed = {slug: _walk(client, "/v1/customers", headers[slug], limit=7) for slug in TWINS}
    (rows_a, cursors_a), (rows_b, cursors_b) = listed["twin-a"], listed["twin-b"]
    assert len(rows_a) == len(rows_b) == PEOPLE

    # Ids and tokens: not one string in common.
    assert not _strings(rows_a) & _strings(rows_b)
    assert not set(cursors_a) & set(cursors_b)

    # Order: who stands where in one app's listing says nothing about the other's, or about internal ids.
    def positions(slug: str, rows: list[dict[str, Any]]) -> dict[int, int]:
        return {internal_id(settings, world, slug, r["id"]): i for i, r in enumerate(rows)}

    pos_a, pos_b = positions("twin-a", rows_a), positions("twin-b", rows_b)
    people = sorted(pos_a)
    assert people == sorted(pos_b) == sorted(c.id for c in tenant.customers)
    same = sum(pos_a[p] == pos_b[p] for p in people)
    assert same < SAME_POSITION_MAX, same
    assert abs(_rho([pos_a[p] for p in people], [pos_b[p] for p in people])) < RHO_MAX
    assert abs(_rho([pos_a[p] for p in people], people)) < RHO_MAX  # nor the platform's own order

    # Cursors: sealed. No internal id in their bytes, nothing decodable without the server's key, and
    # what the server finds inside is the app's own position (its id of the page's last person).
    master = settings.master_key
    for slug, (rows, issued) in listed.items():
        app_id = world.apps[slug][0]
        for page, cursor in enumerate(issued):
            last = rows[page * 7 + 6]
            raw = _unb64(cursor)
            assert _text(cursor) is None
            for spelling in _id_spellings(internal_id(settings, world, slug, last["id"])):
                assert spelling not in raw
            bound = {"listing": "customers", "app_id": app_id, "company_id": tenant.company.id}
            assert cursors.decode(master, cursor, **bound)[:16] == own_key(last["id"])
            with pytest.raises(InvalidInput):
                cursors.decode(b"another master key, 32 bytes....", cursor, **bound)
            with pytest.raises(InvalidInput):  # the other twin's binding
                cursors.decode(master, cursor, **{**bound, "app_id": world.apps[TWINS[slug == "twin-a"]][0]})
    # And each twin's cursor is refused by the other: 422, like any foreign cursor.
    problem(
        client.get("/v1/customers", params={"cursor": cursors_a[0]}, headers=headers["twin-b"]),
        422,
        "invalid_cursor",
    )


def test_two_apps_cannot_link_transactions_by_id_or_order(
    client: TestClient, settings: Settings, twins: tuple[World, dict[str, dict[str, str]]]
) -> None:
    world, headers = twins
    listed = {slug: _walk(client, "/v1/transactions", headers[slug], limit=9) for slug in TWINS}
    (rows_a, cursors_a), (rows_b, cursors_b) = listed["twin-a"], listed["twin-b"]
    assert len(rows_a) == len(rows_b) == PEOPLE
    ids = [{r["id"] for r in rows} | {r["customer"] for r in rows} for rows in (rows_a, rows_b)]
    assert not ids[0] & ids[1]  # neither the sale's id nor the member's id is shared
    assert not set(cursors_a) & set(cursors_b)
    pos_a = {r["amount"]: i for i, r in enumerate(rows_a)}
    pos_b = {r["amount"]: i for i, r in enumerate(rows_b)}
    sales = sorted(pos_a)  # amounts rise with the internal transaction id
    assert sum(pos_a[s] == pos_b[s] for s in sales) < SAME_POSITION_MAX
    assert abs(_rho([pos_a[s] for s in sales], [pos_b[s] for s in sales])) < RHO_MAX
    assert abs(_rho([pos_a[s] for s in sales], sales)) < RHO_MAX
    customers = world.tenants[0].customers
    for slug, rows in (("twin-a", rows_a), ("twin-b", rows_b)):
        assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), key=own_key)
        for row in rows:  # each app's member id is still that app's id for the right person
            assert internal_id(settings, world, slug, row["customer"]) == customers[row["amount"] - 10_000].id


def _v1_cursor(master: bytes, app_id: int, company_id: int, last_id: int) -> str:
    """A cursor as the readable v1 scheme made them (itsdangerous, signed JSON), for the regression."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"appwarden/cursor/v1", info=b"cursor").derive(
        master
    )
    return str(
        URLSafeSerializer(key, salt="appwarden.cursor.v1").dumps(["customers", app_id, company_id, last_id])
    )


def test_a_limit_one_cursor_reveals_no_internal_id(
    client: TestClient, world: World, settings: Settings
) -> None:
    """Regression: a v1 cursor was base64 JSON ``["customers", app, company, last internal id]``, so paging
    with ``limit=1`` read out every person's internal id."""
    tenant = world.tenants[0]
    headers = bearer(world.connect("loyalty-stamp", tenant))
    rows, issued = _walk(client, "/v1/customers", headers, limit=1)
    assert len(issued) == len(tenant.customers) - 1
    for row, cursor in zip(rows, issued, strict=False):
        internal = internal_id(settings, world, "loyalty-stamp", row["id"])
        assert _text(cursor) is None  # v1: ["customers", app, company, internal]
        assert not any(spelling in _unb64(cursor) for spelling in _id_spellings(internal))
    # The same position sealed twice gives two unrelated strings (random nonce): nothing to compare.
    again = client.get("/v1/customers", params={"limit": 1}, headers=headers).json()["next_cursor"]
    assert again != issued[0]
    assert hashlib.sha256(_unb64(again)).digest() != hashlib.sha256(_unb64(issued[0])).digest()
    # A readable v1 cursor (one a client may still hold) is refused, not honoured.
    old = _v1_cursor(
        settings.master_key, world.apps["loyalty-stamp"][0], tenant.company.id, tenant.customers[3].id
    )
    assert _text(old) == [
        "customers",
        world.apps["loyalty-stamp"][0],
        tenant.company.id,
        tenant.customers[3].id,
    ]
    problem(client.get("/v1/customers", params={"cursor": old}, headers=headers), 422, "invalid_cursor")


@pytest.mark.parametrize("cold", [False, True])
def test_a_walk_survives_changes_and_another_worker(
    client: TestClient, world: World, settings: Settings, cold: bool
) -> None:
    """Pages after the first reuse the order the walk started from (its digest is in the cursor); with
    ``cold`` every page lands on a "worker" that never saw the walk (the order cache is emptied) and reads
    the set afresh. Either way nobody is listed twice or skipped, and a customer deleted mid-walk is not
    delivered."""
    tenant = world.tenants[0]
    headers = bearer(world.connect("invoice-plus", tenant))
    first = client.get("/v1/customers", params={"limit": 3}, headers=headers).json()
    seen = [internal_id(settings, world, "invoice-plus", r["id"]) for r in first["data"]]
    gone = next(c.id for c in tenant.customers if c.id not in seen)
    with world.db.session() as session:
        delete_customer(session, gone)
    cursor = first["next_cursor"]
    while cursor:
        if cold:
            ordering.clear_cache()
        body = client.get("/v1/customers", params={"limit": 3, "cursor": cursor}, headers=headers).json()
        seen += [internal_id(settings, world, "invoice-plus", r["id"]) for r in body["data"]]
        cursor = body["next_cursor"]
    assert sorted(seen) == sorted(c.id for c in tenant.customers if c.id != gone)
