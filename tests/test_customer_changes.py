"""Derived indexes are kept by the platform's write paths through an explicitly registered hook.

No SQLAlchemy ORM listener from appwarden exists (a write around the platform is seen by nobody, by
design), importing appwarden registers nothing, every entry point composes through ``wiring.wire``, and
an update or delete changes the store bitmaps and the blind index in the writer's own transaction.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from pyroaring import BitMap
from sqlalchemy import event, func, select
from sqlalchemy.event import registry
from sqlalchemy.orm import AttributeEvents, InstanceEvents, MapperEvents, QueryEvents, Session, SessionEvents

import appwarden
from appwarden import wiring
from appwarden.app import create_app
from appwarden.blind_index.models import BlindIndexHistory
from appwarden.blind_index.service import digest_raw, lookup, refresh_changed_customers
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import InvalidInput
from appwarden.obligations.erasure_triggers import customer_deleted
from appwarden.platform import customer_changes
from appwarden.platform import service as platform
from appwarden.platform.models import Company, Customer, StoreMembers
from conftest import World
from test_store_members import from_customers, from_table

# Entry points and the migration environment do their work on import; every other module must not.
NOT_IMPORTED = ("appwarden.asgi", "appwarden.db.migrations")
ORM_EVENTS = frozenset(
    name
    for events in (SessionEvents, MapperEvents, InstanceEvents, AttributeEvents, QueryEvents)
    for name in vars(events)
    if not name.startswith("_")
)


def import_every_module() -> None:
    for module in pkgutil.walk_packages(appwarden.__path__, "appwarden."):
        if not module.name.startswith(NOT_IMPORTED):
            importlib.import_module(module.name)


def _origin(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function a listener was registered with: SQLAlchemy may wrap it (keyword-argument adaption)
    in a closure of its own module."""
    for _ in range(5):
        if not getattr(fn, "__module__", "").startswith("sqlalchemy") or not fn.__closure__:
            break
        inner = [c.cell_contents for c in fn.__closure__ if inspect.isfunction(_contents(c))]
        if not inner:
            break
        fn = inner[0]
    return fn


def _contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def orm_listeners_from(prefix: str) -> list[str]:
    """Every listener on an ORM event (Session, mapper, instance, attribute, query) whose function was
    defined in a module under ``prefix``. SQLAlchemy has no public enumeration of listeners, so this
    reads its event registry (every ``event.listen`` goes through it)."""
    found = []
    for (_target, identifier, _fn), collections in list(registry._key_to_collection.items()):
        if identifier not in ORM_EVENTS:
            continue
        for listener_ref in collections.values():
            fn = listener_ref()
            if fn is None:
                continue
            fn = _origin(fn)
            module = getattr(fn, "__module__", "") or ""
            if module == prefix or module.startswith(prefix + "."):
                found.append(f"{module}.{fn.__qualname__} on {identifier}")
    return found


def test_no_orm_listener_comes_from_appwarden() -> None:
    import_every_module()
    assert orm_listeners_from("appwarden") == []


def test_the_listener_check_finds_a_listener() -> None:
    """The check above would fail on the listeners this issue removed (plain and keyword-wrapped)."""

    def after_flush(session: Session, flush_context: Any) -> None: ...

    def do_orm_execute(**kw: Any) -> None: ...

    for fn in (after_flush, do_orm_execute):
        fn.__module__ = "appwarden.platform.models"
    event.listen(Session, "after_flush", after_flush)
    event.listen(Session, "do_orm_execute", do_orm_execute, named=True)
    try:
        found = orm_listeners_from("appwarden")
    finally:
        event.remove(Session, "after_flush", after_flush)
        event.remove(Session, "do_orm_execute", do_orm_execute)
    assert all(f.startswith("appwarden.platform.models.") for f in found)
    assert sorted(f.rsplit(".", 1)[-1] for f in found) == [
        "after_flush on after_flush",
        "do_orm_execute on do_orm_execute",
    ]
    assert orm_listeners_from("appwarden") == []


