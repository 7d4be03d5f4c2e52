"""The access ledger: appending, the chain, the index, who-has, failure, and concurrency.

Runs on SQLite and (with ``APPWARDEN_TEST_DATABASE_URL``) on PostgreSQL, against the real database.
"""

from __future__ import annotations

import functools
import itertools
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pyroaring import BitMap
from sqlalchemy import select, text

from appwarden.db.session import Database
from appwarden.errors import InvalidInput, NotFound, Unavailable
from appwarden.events.models import SecurityEvent
from appwarden.ledger.chain import GENESIS, EntryContent, chain_key, decode_payload, entry_hash
from appwarden.ledger.models import LedgerEntry, LedgerHead, LedgerIndex
from appwarden.ledger.service import persons, record_delivery, who_has
from appwarden.ledger.verify import verify
from conftest import World


def _record(world: World, slug: str = "invoice-plus", tenant: int = 0, **deliveries: list[int]) -> int:
    """Record one delivery of ``field_mode=[customer indexes]`` and return its seq."""
    t = world.tenants[tenant]
    receipt = record_delivery(
        world.db,
        request_id=f"req-{random.random()}",
        app_id=world.apps[slug][0],
        company_id=t.company.id,
        connection_id=None,
        endpoint="/v1/customers",
        kind="delivery",
        deliveries={
            tuple(key.split("_")): [t.customers[i].id for i in idx]  # type: ignore[misc]
            for key, idx in deliveries.items()
        },
    )
    return receipt.seq


def _entries(db: Database) -> list[LedgerEntry]:
    with db.session() as session:
        return list(session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)))


def test_append_builds_a_keyed_chain(world: World, settings) -> None:
    seqs = [_record(world, name_raw=[0, 1, 2], phone_raw=[1, 2]) for _ in range(3)]
    assert seqs == [1, 2, 3]
    entries = _entries(world.db)
    key = chain_key(settings.master_key)
    prev = GENESIS
    for e in entries:
        assert e.prev_hash == prev
        content = EntryContent(
            e.seq, e.recorded_at, e.request_id, e.app_id, e.company_id, e.connection_id,
            e.endpoint, e.kind, e.persons, e.payload,
        )  # fmt: skip
        assert entry_hash(key, prev, content) == e.hash
        # A different key gives a different hash: the chain cannot be recomputed from the DB alone.
        assert entry_hash(chain_key(b"another key"), prev, content) != e.hash
        prev = e.hash
    assert entries[0].persons == 3
    assert decode_payload(entries[0].payload) == {
        ("name", "raw"): BitMap(world.tenants[0].customers[i].id for i in (0, 1, 2)),
        ("phone", "raw"): BitMap(world.tenants[0].customers[i].id for i in (1, 2)),
    }
    with world.db.session() as session:
        head = session.get(LedgerHead, 1)
        assert head is not None and (head.seq, head.hash) == (3, entries[-1].hash)
    assert verify(world.db).intact


def test_inputs_of_every_shape_and_empty_delivery(world: World) -> None:
    t = world.tenants[0]
    ids = [c.id for c in t.customers[:4]]
    app_id = world.apps["loyalty-stamp"][0]
    common = dict(app_id=app_id, company_id=t.company.id, connection_id=None, endpoint="/v1/customers")
    rec = functools.partial(record_delivery, world.db, **common)
    rec(request_id="a", kind="delivery", deliveries={("name", "masked"): BitMap(ids)})
    rec(request_id="b", kind="delivery", deliveries={("points", "raw"): np.array(ids)})
    empty = rec(request_id="c", kind="detokenize", deliveries={})
    assert empty.seq == 3  # the request happened, so it is in the chain, with nobody in it
    with world.db.session() as session:
        assert persons(session, app_id=app_id, field="name", mode="masked") == BitMap(ids)
        in_company = persons(session, app_id=app_id, field="points", mode="raw", company_id=t.company.id)
        assert in_company == BitMap(ids)
        assert persons(session, app_id=app_id, field="phone", mode="token") == BitMap()
        assert session.get(LedgerEntry, 3).persons == 0  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        rec(request_id="d", kind="bogus", deliveries={})
    with pytest.raises(InvalidInput):
        rec(request_id="d", kind="delivery", deliveries={("name", "plain"): ids})
    assert verify(world.db).intact


