"""The detectors over the delivery stream, each on a synthetic pattern with an injected clock (fires on
the pattern, stays quiet on normal traffic), the run lock, deduplication and the daily cap per app."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.marketplace.models import App
from appwarden.monitor.detectors import retention
from appwarden.monitor.models import Alert, DeliveryHour
from appwarden.monitor.policy import MonitorPolicy
from appwarden.monitor.runtime import Monitor, monitor_of
from appwarden.monitor.service import describe
from appwarden.monitor.tally import hour_of
from appwarden.oauth.models import Token
from conftest import World

NOW = datetime(2026, 3, 10, 5, 30, tzinfo=UTC)  # 14:30 in Tokyo
HOUR = timedelta(hours=1)


def monitor(settings: Settings, db: Database, **policy: Any) -> Monitor:
    return Monitor(settings, db, MonitorPolicy(**policy))


def alerts(db: Database, detector: str | None = None) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(Alert).order_by(Alert.id)
        if detector:
            query = query.where(Alert.detector == detector)
        return [view["alert"] for view in describe(session, list(session.scalars(query)))]


def people(world: World, company: int, n: int) -> list[int]:
    return [c.id for c in world.tenants[company].customers[:n]]


def deliver(m: Monitor, world: World, slug: str, company: int, ids: list[int], at: datetime) -> None:
    m.delivered(world.apps[slug][0], world.tenants[company].company.id, {("name", "raw"): ids}, at)


def test_over_declaration_fires_above_the_declared_peak_and_not_below(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings.model_copy(update={"declared_people_per_day_peak": 5}), db)
    deliver(m, world, "invoice-plus", 0, people(world, 0, 10), NOW - 3 * HOUR)  # 10 > 5 × 1.2
    deliver(m, world, "booking-go", 0, people(world, 0, 5), NOW - 3 * HOUR)  # at the peak: normal
    report = m.run_once(NOW)
    assert report.ran and len(report.raised) == 1
    (alert,) = alerts(db)
    assert alert["detector"] == "over_declaration" and alert["app"] == "invoice-plus"
    assert alert["company"] == world.tenants[0].company.public_id
    assert alert["observed"] == {"people_per_day": 10}
    assert alert["baseline"] == {"people_per_day_peak": 5, "declared": False, "factor": 1.2}
    assert list(alert) == [
        "id",
        "detector",
        "severity",
        "app",
        "company",
        "observed",
        "baseline",
        "window",
        "action",
        "ledger_entries",
        "raised_at",
    ]


def test_over_declaration_of_requests_per_minute_over_the_last_hour(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings.model_copy(update={"declared_requests_per_minute_peak": 1}), db)
    last_hour = NOW.replace(minute=0) - HOUR
    for i in range(90):  # 1.5 a minute on average over the hour: above 1 × 1.2
        deliver(m, world, "invoice-plus", 0, [], last_hour + timedelta(seconds=i * 40))
    for i in range(60):  # 1 a minute: at the peak
        deliver(m, world, "booking-go", 0, [], last_hour + timedelta(seconds=i * 60))
    m.run_once(NOW)
    (alert,) = alerts(db)
    assert alert["app"] == "invoice-plus" and alert["observed"] == {"requests_per_minute": 1.5}


def test_mirror_fires_when_one_app_took_most_of_a_companys_members_in_a_day(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings, db, mirror_min_members=5, mirror_share=0.5)
    deliver(m, world, "invoice-plus", 0, people(world, 0, 4), NOW - 20 * HOUR)
    deliver(m, world, "invoice-plus", 0, people(world, 0, 8), NOW - 2 * HOUR)  # 8 of 12 within 24 h
    deliver(m, world, "booking-go", 1, people(world, 1, 5), NOW - 2 * HOUR)  # 5 of 12: a working app
    deliver(m, world, "loyalty-stamp", 1, people(world, 1, 12), NOW - 30 * HOUR)  # all, but 30 h ago
    m.run_once(NOW)
    (alert,) = alerts(db, "mirror")
    assert alert["app"] == "invoice-plus" and alert["company"] == world.tenants[0].company.public_id
    assert alert["observed"] == {"members_delivered": 8, "share": 0.6667}
    assert alert["baseline"] == {"members": 12, "share_threshold": 0.5}


def test_mirror_through_the_broker_links_the_ledger_entries(
    settings: Settings, db: Database, world: World
) -> None:
    token = world.connect("invoice-plus", world.tenants[0])
    app = create_app(settings.model_copy(update={"monitor_policy": None}), db)
    app.state.monitor = Monitor(settings, db, MonitorPolicy(mirror_min_members=5))
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        pages = [client.get("/v1/customers", params={"limit": 6}, headers=headers)]
        cursor = pages[0].json()["next_cursor"]
        pages.append(client.get("/v1/customers", params={"limit": 6, "cursor": cursor}, headers=headers))
        assert [p.status_code for p in pages] == [200, 200]
        report = monitor_of(app).run_once()
    (alert,) = alerts(db, "mirror")
    assert alert["observed"]["members_delivered"] == 12 and report.raised == [alert["id"]]
    from appwarden.ledger.queries import list_entries

    assert sorted(alert["ledger_entries"]) == [e["seq"] for e in list_entries(db)["data"]]


def test_new_app_high_usage_fires_for_a_newly_listed_app_only(
    settings: Settings, db: Database, world: World
) -> None:
    with db.session() as session:
        old = session.get(App, world.apps["booking-go"][0])
        assert old is not None
        old.created_at = NOW - timedelta(days=30)
        for slug in ("invoice-plus", "loyalty-stamp"):
            new = session.get(App, world.apps[slug][0])
            assert new is not None
            new.created_at = NOW - timedelta(days=2)
    m = monitor(settings, db, new_app_people_per_day=15)
    deliver(m, world, "invoice-plus", 0, people(world, 0, 10), NOW - HOUR)
    deliver(m, world, "invoice-plus", 1, people(world, 1, 10), NOW - HOUR)  # 20 over two companies
    deliver(m, world, "booking-go", 0, people(world, 0, 12), NOW - HOUR)  # as many, but listed long ago
    deliver(m, world, "booking-go", 1, people(world, 1, 12), NOW - HOUR)
    deliver(m, world, "loyalty-stamp", 0, people(world, 0, 10), NOW - HOUR)  # new, but 10 people
    m.run_once(NOW)
    (alert,) = alerts(db, "new_app_high_usage")
    assert alert["app"] == "invoice-plus" and alert["company"] is None
    assert alert["observed"]["people_per_day"] == 20


def busy_days(m: Monitor, world: World, slug: str, days: int, tokyo_hours: range, per_hour: int) -> None:
    """``per_hour`` requests in each of the Tokyo office hours of the last ``days`` days."""
    for day in range(1, days + 1):
        for local in tokyo_hours:
            start = (NOW - timedelta(days=day)).replace(hour=(local - 9) % 24, minute=0)
            for i in range(per_hour):
                deliver(m, world, slug, 0, [], start + timedelta(seconds=i))


def test_unusual_hours_fires_on_a_night_burst_after_learning_office_hours(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings, db, unusual_hours_min_requests=50)
    busy_days(m, world, "invoice-plus", 8, range(10, 19), per_hour=20)
    busy_days(m, world, "booking-go", 2, range(10, 19), per_hour=20)  # still learning
    night = datetime(2026, 3, 9, 18, 0, tzinfo=UTC)  # 03:00 in Tokyo
    for slug in ("invoice-plus", "booking-go"):
        for i in range(60):
            deliver(m, world, slug, 0, [], night + timedelta(seconds=i))
    m.run_once(night + timedelta(hours=1, minutes=5))
    (alert,) = alerts(db, "unusual_hours")
    assert alert["app"] == "invoice-plus" and alert["observed"] == {"requests": 60, "local_hour": 3}
    assert alert["baseline"]["share_at_this_hour"] == 0.0


def test_unusual_hours_stays_quiet_on_a_busy_office_hour(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings, db, unusual_hours_min_requests=50)
    busy_days(m, world, "invoice-plus", 8, range(10, 19), per_hour=20)
    afternoon = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # 14:00 in Tokyo
    for i in range(200):
        deliver(m, world, "invoice-plus", 0, [], afternoon + timedelta(seconds=i))
    m.run_once(afternoon + timedelta(hours=1, minutes=5))
    assert alerts(db, "unusual_hours") == []


def test_probing_through_the_broker_counts_other_companies_ids_and_revoked_tokens(
    settings: Settings, db: Database, world: World
) -> None:
    token = world.connect("invoice-plus", world.tenants[0])
    honest = world.connect("booking-go", world.tenants[0])
    app = create_app(settings, db)
    app.state.monitor = Monitor(settings, db, MonitorPolicy(probing_refusals_per_hour=4))
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        for i in range(3):
            assert client.get(f"/v1/customers/cus_guess{i}", headers=headers).status_code == 404
        honest_headers = {"Authorization": f"Bearer {honest['access_token']}"}
        assert client.get("/v1/customers/cus_typo", headers=honest_headers).status_code == 404  # one slip
        with db.session() as session:  # the owner revoked every token (the honest one was used already)
            session.execute(update(Token).values(revoked_at=datetime.now(UTC)))
        assert client.get("/v1/customers", headers=headers).status_code == 401
        monitor_of(app).run_once()
    (alert,) = alerts(db)
    assert alert["detector"] == "probing" and alert["app"] == "invoice-plus"
    assert alert["observed"] == {"refused_calls": 4}


def probing_pattern(m: Monitor, world: World, at: datetime, n: int = 10) -> None:
    for _ in range(n):
        m.refused(world.apps["invoice-plus"][0], world.tenants[0].company.id, 404, at)


def test_a_finding_is_raised_once_however_often_the_run_sees_it(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings, db, probing_refusals_per_hour=10)
    probing_pattern(m, world, NOW)
    first = m.run_once(NOW)
    probing_pattern(m, world, NOW + timedelta(minutes=2))  # still probing, same hour
    second = m.run_once(NOW + timedelta(minutes=5))
    assert len(first.raised) == 1 and second.raised == [] and second.duplicates == 1
    assert len(alerts(db)) == 1
    with db.session() as session:
        raised = select(SecurityEvent.tag).where(SecurityEvent.tag.like("monitor:alert:%"))
        tags = list(session.scalars(raised))
    assert tags == ["monitor:alert:raised"]


def test_an_app_gets_at_most_its_daily_cap_of_alerts(settings: Settings, db: Database, world: World) -> None:
    m = monitor(settings, db, probing_refusals_per_hour=10, alerts_per_app_per_day=2)
    probing_pattern(m, world, NOW - HOUR)
    probing_pattern(m, world, NOW)
    m.run_once(NOW)
    probing_pattern(m, world, NOW + HOUR)  # a new hour: a new finding, but the day's cap is spent
    report = m.run_once(NOW + HOUR)
    assert report.capped == 1 and report.raised == []
    assert len(alerts(db)) == 2
    m.run_once(NOW + timedelta(days=1))  # next day: nothing left to find, nothing raised
    assert len(alerts(db)) == 2


def test_two_concurrent_runs_do_not_both_run_nor_double_raise(
    settings: Settings, db: Database, world: World
) -> None:
    workers = [monitor(settings, db, probing_refusals_per_hour=10) for _ in range(2)]
    for w in workers:
        probing_pattern(w, world, NOW, n=6)  # 12 between them: only their sum crosses the threshold
    start = threading.Barrier(2)
    reports: list[Any] = []

    def run(w: Monitor) -> None:
        start.wait()
        reports.append(w.run_once(NOW))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.ran for r in reports) == [False, True]
    assert all(r.folded == 1 for r in reports)  # both tallies folded, turn or not
    # The worker that ran may have folded before the other: the next interval's run sees the sum.
    later = workers[0].run_once(NOW + timedelta(minutes=1))
    assert len([*[i for r in reports for i in r.raised], *later.raised]) == 1
    assert len(alerts(db)) == 1


def test_a_policy_file_overrides_defaults_and_a_bad_one_stops_start_up(
    settings: Settings, db: Database, tmp_path: Any
) -> None:
    from appwarden.errors import InvalidInput
    from appwarden.monitor.policy import load_policy

    good = tmp_path / "monitor.toml"
    good.write_text("mirror_share = 0.8\nprobing_refusals_per_hour = 7\n")
    policy = load_policy(settings.model_copy(update={"monitor_policy": good}))
    assert policy.mirror_share == 0.8 and policy.probing_refusals_per_hour == 7
    bad = tmp_path / "bad.toml"
    bad.write_text("mirror_shar = 0.8\n")
    with pytest.raises(InvalidInput, match="mirror_shar"):
        create_app(settings.model_copy(update={"monitor_policy": bad}), db)
    bad.write_text("mirror_share = 3\n")
    with pytest.raises(InvalidInput, match="mirror_share"):
        load_policy(settings.model_copy(update={"monitor_policy": bad}))


def test_a_run_prunes_folded_hours_past_the_learning_days_and_keeps_the_rest(
    settings: Settings, db: Database, world: World
) -> None:
    """``monitor_hours`` does not grow for ever: a run deletes the hours no detector reads any more
    (older than the longest learning period and a day), and keeps every hour still read."""
    m = monitor(settings, db, baseline_learning_days=7, unusual_hours_learning_days=3)
    keep = retention(m.policy)  # 8 days: the baseline's week, the longer of the two, and a day
    assert keep == timedelta(days=8)
    old = NOW - keep - 3 * HOUR
    kept = NOW - keep + HOUR
    deliver(m, world, "invoice-plus", 0, people(world, 0, 3), old)
    deliver(m, world, "invoice-plus", 0, people(world, 0, 3), kept)
    deliver(m, world, "booking-go", 1, people(world, 1, 3), NOW - HOUR)
    report = m.run_once(NOW)
    assert report.ran and report.pruned == 1
    with db.session() as session:
        hours = sorted(session.scalars(select(DeliveryHour.hour)))
    assert hours == [hour_of(kept), hour_of(NOW - HOUR)]
    assert m.run_once(NOW + HOUR).pruned == 0
