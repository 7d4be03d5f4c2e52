"""The store membership bitmaps stay equal to what ``customers`` says, whichever way customers change."""

from __future__ import annotations

from pyroaring import BitMap
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from appwarden.platform import service as platform
from appwarden.platform.models import Customer, Store, StoreMembers
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
        assert platform.add_customers(session, company, rows, index=False) == 3
    assert_in_step(world)
    with world.db.sessionmaker() as session:
        canaries = BitMap.deserialize(session.get_one(StoreMembers, t0.stores[1].id).canaries)
        assert len(canaries) == 1


def test_orm_changes_move_customers_between_stores(world: World) -> None:
    t0, t1 = world.tenants
    first, second = t0.customers[0].id, t0.customers[1].id
    with world.db.session() as session:
        person = session.get_one(Customer, first)
        old_store = person.home_store_id
        person.home_store_id = next(s.id for s in t0.stores if s.id != old_store)
        session.get_one(Customer, second).is_canary = True
        session.get_one(Customer, t0.customers[2].id).name = "renamed"  # not a membership change
        session.add(Customer(company_id=t1.company.id, home_store_id=t1.stores[0].id, name="walk-in"))
    assert_in_step(world)
    with world.db.sessionmaker() as session:
        assert first not in BitMap.deserialize(session.get_one(StoreMembers, old_store).bitmap)
    with world.db.session() as session:
        session.delete(session.get_one(Customer, t0.customers[3].id))
    assert_in_step(world)


def test_bulk_orm_statements_and_rebuild(world: World) -> None:
    t0, t1 = world.tenants
    moved = [c.id for c in t1.customers[:5]]
    with world.db.session() as session:
        session.execute(update(Customer).where(Customer.id.in_(moved)).values(home_store_id=t1.stores[0].id))
        session.execute(update(Customer).where(Customer.id == t0.customers[4].id).values(is_canary=True))
        session.execute(update(Customer), [{"id": t0.customers[5].id, "home_store_id": t0.stores[0].id}])
        session.execute(delete(Customer).where(Customer.id == t0.customers[6].id))
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
