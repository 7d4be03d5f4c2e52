"""Verdicts from real deliveries in the ledger: one app, two apps, the platform itself, unexplained
fields, masked against full values, too few matches, and canary proof."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyroaring import BitMap

from appwarden.attribution.service import attribute_dump
from appwarden.attribution.verdict import AppEvidence, decide_verdict, greedy_cover
from appwarden.canary.models import Canary
from appwarden.db.session import Database
from appwarden.platform import service as platform
from appwarden.platform.models import Customer
from attribution_helpers import add_app, deliver, noisy_name, noisy_phone, write_csv
from conftest import Tenant, World, build_world

NAME_PHONE = [("name", "raw"), ("phone", "raw")]


@pytest.fixture
def big(db: Database) -> World:
    """Three companies of 30 customers; invoice-plus got names and phones of companies 0 and 1,
    loyalty-stamp masked names of companies 1 and 2, booking-go masked phones of company 2."""
    world = build_world(db, companies=3, customers=30)
    t0, t1, t2 = world.tenants
    deliver(world, "invoice-plus", t0, t0.customers, NAME_PHONE)
    deliver(world, "invoice-plus", t1, t1.customers, NAME_PHONE)
    deliver(world, "loyalty-stamp", t1, t1.customers, [("name", "masked"), ("phone", "token")])
    deliver(world, "loyalty-stamp", t2, t2.customers, [("name", "masked"), ("phone", "token")])
    deliver(world, "booking-go", t2, t2.customers, [("name", "token"), ("phone", "masked")])
    return world


def name_phone_rows(people: list[Customer]) -> list[list[str | None]]:
    return [
        [noisy_name(c.name, i), None if c.phone is None else noisy_phone(c.phone, i)]
        for i, c in enumerate(people)
    ]


def attribute(db: Database, path: Path, **kw: object) -> dict:
    return attribute_dump(db, path, **kw).to_dict()  # type: ignore[arg-type]


def test_one_apps_deliveries_point_to_that_app(big: World, db: Database, tmp_path: Path) -> None:
    people = big.tenants[0].customers + big.tenants[1].customers
    rows = [*name_phone_rows(people), ["高橋 次郎", "090-8888-0001"], ["伊藤 三郎", "090-8888-0002"]]
    path = write_csv(tmp_path / "leak.csv", ["氏名", "電話番号"], rows, encoding="cp932")
    result = attribute_dump(db, path)
    out = result.to_dict()
    assert out["rows"] == 62 and out["rows_matched"] == 60
    assert result.row_customer_ids.tolist() == [c.id for c in people] + [0, 0]
    assert out["columns"] == {"氏名": "name", "電話番号": "phone"}
    assert out["verdict"]["source"] == "app" and out["verdict"]["apps"] == ["invoice-plus"]
    assert out["verdict"]["confidence"] >= 0.95
    assert out["candidates"][0] == {"app": "invoice-plus", "coverage": 1.0, "persons": 60, "stores": 4}
    # loyalty-stamp got company 1's names only masked: it cannot explain full names.
    assert [c["app"] for c in out["candidates"]] == ["invoice-plus"]
    assert out["unexplained"] == {"persons": 0, "fields": [], "detail": []}
    companies = out["verdict"]["companies"]["invoice-plus"]
    assert sorted(c["id"] for c in companies) == sorted(t.company.public_id for t in big.tenants[:2])
    assert all(c["persons"] == 30 for c in companies)


def test_two_apps_union_points_to_both(big: World, db: Database, tmp_path: Path) -> None:
    add_app(big, "crm-sync", ["customers.name:raw", "customers.phone:raw", "customers.email:raw"])
    t0, t2 = big.tenants[0], big.tenants[2]
    deliver(big, "crm-sync", t2, t2.customers, NAME_PHONE)
    people = t0.customers[:20] + t2.customers[:20]
    path = write_csv(tmp_path / "union.csv", ["name", "phone"], name_phone_rows(people))
    out = attribute(db, path)
    assert out["verdict"]["source"] == "app"
    assert sorted(out["verdict"]["apps"]) == ["crm-sync", "invoice-plus"]
    assert {c["app"]: c["coverage"] for c in out["candidates"]} == {"invoice-plus": 0.5, "crm-sync": 0.5}
    assert out["unexplained"]["persons"] == 0


def test_platform_dump_points_to_the_platform(big: World, db: Database, tmp_path: Path) -> None:
    """Everyone of every company, straight from the customers table: company 2's full names went nowhere."""
    people = [c for t in big.tenants for c in t.customers]
    path = write_csv(tmp_path / "db.csv", ["顧客名", "TEL"], [[c.name, c.phone] for c in people])
    out = attribute(db, path)
    assert out["verdict"]["source"] == "platform" and out["verdict"]["apps"] == []
    assert out["unexplained"]["persons"] == 30
    assert out["candidates"][0]["app"] == "invoice-plus" and out["candidates"][0][
        "coverage"
    ] == pytest.approx(2 / 3, abs=1e-3)
    assert out["verdict"]["confidence"] > 0.3


