"""The store membership bitmaps stay equal to what ``customers`` says, whichever way customers change."""

from __future__ import annotations

from pyroaring import BitMap
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from appwarden.platform import service as platform
from appwarden.platform.models import Company, Customer, Store, StoreMembers
from appwarden.platform.store_members import rebuild_store_members
from conftest import World


def from_customers(session: Session) -> dict[int, tuple[int, set[int], set[int]]]:
    """What the table should hold: per store (company, members, canaries) read from ``customers``."""
    expected: dict[int, tuple[int, set[int], set[int]]] = {}
    for store_id, company_id in session.execute(select(Store.id, Store.company_id)):
        expected[store_id] = (company_id, set(), set())
    for cid, store_id, canary in session.execute(
        select(Customer.id, Customer.home_store_id, Customer.is_canary)
    ):
        expected[store_id][1].add(cid)
        if canary:
            expected[store_id][2].add(cid)
    return {s: v for s, v in expected.items() if v[1]}


def from_table(session: Session) -> dict[int, tuple[int, set[int], set[int]]]:
    """The table's contents (stores nobody calls home left out, whether or not they have a row)."""
    found: dict[int, tuple[int, set[int], set[int]]] = {}
    for row in session.scalars(select(StoreMembers)):
        members = BitMap.deserialize(row.bitmap)
        assert row.cardinality == len(members)
        if members:
            found[row.store_id] = (row.company_id, set(members), set(BitMap.deserialize(row.canaries)))
    return found


def assert_in_step(world: World) -> None:
    with world.db.sessionmaker() as session:
        assert from_table(session) == from_customers(session)


def test_add_customers_keeps_the_table_in_step(world: World) -> None:
    assert_in_step(world)  # the fixture's customers came in through add_customers
    t0, _ = world.tenants
    with world.db.session() as session:
        company = session.get(type(t0.company), t0.company.id)
        assert company is not None
        rows = [{"name": f"new {i}", "home_store_id": t0.stores[1].id, "is_canary": i == 0} for i in range(3)]
        assert platform.add_customers(session, company, rows) == 3
    assert_in_step(world)
    with world.db.sessionmaker() as session:
        canaries = BitMap.deserialize(session.get_one(StoreMembers, t0.stores[1].id).canaries)
        assert len(canaries) == 1


def test_platform_writes_move_customers_between_stores(world: World) -> None:
    t0, t1 = world.tenants
    first, second = t0.customers[0].id, t0.customers[1].id
    with world.db.session() as session:
        old_store = session.get_one(Customer, first).home_store_id
        new_store = next(s.id for s in t0.stores if s.id != old_store)
        platform.update_customer(session, first, {"home_store_id": new_store})
        platform.update_customer(session, second, {"is_canary": True})
        platform.update_customer(session, t0.customers[2].id, {"name": "renamed"})  # not a membership change
        company = session.get_one(Company, t1.company.id)
        platform.add_customer(session, company, {"home_store_id": t1.stores[0].id, "name": "walk-in"})
    assert_in_step(world)
    with world.db.sessionmaker() as session:
        assert first not in BitMap.deserialize(session.get_one(StoreMembers, old_store).bitmap)
    with world.db.session() as session:
        platform.delete_customer(session, t0.customers[3].id)
    assert_in_step(world)


def test_bulk_platform_writes_and_rebuild(world: World) -> None:
    t0, t1 = world.tenants
    moved = [c.id for c in t1.customers[:5]]
    with world.db.session() as session:
        for customer_id in moved:
            platform.update_customer(session, customer_id, {"home_store_id": t1.stores[0].id})
        platform.update_customer(session, t0.customers[4].id, {"is_canary": True})
        platform.update_customer(session, t0.customers[5].id, {"home_store_id": t0.stores[0].id})
        platform.delete_customer(session, t0.customers[6].id)
    assert_in_step(world)
    with world.db.session() as session:
        before = from_table(session)
        session.execute(delete(StoreMembers))
    written = rebuild_store_members(world.db)
    with world.db.sessionmaker() as session:
        assert written == len(session.scalars(select(Store.id)).all())  # every store, empty or not
        assert from_table(session) == before
    assert_in_step(world)
    # A rebuild of one company leaves the other's rows alone.
    assert rebuild_store_members(world.db, [t0.company.id]) == len(t0.stores)
    assert_in_step(world)