def test_importing_appwarden_registers_no_hook() -> None:
    """In a fresh interpreter (this one is wired by conftest): importing is not composing."""
    script = (
        "import importlib, pkgutil, appwarden\n"
        f"for m in pkgutil.walk_packages(appwarden.__path__, 'appwarden.'):\n"
        f"    if not m.name.startswith({NOT_IMPORTED!r}):\n"
        "        importlib.import_module(m.name)\n"
        "from appwarden.platform.customer_changes import registered\n"
        "from appwarden import wiring\n"
        "before = registered()\n"
        "wiring.wire(); wiring.wire()\n"
        "print(len(before), len(registered()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # Nothing on import; wire() registers each answer once (blind index, erasure owed), idempotently.
    assert out.stdout.split() == ["0", "2"]


@pytest.fixture
def unwired(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process where no entry point has composed the capabilities yet."""
    monkeypatch.setattr(customer_changes.customers_changed, "_answers", [])


@pytest.mark.usefixtures("unwired")
def test_entry_points_wire_the_blind_index_and_the_erasure_owed(settings: Settings, db: Database) -> None:
    assert customer_changes.registered() == ()
    create_app(settings, db)
    both = (refresh_changed_customers, customer_deleted)
    assert customer_changes.registered() == both
    customer_changes.customers_changed._answers.clear()
    assert run(["--help"]) == 0
    assert customer_changes.registered() == both
    wiring.wire()
    assert customer_changes.registered() == both


def test_an_unwired_customer_write_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody listening means the blind index would silently miss the customer: nothing is written."""
    t0 = world.tenants[0]
    # after the world was built, wired
    monkeypatch.setattr(customer_changes.customers_changed, "_answers", [])
    with pytest.raises(RuntimeError, match=r"wiring\.wire\(\)"), world.db.session() as session:
        platform.add_customers(session, t0.company, [{"home_store_id": t0.stores[0].id, "name": "x"}])
    with world.db.session() as session:
        count = session.scalar(select(func.count()).select_from(Customer).where(Customer.name == "x"))
    assert count == 0


class Abort(Exception):
    """Raised inside a writer's transaction to roll it back."""


def members(session: Session, store_id: int) -> BitMap:
    return BitMap.deserialize(session.get_one(StoreMembers, store_id).bitmap)


def holders(session: Session, phone: str) -> list[int]:
    return lookup(session, "phone", digest_raw("phone", [phone])).get(digest_raw("phone", [phone])[0], [])


def history_rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(BlindIndexHistory)) or 0


def test_update_refreshes_both_indexes_in_the_writers_transaction(world: World) -> None:
    t0 = world.tenants[0]
    person = t0.customers[0]
    assert person.phone is not None
    old_store = person.home_store_id
    new_store = next(s.id for s in t0.stores if s.id != old_store)
    with pytest.raises(Abort), world.db.session() as session:
        platform.update_customer(session, person.id, {"phone": "080-5555-0001", "home_store_id": new_store})
        assert holders(session, "080-5555-0001") == [person.id]
        assert holders(session, person.phone) == []
        assert history_rows(session) == 1  # the replaced phone
        assert person.id in members(session, new_store) and person.id not in members(session, old_store)
        raise Abort
    with world.db.session() as session:  # rolled back with the write
        assert holders(session, person.phone) == [person.id] and holders(session, "080-5555-0001") == []
        assert history_rows(session) == 0
        assert person.id in members(session, old_store) and person.id not in members(session, new_store)
    with world.db.session() as session:
        platform.update_customer(session, person.id, {"phone": "080-5555-0001", "home_store_id": new_store})
    with world.db.session() as session:
        assert holders(session, "080-5555-0001") == [person.id] and history_rows(session) == 1
        assert from_table(session) == from_customers(session)


def test_delete_refreshes_both_indexes_in_the_writers_transaction(world: World) -> None:
    person = world.tenants[1].customers[1]
    assert person.phone is not None
    with pytest.raises(Abort), world.db.session() as session:
        platform.delete_customer(session, person.id)
        assert holders(session, person.phone) == []
        assert person.id not in members(session, person.home_store_id)
        raise Abort
    with world.db.session() as session:
        assert holders(session, person.phone) == [person.id]
        assert person.id in members(session, person.home_store_id)
    with world.db.session() as session:
        platform.delete_customer(session, person.id)
    with world.db.session() as session:
        assert holders(session, person.phone) == [] and history_rows(session) == 0
        assert from_table(session) == from_customers(session)


def test_a_company_move_updates_both_companies_bitmaps(world: World) -> None:
    t0, t1 = world.tenants
    person = t0.customers[2]
    with world.db.session() as session:
        with pytest.raises(InvalidInput):  # a store of the old company under the new one
            platform.update_customer(session, person.id, {"company_id": t1.company.id})
        platform.update_customer(
            session, person.id, {"company_id": t1.company.id, "home_store_id": t1.stores[1].id}
        )
    with world.db.session() as session:
        assert from_table(session) == from_customers(session)
        assert person.id in members(session, t1.stores[1].id)
        assert session.get_one(Customer, person.id).company_id == t1.company.id


def test_unchanged_values_and_unknown_fields(world: World) -> None:
    person = world.tenants[0].customers[1]
    with world.db.session() as session:
        platform.update_customer(session, person.id, {"phone": person.phone, "name": person.name})
        with pytest.raises(InvalidInput):
            platform.update_customer(session, person.id, {"public_id": "cus_mine"})
        company = session.get_one(Company, world.tenants[0].company.id)
        with pytest.raises(InvalidInput):  # a store of another company
            platform.add_customer(
                session, company, {"home_store_id": world.tenants[1].stores[0].id, "name": "y"}
            )
    with world.db.session() as session:
        assert history_rows(session) == 0  # rewriting the same phone replaced nothing