def test_field_no_app_received_is_flagged(big: World, db: Database, tmp_path: Path) -> None:
    people = big.tenants[0].customers
    rows = [[c.name, c.phone, c.address] for c in people]
    path = write_csv(tmp_path / "addr.csv", ["氏名", "電話番号", "住所"], rows)
    out = attribute(db, path)
    assert out["unexplained"]["fields"] == ["address"]
    assert out["unexplained"]["detail"] == [
        {"field": "address", "persons": 30, "reason": "no app received it"}
    ]
    # The people themselves are explained by invoice-plus; the address came from somewhere else.
    assert out["unexplained"]["persons"] == 0
    assert out["candidates"][0] == {"app": "invoice-plus", "coverage": 1.0, "persons": 30, "stores": 2}
    assert out["verdict"]["source"] == "platform"


def test_masked_phones_are_explained_by_a_masked_delivery_full_ones_are_not(
    big: World, db: Database, tmp_path: Path
) -> None:
    add_app(big, "masky", ["customers.name:raw", "customers.phone:masked"])
    t2 = big.tenants[2]
    deliver(big, "masky", t2, t2.customers, [("name", "raw"), ("phone", "masked")])
    people = [c for c in t2.customers if c.phone]
    masked = [[c.name, f"{(c.phone or '')[:3]}-****-{(c.phone or '')[-4:]}"] for c in people]
    out = attribute(db, write_csv(tmp_path / "masked.csv", ["氏名", "電話番号"], masked))
    assert out["verdict"]["source"] == "app" and out["verdict"]["apps"] == ["masky"]
    assert out["cells"]["phone"] == {"full": 0, "masked": len(people), "token": 0}
    assert out["unexplained"]["fields"] == []

    full = [[c.name, c.phone] for c in people]
    out = attribute(db, write_csv(tmp_path / "full.csv", ["氏名", "電話番号"], full))
    # Only masked (masky, booking-go) and token (loyalty-stamp) phones went out for these people.
    assert out["unexplained"]["fields"] == ["phone"]
    assert out["unexplained"]["detail"][0]["persons"] == len(people)
    assert out["verdict"]["source"] == "platform"


def test_too_few_matches_is_unknown(big: World, db: Database, tmp_path: Path) -> None:
    real = big.tenants[0].customers[0]
    rows = [[real.name, real.phone]] + [[f"他人 {i}号", f"090-7777-{i:04d}"] for i in range(20)]
    out = attribute(db, write_csv(tmp_path / "few.csv", ["氏名", "電話番号"], rows))
    assert out["rows_matched"] == 1 and out["verdict"]["source"] == "unknown"
    assert out["verdict"]["confidence"] == 0.0 and out["verdict"]["apps"] == []


def test_canary_in_the_dump_names_the_exact_app_and_company(big: World, db: Database, tmp_path: Path) -> None:
    t0: Tenant = big.tenants[0]
    big.connect("invoice-plus", t0)
    from sqlalchemy import select

    from appwarden.oauth.models import Connection

    with db.session() as session:
        connection = session.scalar(select(Connection).where(Connection.company_id == t0.company.id))
        assert connection is not None
        canary = platform.add_customer(
            session,
            t0.company,
            {
                "home_store_id": t0.stores[1].id,
                "name": "小野寺 美咲",
                "phone": "050-1000-0007",
                "email": "k7q2@canary.example.net",
                "is_canary": True,
            },
        )
        session.add(
            Canary(
                customer_id=canary.id,
                connection_id=connection.id,
                app_id=connection.app_id,
                company_id=t0.company.id,
                email="k7q2@canary.example.net",
                phone="+815010000007",
            )
        )
        connection_public = connection.public_id
        canary_id = canary.id
    with db.session() as session:
        stored = session.get(Customer, canary_id)
        assert stored is not None
    deliver(big, "invoice-plus", t0, [stored], NAME_PHONE)
    people = t0.customers[:10]
    rows = [[c.name, c.phone] for c in people] + [["小野寺 美咲", "05010000007"]]
    out = attribute(db, write_csv(tmp_path / "canary.csv", ["氏名", "電話番号"], rows))
    assert out["verdict"]["canary_hits"] == [
        {
            "app": "invoice-plus",
            "company": t0.company.public_id,
            "store": t0.stores[1].public_id,
            "connection": connection_public,
            "issued_at": out["verdict"]["canary_hits"][0]["issued_at"],
        }
    ]
    assert out["verdict"]["apps"] == ["invoice-plus"] and out["verdict"]["confidence"] >= 0.999
    assert "k7q2" not in str(out) and "小野寺" not in str(out)  # hits never carry the values


def test_greedy_cover_prefers_the_specific_app_and_ignores_noise() -> None:
    matched = BitMap(range(1, 201))
    explained = {"broad": BitMap(range(1, 201)), "exact": BitMap(range(1, 201)), "stray": BitMap([1])}
    assert greedy_cover(matched, explained, {"broad": 100_000, "exact": 200, "stray": 5}) == ["exact"]
    cells = {"name": {"full": matched, "masked": BitMap(), "token": BitMap()}}
    half = AppEvidence("a", {"co_1": {("name", "raw"): BitMap(range(1, 101))}})
    other = AppEvidence("b", {"co_2": {("name", "raw"): BitMap(range(101, 201))}})
    v = decide_verdict(rows=200, rows_matched=200, matched=matched, cells=cells, apps=[half, other])
    assert v.source == "app" and sorted(v.apps) == ["a", "b"] and v.unexplained_persons == 0
    assert v.companies == {"a": {"co_1": 100}, "b": {"co_2": 100}}
