"""Dump rows → platform customers: noisy spellings found, common names disambiguated, strangers refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from appwarden.attribution.match import cell_kind, decide, match_dump
from appwarden.attribution.reader import read_dump
from appwarden.blind_index.models import BlindIndexHistory
from appwarden.db.session import Database
from appwarden.platform import service as platform
from appwarden.platform.models import Customer
from attribution_helpers import noisy_name, noisy_phone, write_csv
from conftest import World


def match(db: Database, path: Path) -> np.ndarray:
    with db.session() as session:
        return match_dump(session, read_dump(path)).row_customer_ids


def test_cell_kinds() -> None:
    assert [cell_kind(v) for v in ["山田 **", "090-****-5678", "y***@example.com", "1985-**-**"]] == [
        "masked"
    ] * 4
    assert cell_kind("tok_AbCdEfGhIjKlMnOpQrStUv") == "token"
    assert [cell_kind(v) for v in [None, "", "  "]] == [None] * 3
    assert [cell_kind(v) for v in ["山田 太郎", "090-1234-567", "taro@example.jp"]] == ["full"] * 3


def test_decide_rules() -> None:
    sato = frozenset({1, 2, 3})  # three people called 佐藤 翔太
    assert decide([("name", sato), ("phone", frozenset({2}))], 2) == (2, False)  # phone picks one of them
    assert decide([("name", sato)], 1) == (0, True)  # a common name alone: ambiguous
    assert decide([("name", sato), ("name_kana", sato)], 2) == (0, True)  # kana of the same people: still
    assert decide([("name", frozenset({7}))], 1) == (7, False)  # a unique name, nothing else in the row
    assert decide([("name", frozenset({7}))], 2) == (0, False)  # …but a full phone found nobody: a stranger?
    assert decide([("phone", frozenset({5}))], 2) == (5, False)  # name typo: the phone still identifies
    assert decide([("phone", frozenset({5})), ("name", frozenset({6}))], 2) == (0, False)  # contradiction
    assert decide([("phone", frozenset({5, 8})), ("email", frozenset({8}))], 2) == (8, False)  # family phone
    assert decide([], 2) == (0, False)


def test_noisy_rows_match_and_strangers_do_not(world: World, db: Database, tmp_path: Path) -> None:
    people = [c for t in world.tenants for c in t.customers if c.phone]
    rows: list[list[str | None]] = [
        [noisy_name(c.name, i), noisy_phone(c.phone or "", i)] for i, c in enumerate(people)
    ]
    expected = [c.id for c in people]
    rows[0][0] = "山田 太朗0-0"  # a typo in the name: the phone still identifies
    rows[1][1] = "090-0000-9901"  # a typo in the phone: the name is unique but a full phone found nobody
    expected[1] = 0
    rows.append(["鈴木 花子", "090-5555-0000"])  # a stranger
    rows.append([people[2].name, "090-5555-0001"])  # a real name with a stranger's phone: refused
    rows.append(["佐藤 一郎", people[3].phone])  # a real phone with someone else's real name: refused
    rows[-1][0] = people[4].name
    expected += [0, 0, 0]
    path = write_csv(tmp_path / "leak.csv", ["氏名", "電話番号"], rows, encoding="cp932")
    assert match(db, path).tolist() == expected


def test_common_names_are_disambiguated_by_other_columns(world: World, db: Database, tmp_path: Path) -> None:
    tenant = world.tenants[0]
    with db.session() as session:
        platform.add_customers(
            session,
            tenant.company,
            [
                {
                    "home_store_id": tenant.stores[0].id,
                    "name": "佐藤 翔太",
                    "name_kana": "サトウ ショウタ",
                    "phone": f"080-7000-000{i}",
                    "email": f"shota{i}@example.jp",
                }
                for i in range(3)
            ],
        )
        sato = list(
            session.scalars(select(Customer.id).where(Customer.name == "佐藤 翔太").order_by(Customer.id))
        )
    rows = [
        ["佐藤　翔太", "さとう しょうた", "08070000001", None],  # phone → the second
        ["翔太 佐藤", None, None, "SHOTA2@example.jp"],  # email → the third
        ["佐藤 翔太", "サトウ ショウタ", None, None],  # name and kana fit all three: ambiguous
        ["佐藤 翔太", None, "080-7000-0099", None],  # a namesake not in the platform
    ]
    path = write_csv(tmp_path / "sato.csv", ["お名前", "フリガナ", "携帯", "E-mail"], rows)
    with db.session() as session:
        result = match_dump(session, read_dump(path))
    assert result.row_customer_ids.tolist() == [sato[1], sato[2], 0, 0]
    # Row 3, and row 4 too: its phone found nobody, and its name alone fits three people.
    assert result.ambiguous == 2
    assert result.fields == ["name", "name_kana", "phone", "email"]


def test_cells_are_classified_per_matched_person(world: World, db: Database, tmp_path: Path) -> None:
    t = world.tenants[0]
    a, b, c = t.customers[0], t.customers[1], t.customers[2]
    rows = [
        [a.name, a.phone, "t***@example.jp"],
        [b.name, "090-****-0001", None],
        [c.name, None, "tok_abcdefghijklmnopqrstuv"],
    ]
    path = write_csv(tmp_path / "kinds.csv", ["氏名", "TEL", "メール"], rows)
    with db.session() as session:
        result = match_dump(session, read_dump(path))
    assert result.row_customer_ids.tolist() == [a.id, b.id, c.id]
    cells = {f: {k: set(people) for k, people in kinds.items()} for f, kinds in result.cells.items()}
    assert cells["phone"] == {"full": {a.id}, "masked": {b.id}, "token": set()}
    assert cells["email"] == {"full": set(), "masked": {a.id}, "token": {c.id}}
    assert cells["name"]["full"] == {a.id, b.id, c.id}
    assert result.cell_counts["phone"] == {"full": 1, "masked": 1, "token": 0}


def test_replaced_phone_is_history_and_still_matches(world: World, db: Database, tmp_path: Path) -> None:
    """A phone change leaves a history row (and a deleted or new customer none); the old phone matches."""
    target = world.tenants[1].customers[0]
    old_phone = target.phone
    with db.session() as session:
        # points: not indexed, no history
        platform.update_customer(session, target.id, {"phone": "080-1111-2222", "points": 99})
    with db.session() as session:
        rows = session.execute(select(BlindIndexHistory.customer_id, BlindIndexHistory.field)).all()
    assert rows == [(target.id, 3)]  # one row: the phone (field code 3)
    path = write_csv(tmp_path / "old.csv", ["氏名", "電話番号"], [[target.name, old_phone]])
    with db.session() as session:
        result = match_dump(session, read_dump(path))
    assert result.row_customer_ids.tolist() == [target.id]
    assert list(result.old_values) == [(target.id, "phone")]
    assert set(result.current_values["phone"]) == set()


def test_no_history_for_new_or_deleted_customers(world: World, db: Database) -> None:
    from sqlalchemy import func

    tenant = world.tenants[0]
    with db.session() as session:
        platform.add_customers(
            session, tenant.company, [{"home_store_id": tenant.stores[0].id, "name": "新 人"}]
        )
        platform.delete_customer(session, tenant.customers[5].id)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(BlindIndexHistory)) == 0
