"""APPI rules as pure functions: deadlines from awareness (JST dates, day 1 = the day of awareness), and
whether reporting is mandatory (the 1,000-person threshold, unauthorised access, sensitive, financial)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from appwarden.incident import appi


def test_final_deadline_is_60_days_with_unauthorised_access_and_30_without() -> None:
    aware = datetime(2026, 1, 8, 2, 50, tzinfo=UTC)  # 11:50 JST on 8 January
    with_access = appi.deadlines(aware, unauthorized_access=True)
    without = appi.deadlines(aware, unauthorized_access=False)
    assert with_access.final_days == 60 and without.final_days == 30
    # The day of awareness is day 1: day 30 is 6 February, day 60 is 8 March.
    assert without.final_due == date(2026, 2, 6)
    assert with_access.final_due == date(2026, 3, 8)
    assert (with_access.preliminary_from, with_access.preliminary_to) == (
        date(2026, 1, 11),
        date(2026, 1, 13),
    )


def test_deadlines_count_japanese_calendar_days() -> None:
    # 16:30 UTC on 7 January is already 01:30 on 8 January in Tokyo.
    late = appi.deadlines(datetime(2026, 1, 7, 16, 30, tzinfo=UTC), unauthorized_access=False)
    assert late.aware_on == date(2026, 1, 8)
    assert late.final_due == date(2026, 2, 6)
    early = appi.deadlines(datetime(2026, 1, 7, 14, 59, tzinfo=UTC), unauthorized_access=False)
    assert early.aware_on == date(2026, 1, 7)


def test_naive_awareness_time_is_refused() -> None:
    with pytest.raises(ValueError):
        appi.deadlines(datetime(2026, 1, 8, 11, 50), unauthorized_access=False)


@pytest.mark.parametrize(
    ("persons", "mandatory"), [(0, False), (999, False), (1000, False), (1001, True), (136_346, True)]
)
def test_more_than_1000_persons_makes_the_report_mandatory(persons: int, mandatory: bool) -> None:
    reasons = appi.mandatory_reasons(persons=persons, unauthorized_access=False, fields=["name", "phone"])
    assert [r.code for r in reasons] == (["over_1000"] if mandatory else [])
    if mandatory:
        assert f"{persons:,}" in reasons[0].ja and reasons[0].rule == "施行規則第7条第4号"


def test_unauthorised_access_makes_even_a_small_leak_mandatory() -> None:
    reasons = appi.mandatory_reasons(persons=3, unauthorized_access=True, fields=["name"])
    assert [r.code for r in reasons] == ["unauthorized_access"]
    both = appi.mandatory_reasons(persons=5000, unauthorized_access=True, fields=["name"])
    assert [r.code for r in both] == ["unauthorized_access", "over_1000"]


def test_none_of_our_fields_is_sensitive_or_a_financial_risk() -> None:
    every_field = list(appi.FIELD_LABELS)
    reasons = appi.mandatory_reasons(persons=10, unauthorized_access=False, fields=every_field)
    assert reasons == []


def test_exposed_fields_keep_platform_order_and_drop_unexposed() -> None:
    fields = {
        "phone": {"raw": 5, "masked": 0, "token": 0, "exposed": 5},
        "email": {"raw": 0, "masked": 0, "token": 9, "exposed": 0},  # tokens only: not exposed
        "name": {"raw": 7, "masked": 2, "token": 0, "exposed": 8},
    }
    assert appi.exposed_fields(fields) == {"name": 8, "phone": 5}
    assert appi.label("phone", "ja") == "電話番号" and appi.label("phone", "en") == "phone number"
    assert appi.risks(["name", "phone"], "en")[1].startswith("nuisance")
