"""Canary records: issuance (formats, uniqueness, never a real customer's values), one connection each,
isolation in the broker, ledger and blast radius, the policy switch, the consent page, CLI and admin API."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyroaring import BitMap
from sqlalchemy import select

from appwarden.blind_index.service import digest_raw, lookup
from appwarden.broker import pseudonym
from appwarden.broker.service import mask_name
from appwarden.canary.models import Canary
from appwarden.canary.service import issue_canaries
from appwarden.canary.synth import parse_pool
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.errors import Conflict, InvalidInput
from appwarden.events.models import SecurityEvent
from appwarden.incident.blast_radius import compute_blast_radius
from appwarden.ledger.service import persons
from appwarden.oauth.models import Connection
from appwarden.platform import service as platform
from appwarden.platform.models import Customer, StoreMembers
from conftest import Tenant, World
from test_blast_radius import incident_for
from test_broker import bearer, problem, walk
from test_oauth import authorize_query, consent_form, login

NAME = re.compile(r"^\S+ \S+$")
KANA = re.compile(r"^[ァ-ヶー]+ [ァ-ヶー]+$")
PHONE = re.compile(r"^050-10\d{2}-\d{4}$")
EMAIL = re.compile(r"^[a-z]+\.[a-z]+\d+@canary\.example\.net$")


def connect_with_canaries(
    world: World, settings: Settings, slug: str, tenant: Tenant, *, count: int | None = None
) -> tuple[dict[str, Any], list[Canary]]:
    """Connect ``slug`` to ``tenant`` (token) and issue its canaries, as consent would."""
    token = world.connect(slug, tenant)
    with world.db.session() as session:
        conn = session.scalar(
            select(Connection).where(
                Connection.app_id == world.apps[slug][0], Connection.company_id == tenant.company.id
            )
        )
        assert conn is not None
        made = issue_canaries(session, conn, settings=settings, count=count)
    return token, made


def canary_rows(world: World) -> list[tuple[Canary, Customer]]:
    with world.db.session() as session:
        rows = session.execute(
            select(Canary, Customer)
            .join(Customer, Customer.id == Canary.customer_id)
            .order_by(Canary.customer_id)
        )
        return [(canary, customer) for canary, customer in rows]


def test_issued_canaries_look_like_members_and_belong_to_one_connection(
    world: World, settings: Settings
) -> None:
    tenant = world.tenants[0]
    _, made = connect_with_canaries(world, settings, "invoice-plus", tenant)
    assert len(made) == settings.canaries_per_connection == 3
    pool = parse_pool(settings.canary_phone_pool)
    store_ids = {s.id for s in tenant.stores}
    rows = canary_rows(world)
    assert len(rows) == 3
    for canary, cust in rows:
        assert cust.is_canary and cust.company_id == tenant.company.id
        assert cust.home_store_id in store_ids
        assert NAME.match(cust.name), cust.name
        assert cust.name_kana and KANA.match(cust.name_kana), cust.name_kana
        assert cust.phone and PHONE.match(cust.phone), cust.phone
        assert pool.first <= int(cust.phone.replace("-", "")) <= pool.last
        assert canary.phone == "+81" + cust.phone.replace("-", "")[1:]
        assert cust.email == canary.email and EMAIL.match(canary.email), canary.email
        assert cust.address and cust.birthday and cust.gender in {"female", "male"}
        assert 1 <= cust.points <= 50_000 and cust.rank in {"regular", "silver", "gold", "platinum"}
        assert canary.app_id == world.apps["invoice-plus"][0] and canary.company_id == tenant.company.id
    assert len({c.phone for c, _ in rows}) == len({c.email for c, _ in rows}) == 3
    with world.db.session() as session:
        # The platform's write path kept the blind index and the store canary bitmaps in step.
        for canary, cust in rows:
            found = lookup(session, "phone", digest_raw("phone", [canary.phone]))
            assert list(found.values()) == [[cust.id]]
        flagged = BitMap()
        for blob in session.scalars(select(StoreMembers.canaries)):
            flagged |= BitMap.deserialize(blob)
        assert set(flagged) == {c.customer_id for c, _ in rows}
        event = session.scalar(select(SecurityEvent).where(SecurityEvent.tag == "canary:record:issued"))
        assert event is not None and event.data["count"] == 3
        assert not any(
            c.email in json.dumps(event.data) or c.phone in json.dumps(event.data) for c, _ in rows
        )


def test_canaries_never_take_a_real_customers_number_or_a_used_one(world: World, settings: Settings) -> None:
    tenant = world.tenants[0]
    with world.db.session() as session:
        # Real members already hold two of the three pool numbers, spelt differently.
        platform.add_customers(
            session,
            tenant.company,
            [
                {"home_store_id": tenant.stores[0].id, "name": "本物 一郎", "phone": "+81 50-1000-0000"},
                {
                    "home_store_id": tenant.stores[0].id,
                    "name": "本物 二郎",
                    "phone": "０５０−１０００−０００１",
                },
            ],
        )
    tiny = settings.model_copy(update={"canary_phone_pool": "05010000000-05010000002"})
    _, made = connect_with_canaries(world, tiny, "invoice-plus", tenant, count=1)
    assert [c.phone for c in made] == ["+815010000002"]
    with pytest.raises(Conflict, match="exhausted"):
        connect_with_canaries(world, tiny, "loyalty-stamp", tenant, count=1)


def test_each_connection_gets_its_own_canaries(world: World, settings: Settings) -> None:
    a, b = world.tenants
    connect_with_canaries(world, settings, "invoice-plus", a)
    connect_with_canaries(world, settings, "invoice-plus", b)
    connect_with_canaries(world, settings, "loyalty-stamp", a)
    rows = canary_rows(world)
    assert len(rows) == 9
    assert len({c.phone for c, _ in rows}) == len({c.email for c, _ in rows}) == 9
    per_connection: dict[int, int] = {}
    for canary, cust in rows:
        per_connection[canary.connection_id] = per_connection.get(canary.connection_id, 0) + 1
        assert cust.company_id == canary.company_id
    assert sorted(per_connection.values()) == [3, 3, 3]


def test_bad_phone_pool_is_a_one_line_error(world: World, settings: Settings) -> None:
    bad = settings.model_copy(update={"canary_phone_pool": "050-1000-0000..05010000009"})
    with pytest.raises(InvalidInput, match="canary phone pool"):
        connect_with_canaries(world, bad, "invoice-plus", world.tenants[0])


def test_only_the_issued_connection_receives_its_canaries(
    client: TestClient, world: World, settings: Settings
) -> None:
    a, b = world.tenants
    invoice_a, made = connect_with_canaries(world, settings, "invoice-plus", a)
    canary_ids = {c.customer_id for c in made}
    stamp_a = world.connect("loyalty-stamp", a)  # same company, another app: no canaries of its own
    invoice_b = world.connect("invoice-plus", b)  # same app, another company
    real_a = {c.id for c in a.customers}

    got = walk(client, bearer(invoice_a), limit=4)  # cursor paging across the canaries too
    assert len(got) == len(real_a) + 3
    # Names go out masked through an access token (raw only through a restricted token).
    assert {c["name"] for c in got} >= {mask_name(cust.name) for _, cust in canary_rows(world)}
    assert len(walk(client, bearer(stamp_a), limit=5)) == len(real_a)
    assert len(walk(client, bearer(invoice_b), limit=5)) == len(b.customers)

    # By id: the issued app reads it; another app's id for the same person (valid, made with that
    # app's key) is 404 like any other absent customer.
    master = settings.master_key
    cid = min(canary_ids)
    own = pseudonym.encode_one(
        pseudonym.app_key(master, world.apps["invoice-plus"][0]), a.company.id, "id", cid
    )
    response = client.get(f"/v1/customers/{own}", headers=bearer(invoice_a))
    assert response.status_code == 200 and response.json()["data"]["id"] == own
    other = pseudonym.encode_one(
        pseudonym.app_key(master, world.apps["loyalty-stamp"][0]), a.company.id, "id", cid
    )
    problem(client.get(f"/v1/customers/{other}", headers=bearer(stamp_a)), 404, "customer_not_found")

    # The ledger recorded the canaries as delivered (the canaries table says what they are) ...
    with world.db.session() as session:
        delivered = persons(session, app_id=world.apps["invoice-plus"][0], field="name", mode="masked")
        assert canary_ids <= set(delivered)
        stamp = persons(session, app_id=world.apps["loyalty-stamp"][0], field="name", mode="masked")
        assert not canary_ids & set(stamp)
    # ... and the blast radius leaves them out of every count.
    radius = compute_blast_radius(world.db, incident_for(world, "invoice-plus"))
    assert radius.canaries_excluded == 3
    assert radius.persons_exposed == len(real_a) + len(b.customers)
    assert radius.fields["name"].exposed == len(real_a) + len(b.customers)


def test_policy_off_serves_no_canary(client: TestClient, world: World, settings: Settings) -> None:
    a = world.tenants[0]
    token, made = connect_with_canaries(world, settings, "invoice-plus", a)
    client.app.state.settings = settings.model_copy(update={"canary_enabled": False})  # type: ignore[attr-defined]
    got = walk(client, bearer(token), limit=5)
    assert len(got) == len(a.customers)
    own = pseudonym.encode_one(
        pseudonym.app_key(settings.master_key, world.apps["invoice-plus"][0]),
        a.company.id,
        "id",
        made[0].customer_id,
    )
    problem(client.get(f"/v1/customers/{own}", headers=bearer(token)), 404, "customer_not_found")


def approve(client: TestClient, world: World) -> str:
    login(client)
    page = client.get("/oauth/authorize", params=authorize_query(world))
    assert page.status_code == 200
    answer = client.post(
        "/oauth/authorize", data=consent_form(page.text) | {"decision": ["approve"]}, follow_redirects=False
    )
    assert answer.status_code in (302, 303), answer.text
    return page.text


def test_consent_states_canaries_and_approval_issues_them_once(client: TestClient, world: World) -> None:
    html = approve(client, world)
    assert "各アプリに数件のカナリア（検知用の架空の会員）を混ぜて提供します" in html
    assert "This app will receive 3 fictitious members" in html
    assert len(canary_rows(world)) == 3
    approve(client, world)  # re-approving keeps what the app already has: no top-up, no replacement
    assert len(canary_rows(world)) == 3


def test_policy_off_consent_issues_none_and_says_nothing(
    client: TestClient, world: World, settings: Settings
) -> None:
    client.app.state.settings = settings.model_copy(update={"canary_enabled": False})  # type: ignore[attr-defined]
    html = approve(client, world)
    assert "カナリア" not in html and 'id="canary-notice"' not in html
    assert canary_rows(world) == []


def test_cli_backfills_and_lists(
    world: World, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = world.tenants
    world.connect("invoice-plus", a)
    world.connect("booking-go", b)
    assert run(["canary", "issue", "--app", "invoice-plus", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["issued"] == 3 and [c["company"] for c in body["connections"]] == [a.company.public_id]
    assert run(["canary", "issue", "--json"]) == 0  # the rest: only booking-go × b still has none
    body = json.loads(capsys.readouterr().out)
    assert [(c["app"], c["issued"]) for c in body["connections"]] == [("booking-go", 3)]
    assert run(["canary", "list", "--app", "booking-go", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 3 and {r["company"] for r in listed} == {b.company.public_id}
    assert all(EMAIL.match(r["email"]) and r["phone_e164"].startswith("+8150") for r in listed)
    assert run(["canary", "list", "--app", "no-such-app"]) == 1
    assert "no app 'no-such-app'" in capsys.readouterr().err


def test_admin_api_lists_canaries_for_admins_only(
    client: TestClient, world: World, settings: Settings, admin_headers: dict[str, str]
) -> None:
    connect_with_canaries(world, settings, "invoice-plus", world.tenants[0])
    problem(client.get("/admin/canaries"), 401, "invalid_admin_key")
    response = client.get("/admin/canaries", params={"app": "invoice-plus"}, headers=admin_headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data) == 3 and all(r["app"] == "invoice-plus" and r["alerts"] == 0 for r in data)
    assert client.get("/admin/canaries", params={"app": "booking-go"}, headers=admin_headers).json() == {
        "data": []
    }