def test_index_equals_union_of_payloads(world: World) -> None:
    rng = random.Random(7)
    for _ in range(40):
        slug = rng.choice(["invoice-plus", "loyalty-stamp", "booking-go"])
        tenant = rng.randrange(2)
        picks = {
            key: rng.sample(range(12), rng.randrange(0, 6))
            for key in rng.sample(["name_raw", "phone_raw", "phone_token", "email_masked"], 2)
        }
        _record(world, slug, tenant, **picks)
    unions: dict[tuple[int, int, str, str], BitMap] = {}
    for e in _entries(world.db):
        for (field, mode), bm in decode_payload(e.payload).items():
            unions.setdefault((e.app_id, e.company_id, field, mode), BitMap()).update(bm)
    with world.db.session() as session:
        rows = session.scalars(select(LedgerIndex)).all()
        assert {(r.app_id, r.company_id, r.field, r.mode) for r in rows} == set(unions)
        for r in rows:
            assert BitMap.deserialize(r.bitmap) == unions[(r.app_id, r.company_id, r.field, r.mode)]
            assert r.cardinality == len(unions[(r.app_id, r.company_id, r.field, r.mode)])
            assert r.first_at <= r.last_at
    assert verify(world.db).intact


def test_who_has_lists_apps_fields_and_times(world: World) -> None:
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    t = world.tenants[0]
    target = t.customers[3]

    def rec(slug: str, at: datetime, deliveries: dict[tuple[str, str], list[int]]) -> None:
        record_delivery(
            world.db, request_id="r", app_id=world.apps[slug][0], company_id=t.company.id, connection_id=None,
            endpoint="/v1/customers", kind="delivery", deliveries=deliveries, now=at,
        )  # fmt: skip

    rec("invoice-plus", t0, {("name", "raw"): [target.id, t.customers[0].id], ("phone", "raw"): [target.id]})
    rec("invoice-plus", t0 + timedelta(hours=1), {("name", "raw"): [t.customers[0].id]})  # not our person
    rec("invoice-plus", t0 + timedelta(hours=2), {("name", "raw"): [target.id]})
    rec("loyalty-stamp", t0 + timedelta(hours=3), {("phone", "token"): [target.id]})
    rec("booking-go", t0, {("email", "masked"): [t.customers[5].id]})  # never got our person
    rows = who_has(world.db, target.public_id)
    assert [(r["app"], r["field"], r["mode"], r["entries"]) for r in rows] == [
        ("invoice-plus", "name", "raw", 2),
        ("invoice-plus", "phone", "raw", 1),
        ("loyalty-stamp", "phone", "token", 1),
    ]
    assert rows[0]["first_at"] == t0 and rows[0]["last_at"] == t0 + timedelta(hours=2)
    assert who_has(world.db, world.tenants[1].customers[3].public_id) == []  # other company: nothing
    with pytest.raises(NotFound):
        who_has(world.db, "cus_nobody")


# --- tampering: each edit made in SQL, as someone with database write access only -----------------


def _chain(world: World, n: int = 6) -> list[LedgerEntry]:
    for i in range(n):
        _record(world, name_raw=[i, i + 1], phone_raw=[i])
    return _entries(world.db)


def _problems(db: Database) -> list[tuple[str, int]]:
    report = verify(db)
    return [(p.kind, p.position) for p in report.problems]


def _exec(db: Database, sql: str, **params: object) -> None:
    with db.session() as session:
        session.execute(text(sql), params)


def test_verify_detects_altered_endpoint(world: World) -> None:
    _chain(world)
    _exec(world.db, "UPDATE ledger_entries SET endpoint = '/v1/elsewhere' WHERE seq = 3")
    assert _problems(world.db) == [("altered", 3)]


def test_verify_detects_altered_payload(world: World) -> None:
    entries = _chain(world)
    forged = decode_payload(entries[3].payload)
    forged[("phone", "raw")].discard(world.tenants[0].customers[3].id)  # hide that a phone went out
    from appwarden.ledger.chain import encode_payload

    _exec(world.db, "UPDATE ledger_entries SET payload = :p WHERE seq = 4", p=encode_payload(forged))
    problems = _problems(world.db)
    assert ("altered", 4) in problems
    assert {kind for kind, _ in problems} == {"altered", "index_mismatch"}


def test_verify_detects_inserted_entry_beyond_head(world: World) -> None:
    entries = _chain(world)
    _insert_forged(world, seq=7, prev_hash=entries[-1].hash)
    assert _problems(world.db) == [("inserted", 7)]


def test_verify_detects_inserted_entry_in_the_middle(world: World) -> None:
    entries = _chain(world)
    # Make room at seq 3 by renumbering 3..6 to 4..7 (negative first: seq is the primary key).
    _exec(world.db, "UPDATE ledger_entries SET seq = -(seq + 1) WHERE seq >= 3")
    _exec(world.db, "UPDATE ledger_entries SET seq = -seq WHERE seq < 0")
    _insert_forged(world, seq=3, prev_hash=entries[1].hash)
    report = verify(world.db)
    assert [(p.kind, p.position) for p in report.problems] == [("inserted", 3)]
    assert "renumbered" in report.problems[0].detail


def test_verify_detects_removed_entry_in_the_middle(world: World) -> None:
    _chain(world)
    _exec(world.db, "DELETE FROM ledger_entries WHERE seq = 3")
    problems = _problems(world.db)
    assert problems[0] == ("removed", 3)
    assert {kind for kind, _ in problems} <= {"removed", "index_mismatch"}


