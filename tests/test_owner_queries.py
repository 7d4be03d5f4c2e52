"""The owners' read APIs other packages call: the platform's membership questions, the ledger's
"who received what", the canary lookups. Each answer equals a brute-force reading of the rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pyroaring import BitMap
from sqlalchemy import select

from appwarden.canary.lookup import canary_hits, canary_ids
from appwarden.canary.models import Canary
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.ledger.exposure import delivery_stream, holdings_of, received_as_of, received_replayed
from appwarden.platform.directory import company_names, home_stores, store_names
from appwarden.platform.membership import (
    companies_of,
    members_of_companies,
    members_of_stores,
    store_counts,
    store_membership,
)
from appwarden.platform.models import Customer, Store
from appwarden.platform.service import update_customer
from conftest import World, build_world
from test_blast_radius import deliver
from test_canary import connect_with_canaries

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def homes(world: World) -> dict[int, tuple[int, int, bool]]:
    """Brute force: customer id -> (home store, company, canary) from ``customers``."""
    with world.db.sessionmaker() as session:
        rows = session.execute(
            select(Customer.id, Customer.home_store_id, Customer.company_id, Customer.is_canary)
        )
        return {cid: (store, company, canary) for cid, store, company, canary in rows}


def test_store_counts_equal_a_brute_force_count(db: Database) -> None:
    world = build_world(db, companies=3, stores=4, customers=40)
    t0, t1, t2 = world.tenants
    with world.db.session() as session:  # a few canaries, so the canary bitmaps are not empty
        update_customer(session, t0.customers[1].id, {"is_canary": True})
    home = homes(world)
    rng = random.Random(5)
    people = BitMap(rng.sample(sorted(home), 50)) | BitMap([10**6])  # and an id nobody has
    companies = [t0.company.id, t2.company.id]
    expected: dict[int, int] = {}
    with world.db.sessionmaker() as session:
        for store_id, company_id in session.execute(select(Store.id, Store.company_id)):
            if company_id in companies:
                expected[store_id] = sum(1 for p in people if home.get(p, (0,))[0] == store_id)
        assert store_counts(session, people, companies) == expected
        members = store_membership(session)
        assert members.store_counts(people, companies=companies) == expected
        assert sorted(members.company_ids) == sorted(t.company.id for t in world.tenants)
        assert members.stores_reached(people, companies=companies) == sum(1 for n in expected.values() if n)
        assert members.canaries() == BitMap([t0.customers[1].id])
        assert companies_of(session, BitMap([t1.customers[0].id, 10**6])) == {t1.company.id}
        assert companies_of(session, people) == {home[p][1] for p in people if p in home}
        store = t2.stores[3].id
        assert members_of_stores(session, [store]) == BitMap(c for c, (s, _, _) in home.items() if s == store)
        assert members_of_companies(session, companies) == BitMap(
            c for c, (_, co, _) in home.items() if co in companies
        )
        assert store_membership(session, []).store_counts(people) == {}
        assert company_names(session, [t1.company.id])[t1.company.id].public_id == t1.company.public_id
        assert {s.public_id for s in store_names(session, [t1.company.id])} == {
            s.public_id for s in t1.stores
        }
        assert home_stores(session, [t0.customers[5].id]) == {t0.customers[5].id: t0.stores[1].public_id}


def test_ledger_answers_who_received_what(world: World) -> None:
    t0, t1 = world.tenants
    invoice, stamp = world.apps["invoice-plus"][0], world.apps["loyalty-stamp"][0]
    deliver(world, "invoice-plus", t0, {("name", "raw"): range(0, 4), ("phone", "raw"): [0]}, at=T0)
    deliver(world, "loyalty-stamp", t0, {("name", "masked"): range(2, 8)}, at=T0 + timedelta(hours=1))
    deliver(world, "invoice-plus", t1, {("name", "raw"): range(3)}, at=T0 + timedelta(hours=2))
    ids0 = [c.id for c in t0.customers]
    ids1 = [c.id for c in t1.customers]
    with world.db.sessionmaker() as session:
        now = received_as_of(session, [invoice, stamp])
        assert now == {
            t0.company.id: {
                ("name", "raw"): BitMap(ids0[0:4]),
                ("phone", "raw"): BitMap(ids0[:1]),
                ("name", "masked"): BitMap(ids0[2:8]),
            },
            t1.company.id: {("name", "raw"): BitMap(ids1[:3])},
        }
        # As of an earlier time the entries are replayed; after the last one the index answers the same.
        early = received_as_of(session, [invoice, stamp], T0 + timedelta(minutes=30))
        assert early == {
            t0.company.id: {("name", "raw"): BitMap(ids0[0:4]), ("phone", "raw"): BitMap(ids0[:1])}
        }
        assert received_replayed(session, [invoice, stamp], T0 + timedelta(days=1)) == now

        asked = BitMap([ids0[0], ids0[5]])
        held = {
            (h.app_id, h.field, h.mode): (h.people, h.received)
            for h in holdings_of(session, asked, fields=["name"], company_ids=[t0.company.id])
        }
        assert held == {
            (invoice, "name", "raw"): (BitMap([ids0[0]]), 4),
            (stamp, "name", "masked"): (BitMap([ids0[5]]), 6),
        }
        assert holdings_of(session, BitMap(), fields=["name"], company_ids=[t0.company.id]) == []

        stream = list(
            delivery_stream(
                session, app_ids=[invoice, stamp], company_ids=[t0.company.id], keys={("name", "masked")}
            )
        )
        assert stream == [(T0 + timedelta(hours=1), BitMap(ids0[2:8]))]  # the first entry had none of it


def test_canary_lookups(world: World, settings: Settings) -> None:
    t0, t1 = world.tenants
    _, made = connect_with_canaries(world, settings, "invoice-plus", t0, count=2)
    _, other = connect_with_canaries(world, settings, "loyalty-stamp", t1, count=1)
    every = BitMap(c.customer_id for c in [*made, *other])
    with world.db.sessionmaker() as session:
        assert canary_ids(session) == every
        assert canary_ids(session, app_ids=[world.apps["invoice-plus"][0]]) == BitMap(
            c.customer_id for c in made
        )
        assert canary_ids(session, company_ids=[t1.company.id]) == BitMap([other[0].customer_id])
        hits = canary_hits(session, BitMap([made[0].customer_id, other[0].customer_id, 10**6]))
        brute = []
        for canary in session.scalars(select(Canary).where(Canary.customer_id.in_(every))):
            customer = session.get(Customer, canary.customer_id)
            assert customer is not None
            store = session.get(Store, customer.home_store_id)
            assert store is not None
            brute.append((canary.customer_id, store.public_id, canary.issued_at))
    assert [(h.app, h.company) for h in hits] == [
        ("invoice-plus", t0.company.public_id),
        ("loyalty-stamp", t1.company.public_id),
    ]
    wanted = {made[0].customer_id, other[0].customer_id}
    assert sorted((h.store, h.issued_at) for h in hits) == sorted(
        (s, at) for c, s, at in brute if c in wanted
    )
    assert all(h.connection.startswith("con") for h in hits)
    with world.db.sessionmaker() as session:
        assert canary_hits(session, BitMap()) == []
