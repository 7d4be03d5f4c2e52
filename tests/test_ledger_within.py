"""``record_delivery(..., within=session)``: the append inside a caller's open transaction (the broker's).

The entry, head and index must commit together with the caller's transaction before the call returns,
roll back with it on failure, and never fork the chain when many such callers append at once. Runs on
SQLite and (with ``APPWARDEN_TEST_DATABASE_URL``) on PostgreSQL, where it takes the pipelined path.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from appwarden.errors import Unavailable
from appwarden.events.models import SecurityEvent
from appwarden.events.service import EventTag, record
from appwarden.ledger.models import LedgerEntry, LedgerHead, LedgerIndex
from appwarden.ledger.service import persons, record_delivery
from appwarden.ledger.verify import verify
from appwarden.platform.models import Customer
from conftest import World
from test_ledger import (
    _assert_one_chain,
    _drop_failing_trigger,
    _entries,
    _install_failing_trigger,
    _record,
    _run_together,
)


def _append_within(world: World, session, people: list[int], *, tenant: int = 0, slug: str = "invoice-plus"):
    t = world.tenants[tenant]
    return record_delivery(
        world.db,
        request_id=f"within-{people}",
        app_id=world.apps[slug][0],
        company_id=t.company.id,
        connection_id=None,
        endpoint="/v1/customers",
        kind="delivery",
        deliveries={("name", "raw"): [t.customers[i].id for i in people], ("phone", "masked"): []},
        within=session,
    )


def _count(world: World, model) -> int:
    with world.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_within_commits_the_callers_transaction_with_the_entry(world: World) -> None:
    _record(world, name_raw=[0])  # an existing head and index row, so both are updated, not created
    events_before = _count(world, SecurityEvent)
    session = world.db.sessionmaker()
    try:
        session.begin()
        # The caller's own work in the same transaction: a read, and a pending write.
        assert session.scalar(select(func.count()).select_from(Customer)) > 0
        record(session, EventTag.DETOKENIZE, actor="test", purpose="rides along")
        receipt = _append_within(world, session, [1, 2])
        assert not session.in_transaction()  # committed before returning
    finally:
        session.close()
    assert receipt.seq == 2
    entries = _entries(world.db)
    assert [e.seq for e in entries] == [1, 2] and entries[1].hash == receipt.hash
    assert entries[1].prev_hash == entries[0].hash
    assert _count(world, SecurityEvent) == events_before + 1
    t = world.tenants[0]
    with world.db.session() as check:
        head = check.execute(select(LedgerHead.seq, LedgerHead.hash)).one()
        assert tuple(head) == (2, receipt.hash)
        got = persons(check, app_id=world.apps["invoice-plus"][0], field="name", mode="raw")
        assert set(got) == {t.customers[i].id for i in (0, 1, 2)}
        # An empty delivery adds no index row.
        assert check.scalar(select(func.count()).where(LedgerIndex.field == "phone")) == 0
    assert verify(world.db).intact


def test_within_failure_rolls_back_the_callers_work_too(world: World) -> None:
    _record(world, name_raw=[0])
    before = [e.hash for e in _entries(world.db)]
    events_before = _count(world, SecurityEvent)
    _install_failing_trigger(world.db, "ledger_index")  # fails late: entry and head already written
    try:
        session = world.db.sessionmaker()
        try:
            session.begin()
            record(session, EventTag.DETOKENIZE, actor="test", purpose="must vanish")
            with pytest.raises(Unavailable) as caught:
                _append_within(world, session, [5], slug="loyalty-stamp")  # a new index row: INSERT
            assert caught.value.code == "ledger_unavailable"
            assert not session.in_transaction()
        finally:
            session.close()
    finally:
        _drop_failing_trigger(world.db, "ledger_index")
    assert [e.hash for e in _entries(world.db)] == before
    with world.db.session() as check:
        tags = list(check.scalars(select(SecurityEvent.tag)))
        assert check.execute(select(LedgerHead.seq)).scalar_one() == 1
    # The caller's pending event is gone; only the failure event was added.
    assert len(tags) == events_before + 1 and tags.count("ledger:entry:write-failed") == 1
    assert verify(world.db).intact
    assert _record(world, name_raw=[5]) == 2  # and the next append continues the same chain


def test_concurrent_within_and_plain_appenders_keep_one_chain(world: World) -> None:
    threads, per_thread = 6, 10

    def work(n: int) -> None:
        for i in range(per_thread):
            if n % 2:
                _record(world, "loyalty-stamp", 1, name_raw=[i % 12], phone_raw=[n])
                continue
            session = world.db.sessionmaker()
            try:
                session.begin()
                session.scalar(select(func.count()).select_from(Customer))  # the caller's read
                _append_within(world, session, [i % 12, n])
            finally:
                session.close()

    _run_together(threads, work)
    _assert_one_chain(world.db, threads * per_thread)
    assert _count(world, LedgerEntry) == threads * per_thread