def test_verify_detects_removal_hidden_by_renumbering(world: World) -> None:
    _chain(world)
    _exec(world.db, "DELETE FROM ledger_entries WHERE seq = 3")
    _exec(world.db, "UPDATE ledger_entries SET seq = -(seq - 1) WHERE seq > 3")
    _exec(world.db, "UPDATE ledger_entries SET seq = -seq WHERE seq < 0")
    _exec(world.db, "UPDATE ledger_head SET seq = 5")
    problems = _problems(world.db)
    assert problems[0] == ("removed", 3)
    assert "altered" not in {kind for kind, _ in problems}


def test_verify_detects_tail_truncation(world: World) -> None:
    _chain(world)
    _exec(world.db, "DELETE FROM ledger_entries WHERE seq >= 5")
    report = verify(world.db)
    removed = [p for p in report.problems if p.kind == "removed"]
    assert [(p.position, p.count) for p in removed] == [(5, 2)]


def _insert_forged(world: World, *, seq: int, prev_hash: str) -> None:
    t = world.tenants[0]
    _exec(
        world.db,
        "INSERT INTO ledger_entries (seq, recorded_at, request_id, app_id, company_id, endpoint, kind,"
        " persons, payload, prev_hash, hash)"
        " VALUES (:seq, :at, 'forged', :app, :co, '/v1/customers', 'delivery', 0, :payload, :prev, :hash)",
        seq=seq,
        at=datetime.now(UTC).replace(tzinfo=None),
        app=world.apps["booking-go"][0],
        co=t.company.id,
        payload=b"AWL1",
        prev=prev_hash,
        hash="f" * 64,
    )


# --- failure and concurrency ----------------------------------------------------------------------


@pytest.mark.parametrize("table", ["ledger_entries", "ledger_index"])
def test_failing_write_raises_unavailable_and_leaves_nothing(world: World, table: str) -> None:
    _record(world, name_raw=[0])
    before = _entries(world.db)
    with world.db.session() as session:
        head_before = session.execute(select(LedgerHead.seq, LedgerHead.hash)).one()
        index_before = session.execute(select(LedgerIndex.id, LedgerIndex.bitmap, LedgerIndex.last_at)).all()
    _install_failing_trigger(world.db, table)
    try:
        with pytest.raises(Unavailable) as caught:
            _record(world, name_raw=[5, 6], email_masked=[1])
        assert caught.value.code == "ledger_unavailable"
    finally:
        _drop_failing_trigger(world.db, table)
    assert [e.hash for e in _entries(world.db)] == [e.hash for e in before]
    with world.db.session() as session:
        assert session.execute(select(LedgerHead.seq, LedgerHead.hash)).one() == head_before
        index_after = session.execute(select(LedgerIndex.id, LedgerIndex.bitmap, LedgerIndex.last_at)).all()
        assert index_after == index_before
        tags = session.scalars(select(SecurityEvent.tag)).all()
    assert "ledger:entry:write-failed" in tags
    assert verify(world.db).intact
    assert _record(world, name_raw=[5]) == 2  # and the ledger carries on once the fault is gone


def _install_failing_trigger(db: Database, table: str) -> None:
    with db.session() as session:
        if db.is_sqlite:
            session.execute(
                text(
                    f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'storage failure'); END"
                )
            )
        else:
            session.execute(
                text(
                    "CREATE OR REPLACE FUNCTION fail_write() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'storage failure'; END $$ LANGUAGE plpgsql"
                )
            )
            session.execute(
                text(
                    f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION fail_write()"
                )
            )


def _drop_failing_trigger(db: Database, table: str) -> None:
    with db.session() as session:
        if db.is_sqlite:
            session.execute(text(f"DROP TRIGGER fail_{table}"))
        else:
            session.execute(text(f"DROP TRIGGER fail_{table} ON {table}"))
            session.execute(text("DROP FUNCTION fail_write()"))


def _run_together(threads: int, work: Callable[[int], None]) -> None:
    """Run ``work(n)`` on ``threads`` threads released at once; fail with any thread's error."""
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as exc:  # collected and checked in the main thread
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert errors == []


def _assert_one_chain(db: Database, appended: int) -> None:
    """Exactly ``appended`` entries, numbered 1.., each chained to the previous, and verify agrees."""
    entries = _entries(db)
    assert [e.seq for e in entries] == list(range(1, appended + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert verify(db).intact


def test_concurrent_writers_keep_one_chain(world: World) -> None:
    threads, per_thread = 8, 15

    def work(n: int) -> None:
        for i in range(per_thread):
            slug = ["invoice-plus", "loyalty-stamp"][n % 2]
            _record(world, slug, n % 2, name_raw=[i % 12], phone_raw=[n])

    _run_together(threads, work)
    _assert_one_chain(world.db, threads * per_thread)
