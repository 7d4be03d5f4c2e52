"""Deliveries over time (``ledger.activity``) and the inline SVG charts (``charts``) the console draws.

The activity is recounted independently from the ledger rows the test wrote; the charts are parsed as
XML, so a label that broke out of its element would fail here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from appwarden.charts import Bar, bar_chart, hbar_chart
from appwarden.errors import InvalidInput
from appwarden.ledger.activity import MAX_BUCKETS, Bucket, deliveries
from appwarden.ledger.exposure import received_by_company
from conftest import World
from ledger_helpers import deliver

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_hourly_deliveries_count_entries_and_people_with_quiet_hours_present(world: World) -> None:
    plan = [  # (app, tenant, people, minutes after T0)
        ("invoice-plus", 0, [0, 1, 2], 5),
        ("invoice-plus", 0, [3], 50),
        ("invoice-plus", 1, [0, 1], 130),  # two hours later, another company
        ("loyalty-stamp", 0, [0], 20),
    ]
    for slug, tenant, people, minutes in plan:
        deliver(world, slug, tenant, T0 + timedelta(minutes=minutes), name__raw=people)
    app_id = world.apps["invoice-plus"][0]
    with world.db.session() as session:
        rows = deliveries(session, since=T0, until=T0 + timedelta(hours=3), app_id=app_id)
        everyone = deliveries(session, since=T0, until=T0 + timedelta(hours=3))
        one_company = deliveries(
            session, since=T0, until=T0 + timedelta(hours=3), company_id=world.tenants[1].company.id
        )
    assert [r.start for r in rows] == [T0 + timedelta(hours=h) for h in range(4)]
    assert [(r.entries, r.people) for r in rows] == [(2, 4), (0, 0), (1, 2), (0, 0)]
    assert [(r.entries, r.people) for r in everyone] == [(3, 5), (0, 0), (1, 2), (0, 0)]
    assert [(r.entries, r.people) for r in one_company] == [(0, 0), (0, 0), (1, 2), (0, 0)]


def test_daily_buckets_start_at_midnight_utc(world: World) -> None:
    deliver(world, "invoice-plus", 0, T0 + timedelta(hours=20), name__raw=[0, 1])  # 05:00 the next day
    with world.db.session() as session:
        days = deliveries(session, since=T0, until=T0 + timedelta(days=1), bucket=Bucket.DAY)
    assert [d.start for d in days] == [datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)]
    assert [d.people for d in days] == [0, 2]


def test_a_range_too_long_or_reversed_is_refused(world: World) -> None:
    with world.db.session() as session:
        with pytest.raises(InvalidInput) as long:
            deliveries(session, since=T0, until=T0 + timedelta(hours=MAX_BUCKETS))
        with pytest.raises(InvalidInput) as reversed_:
            deliveries(session, since=T0, until=T0 - timedelta(hours=1))
    assert long.value.code == "range_too_long"
    assert reversed_.value.code == "invalid_range"


def test_bar_chart_scales_to_the_peak_and_escapes_labels() -> None:
    svg = bar_chart(
        [Bar("<b>09:00</b>", 10), Bar("10:00", 5), Bar("11:00", 0)], label='Deliveries "per hour" & more'
    )
    root = ET.fromstring(str(svg))
    assert root.get("aria-label") == 'Deliveries "per hour" & more'
    rects = root.findall(f"{SVG}rect")
    heights = [float(r.get("height", "")) for r in rects]
    assert heights[0] > 0 and heights[1] == pytest.approx(heights[0] / 2, abs=0.1) and heights[2] == 0
    assert [r.find(f"{SVG}title").text for r in rects] == ["<b>09:00</b>: 10", "10:00: 5", "11:00: 0"]
    assert "<b>" not in str(svg)  # the label is text, not markup


def test_an_all_zero_series_draws_no_bar_height() -> None:
    root = ET.fromstring(str(bar_chart([Bar("a", 0), Bar("b", 0)], label="quiet")))
    assert {r.get("height") for r in root.findall(f"{SVG}rect")} == {"0.0"}


def test_horizontal_chart_has_one_row_per_bar_with_its_value() -> None:
    root = ET.fromstring(str(hbar_chart([Bar("株式会社A", 20311), Bar("B & C", 812)], label="by company")))
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert texts == ["株式会社A", "20,311", "B & C", "812"]
    widths = [float(r.get("width", "")) for r in root.findall(f"{SVG}rect")]
    assert widths[0] > widths[1] > 0


def test_received_by_company_counts_distinct_people_per_field_and_mode(world: World) -> None:
    deliver(world, "invoice-plus", 0, T0, name__raw=[0, 1, 2])
    deliver(world, "invoice-plus", 0, T0 + timedelta(hours=5), name__raw=[1, 2, 3])  # two again, one new
    deliver(world, "invoice-plus", 1, T0 + timedelta(hours=1), name__raw=[0])
    app_id = world.apps["invoice-plus"][0]
    first, second = world.tenants[0].company.id, world.tenants[1].company.id
    with world.db.session() as session:
        rows = received_by_company(session, app_id)
        only_second = received_by_company(session, app_id, company_id=second)
    by_company = {(r.company_id, r.field, r.mode): r for r in rows}
    assert by_company[(first, "name", "raw")].people == 4
    assert by_company[(first, "name", "raw")].first_at == T0
    assert by_company[(first, "name", "raw")].last_at == T0 + timedelta(hours=5)
    assert by_company[(second, "name", "raw")].people == 1
    assert [(r.company_id, r.people) for r in only_second] == [(second, 1)]
