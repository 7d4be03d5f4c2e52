"""Blind index: built for the world, found by noisy values, kept in step with customer changes."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from appwarden.blind_index import service as blind_index
from appwarden.blind_index.models import BlindIndexEntry
from appwarden.blind_index.normalize import swapped_names
from appwarden.blind_index.service import (
    digest_raw,
    digest_values,
    index_key,
    lookup,
    rebuild_blind_index,
    refresh_customers,
)
from appwarden.blind_index.vocabulary import FIELD_CODES
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.platform import service as platform
from appwarden.platform.models import Customer
from conftest import World


def find(db: Database, field: str, raw: list[str | None]) -> list[list[int]]:
    """Customer ids per raw dump value, through normalisation, HMAC and the index only."""
    digests = digest_raw(field, raw)
    with db.session() as session:
        hits = lookup(session, field, digests)
    return [hits.get(d, []) if d is not None else [] for d in digests]


def count_entries(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(BlindIndexEntry)) or 0


def expected_entries(world: World) -> int:
    return sum(
        1
        + (c.name_kana is not None)
        + (c.phone is not None)
        + (c.email is not None)
        + (c.birthday is not None)
        for t in world.tenants
        for c in t.customers
    )


def test_world_is_indexed_on_insert_and_rebuild_is_identical(world: World, db: Database) -> None:
    """add_customers indexes in the same transaction; a rebuild writes the same entries again."""
    with db.session() as session:
        before = set(
            session.execute(
                select(BlindIndexEntry.customer_id, BlindIndexEntry.field, BlindIndexEntry.digest)
            )
        )
    assert len(before) == expected_entries(world)
    progress: list[tuple[int, int]] = []
    written = rebuild_blind_index(db, on_progress=lambda d, t: progress.append((d, t)), batch_size=5)
    with db.session() as session:
        after = set(
            session.execute(
                select(BlindIndexEntry.customer_id, BlindIndexEntry.field, BlindIndexEntry.digest)
            )
        )
    assert written == len(after) == len(before) and after == before
    assert progress[-1] == (24, 24) and len(progress) == 5  # 24 customers in batches of 5


def test_noisy_values_find_the_right_customer(world: World, db: Database) -> None:
    target = world.tenants[1].customers[2]  # 山田 太郎1-2, 090-0001-0002, taro1.2@example.jp
    assert target.phone == "090-0001-0002" and target.email == "taro1.2@example.jp"
    assert (
        find(db, "phone", ["０９０ー０００１ー０００２", "+81 (0)90 0001 0002", "090-0001-0002 内線5"])
        == [[target.id]] * 3
    )
    assert (
        find(db, "email", [" TARO1.2@Example.JP", "ｔａｒｏ１．２＠ｅｘａｍｐｌｅ．ｊｐ"])
        == [[target.id]] * 2
    )
    assert find(db, "name", ["山田　太郎１－２", "山田太郎1-2"]) == [[target.id]] * 2
    assert find(db, "name_kana", ["やまだ たろう1-2", "ﾔﾏﾀﾞ ﾀﾛｳ1-2"]) == [[target.id]] * 2
    # Swapped order is found through the alternative key the dump side computes.
    assert find(db, "name", ["太郎1-2 山田"]) == [[]]
    swapped_digest = digest_values("name", swapped_names(["太郎1-2 山田"]))
    with db.session() as session:
        assert lookup(session, "name", swapped_digest) == {swapped_digest[0]: [target.id]}


def test_different_values_find_nobody(world: World, db: Database) -> None:
    assert (
        find(db, "phone", ["090-0001-0099", "090-0003-0003", "03-0001-0003", None, "not a phone"]) == [[]] * 5
    )
    assert find(db, "email", ["taro1.3@example.com", "taro1.33@example.jp"]) == [[]] * 2
    assert find(db, "name", ["山田 次郎1-3", "ヤマダ タロウ1-3"]) == [[]] * 2  # kana never matches kanji


def test_common_names_return_every_holder(world: World, db: Database) -> None:
    with db.session() as session:
        company = world.tenants[0].company
        platform.add_customers(
            session,
            company,
            [
                {"home_store_id": world.tenants[0].stores[0].id, "name": "佐藤 健", "phone": None}
                for _ in range(3)
            ],
        )
        ids = list(
            session.scalars(select(Customer.id).where(Customer.name == "佐藤 健").order_by(Customer.id))
        )
    assert len(ids) == 3
    assert find(db, "name", ["佐藤健"]) == [ids]


def test_platform_writes_are_refreshed_through_the_hook(world: World, db: Database) -> None:
    tenant = world.tenants[0]
    with db.session() as session:
        person = platform.add_customer(
            session,
            tenant.company,
            {
                "home_store_id": tenant.stores[0].id,
                "name": "髙橋 一郎",
                "phone": "080-9999-0000",
                "birthday": date(1970, 5, 6),
            },
        )
        new_id = person.id
    assert find(db, "name", ["高橋一郎"]) == [[new_id]]
    assert find(db, "birthday", ["昭和45年5月6日"]) == [[new_id]]
    with db.session() as session:
        # points: not indexed
        platform.update_customer(session, new_id, {"phone": "080-9999-1111", "points": 5})
    assert find(db, "phone", ["080-9999-0000", "08099991111"]) == [[], [new_id]]
    with db.session() as session:
        platform.delete_customer(session, new_id)
    assert find(db, "phone", ["08099991111"]) == [[]]


def test_refresh_after_core_update(world: World, db: Database) -> None:
    from sqlalchemy import update

    target = world.tenants[0].customers[0]
    with db.session() as session:
        session.execute(update(Customer).where(Customer.id == target.id).values(email="new@example.jp"))
        # A Core UPDATE bypasses the ORM: the writer refreshes explicitly, in the same transaction.
        assert refresh_customers(session, [target.id]) == 4  # name, kana, phone, email (no birthday)
    assert find(db, "email", ["new@example.jp", target.email]) == [[target.id], []]


@pytest.mark.parametrize("small", [False, True])
def test_lookup_paths_agree(world: World, db: Database, monkeypatch: pytest.MonkeyPatch, small: bool) -> None:
    """Small limits force the chunked IN lists (SQLite) and the COPY'd probe table (PostgreSQL)."""
    if small:
        monkeypatch.setattr(blind_index, "LOOKUP_CHUNK", 3)
        monkeypatch.setattr(blind_index, "PG_ANY_MAX", 3)
    people = [c for t in world.tenants for c in t.customers if c.phone]
    digests = digest_raw("phone", [c.phone for c in people] + ["090-9999-9999"])
    with db.session() as session:
        first = lookup(session, "phone", digests)
        again = lookup(session, "phone", digests[:2])  # the probe table is reused in one transaction
    assert first == {d: [c.id] for d, c in zip(digests, people, strict=False)}
    assert again == {d: first[d] for d in digests[:2] if d is not None}


def test_digests_are_keyed_and_field_separated(settings: Settings) -> None:
    same = digest_values("name", ["ヤマダ"]) + digest_values("name_kana", ["ヤマダ"])
    assert same[0] != same[1] and all(d is not None and len(d) == 16 for d in same)
    assert digest_values("phone", [None, "+819012345678"])[0] is None
    key_a, key_b = index_key(b"master-a"), index_key(b"master-b")
    assert digest_values("phone", ["+819012345678"], key=key_a) != digest_values(
        "phone", ["+819012345678"], key=key_b
    )
    assert index_key(settings.master_key) == index_key(settings.master_key)
    with pytest.raises(ValueError):
        digest_values("gender", ["male"])
    assert set(FIELD_CODES) == {"name", "name_kana", "phone", "email", "birthday"}
