"""When was the dumped copy made: from first-delivery times in the ledger and from replaced values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyroaring import BitMap

from appwarden.attribution.service import attribute_dump
from appwarden.attribution.snapshot import window
from appwarden.db.session import Database
from appwarden.platform import service as platform
from attribution_helpers import deliver, write_csv
from conftest import World

T0 = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
NAME_PHONE = [("name", "raw"), ("phone", "raw")]


def test_window_from_first_deliveries() -> None:
    d = [
        (T0, BitMap([1, 2])),
        (T0 + timedelta(days=1), BitMap([1, 3])),  # 3 first delivered here: the last dumped person
        (T0 + timedelta(days=2), BitMap([2, 3])),  # nobody new
        (T0 + timedelta(days=3), BitMap([4, 5])),  # new people, none in the dump
        (T0 + timedelta(days=4), BitMap([6])),
    ]
    snap = window(iter(d), BitMap([1, 2, 3]))
    assert snap["after"] == "2025-12-02T09:00:00Z" and snap["before"] == "2025-12-04T09:00:00Z"
    assert snap["evidence"] == [
        "the last 1 of the 3 dumped people were first delivered at 2025-12-02T09:00:00Z",
        "2 people first delivered at 2025-12-04T09:00:00Z are all absent from the dump",
    ]
    # Nothing delivered later: no upper bound; a dumped person no delivery holds is said so.
    snap = window(iter(d[:2]), BitMap([1, 2, 3, 9]))
    assert snap["after"] == "2025-12-02T09:00:00Z" and snap["before"] is None
    assert snap["evidence"] == ["1 dumped people are in none of these deliveries"]


def test_window_from_value_changes() -> None:
    d = [(T0, BitMap([1, 2]))]
    replaced = T0 + timedelta(hours=5)
    snap = window(iter(d), BitMap([1, 2]), old_values={(2, "phone"): replaced})
    assert snap["before"] == "2025-12-01T14:00:00Z"
    assert (
        snap["evidence"][-1]
        == "1 dumped phone value(s) were since replaced, the first at 2025-12-01T14:00:00Z"
    )
    changed = T0 + timedelta(days=3)
    snap = window(iter(d), BitMap([1, 2]), new_values=[(1, "phone", changed)])
    assert snap["after"] == "2025-12-04T09:00:00Z" and snap["before"] is None


def test_snapshot_of_an_app_dump(world: World, db: Database, tmp_path: Path) -> None:
    """Pages on three days; the dump holds the first two days' people; the fourth day's are absent."""
    t = world.tenants[0]
    people = t.customers
    deliver(world, "invoice-plus", t, people[:4], NAME_PHONE, at=T0)
    deliver(world, "invoice-plus", t, people[4:8], NAME_PHONE, at=T0 + timedelta(days=1))
    deliver(world, "invoice-plus", t, people[:8], NAME_PHONE, at=T0 + timedelta(days=2))  # a re-read
    deliver(world, "invoice-plus", t, people[8:], NAME_PHONE, at=T0 + timedelta(days=3))
    deliver(world, "loyalty-stamp", t, people[8:], [("name", "masked")], at=T0 + timedelta(hours=1))
    path = write_csv(tmp_path / "leak.csv", ["氏名", "電話番号"], [[c.name, c.phone] for c in people[:8]])
    out = attribute_dump(db, path).to_dict()
    assert out["verdict"]["apps"] == ["invoice-plus"]
    assert out["snapshot"]["after"] == "2025-12-02T09:00:00Z"
    assert out["snapshot"]["before"] == "2025-12-04T09:00:00Z"
    assert (
        "4 people first delivered at 2025-12-04T09:00:00Z are all absent from the dump"
        in out["snapshot"]["evidence"]
    )


def test_snapshot_bounded_by_a_replaced_phone(world: World, db: Database, tmp_path: Path) -> None:
    t = world.tenants[0]
    people = [c for c in t.customers if c.phone][:6]
    deliver(world, "invoice-plus", t, people, NAME_PHONE, at=T0)
    target = people[0]
    with db.session() as session:
        platform.update_customer(session, target.id, {"phone": "080-2222-3333"})
    rows = [[c.name, c.phone] for c in people]  # the copy still has the old number
    out = attribute_dump(db, write_csv(tmp_path / "old.csv", ["氏名", "電話番号"], rows)).to_dict()
    assert out["rows_matched"] == 6 and out["verdict"]["apps"] == ["invoice-plus"]
    before = datetime.fromisoformat(out["snapshot"]["before"].replace("Z", "+00:00"))
    assert before > T0 and before <= datetime.now(UTC)
    assert any("phone value(s) were since replaced" in e for e in out["snapshot"]["evidence"])

    # A copy holding the new number was made after the change.
    deliver(world, "invoice-plus", t, [target], NAME_PHONE)
    rows[0][1] = "080-2222-3333"
    out = attribute_dump(db, write_csv(tmp_path / "new.csv", ["氏名", "電話番号"], rows)).to_dict()
    assert out["snapshot"]["after"] is not None
    after = datetime.fromisoformat(out["snapshot"]["after"].replace("Z", "+00:00"))
    assert after >= before
    assert any("replaced older ones" in e for e in out["snapshot"]["evidence"])


def test_window_counts_canaries_apart_from_people() -> None:
    d = [(T0, BitMap([1, 2])), (T0 + timedelta(days=1), BitMap([3, 90]))]  # 90 is a canary
    snap = window(iter(d), BitMap([1, 2, 3, 90]), canaries=BitMap([90]))
    assert snap["after"] == "2025-12-02T09:00:00Z"  # the canary dates the copy like anyone
    assert snap["evidence"] == [
        "the last 1 (and 1 canary record(s)) of the 3 dumped people were first delivered at"
        " 2025-12-02T09:00:00Z"
    ]
