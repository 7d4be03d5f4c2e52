"""over_baseline, new_credential_volume, the listing date of new_app_high_usage and the full-sync exemption
of mirror: each fires on its synthetic pattern and stays quiet on normal traffic (injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.marketplace import service as marketplace
from appwarden.marketplace import versions
from appwarden.marketplace.models import App
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.monitor.models import Alert, SourceSighting
from appwarden.monitor.policy import MonitorPolicy
from appwarden.monitor.runtime import Monitor, monitor_of
from appwarden.monitor.service import describe
from appwarden.monitor.sources import network_of
from appwarden.oauth.models import Token
from conftest import World
from screening_helpers import new_vendor, prepare

NOW = datetime(2026, 3, 10, 5, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def monitor(settings: Settings, db: Database, **policy: Any) -> Monitor:
    return Monitor(settings, db, MonitorPolicy(**policy))


def alerts(db: Database, detector: str) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(Alert).where(Alert.detector == detector).order_by(Alert.id)
        return [view["alert"] for view in describe(session, list(session.scalars(query)))]


def ids(start: int, n: int) -> list[int]:
    """Synthetic customer ids: the detectors count people, they never read a customer row."""
    return list(range(start, start + n))


def pair(world: World, slug: str, company: int) -> tuple[int, int]:
    return world.apps[slug][0], world.tenants[company].company.id


def hourly(m: Monitor, world: World, slug: str, company: int, days: int, per_hour: int) -> None:
    """``per_hour`` people (name and phone, one id list) in every hour of the ``days`` before NOW's hour."""
    app_id, company_id = pair(world, slug, company)
    start = NOW.replace(minute=0) - HOUR - days * DAY
    for i in range(days * 24):
        people = ids(i * per_hour, per_hour)
        m.delivered(app_id, company_id, {("name", "raw"): people, ("phone", "raw"): people}, start + i * HOUR)


# --- over_baseline --------------------------------------------------------------------------------


def test_over_baseline_fires_on_the_field_above_its_learned_hours_and_ignores_one_odd_hour(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings, db, baseline_min_people=5)
    hourly(m, world, "invoice-plus", 0, 8, per_hour=10)
    hourly(m, world, "booking-go", 0, 8, per_hour=10)
    app_id, company_id = pair(world, "invoice-plus", 0)
    # One busy hour in the learning days (a re-sync): the 0.99 quantile skips it, a maximum would not.
    m.delivered(app_id, company_id, {("phone", "raw"): ids(50_000, 40)}, NOW - 3 * DAY)
    now_hour = NOW.replace(minute=0)
    m.delivered(app_id, company_id, {("name", "raw"): ids(0, 10), ("phone", "raw"): ids(0, 100)}, now_hour)
    booking_app, booking_company = pair(world, "booking-go", 0)
    m.delivered(booking_app, booking_company, {("phone", "masked"): ids(0, 25)}, now_hour)  # busy, normal
    m.run_once(NOW)
    (alert,) = alerts(db, "over_baseline")
    assert alert["app"] == "invoice-plus" and alert["company"] == world.tenants[0].company.public_id
    assert alert["observed"] == {"people_per_hour": {"phone": 100}}  # name stayed at its usual 10
    assert alert["baseline"]["source"] == "learned"
    assert alert["baseline"]["fields"] == {"phone": {"people_per_hour": 30, "quantile_people": 10}}


def test_over_baseline_floor_keeps_a_quiet_apps_first_busy_hour_quiet(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings, db)  # the default floor, 500 people per field per hour
    hourly(m, world, "invoice-plus", 0, 8, per_hour=2)
    app_id, company_id = pair(world, "invoice-plus", 0)
    m.delivered(app_id, company_id, {("name", "raw"): ids(0, 300)}, NOW)  # 150× its usual, under 500
    m.run_once(NOW)
    assert alerts(db, "over_baseline") == []


def test_while_learning_the_declared_peak_is_the_baseline(
    settings: Settings, db: Database, world: World
) -> None:
    m = monitor(settings.model_copy(update={"declared_people_per_day_peak": 60}), db, baseline_min_people=5)
    hourly(m, world, "invoice-plus", 0, 3, per_hour=10)  # 3 days of 7: still learning
    hourly(m, world, "booking-go", 0, 3, per_hour=10)
    now_hour = NOW.replace(minute=0)
    app_id, company_id = pair(world, "invoice-plus", 0)
    m.delivered(app_id, company_id, {("phone", "raw"): ids(0, 100)}, now_hour)  # above the peak of 60
    booking_app, booking_company = pair(world, "booking-go", 0)
    m.delivered(booking_app, booking_company, {("phone", "masked"): ids(0, 50)}, now_hour)  # 5× usual, < 60
    m.run_once(NOW)
    (alert,) = alerts(db, "over_baseline")
    assert alert["app"] == "invoice-plus" and alert["observed"] == {"people_per_hour": {"phone": 100}}
    assert alert["baseline"]["source"] == "declaration"
    assert alert["baseline"]["people_per_day_peak"] == 60 and alert["baseline"]["declared"] is False


def test_field_people_are_distinct_across_workers(settings: Settings, db: Database, world: World) -> None:
    from appwarden.monitor.models import DeliveryHour

    workers = [monitor(settings, db) for _ in range(2)]
    app_id, company_id = pair(world, "invoice-plus", 0)
    workers[0].delivered(app_id, company_id, {("name", "raw"): ids(0, 10)}, NOW)
    workers[1].delivered(app_id, company_id, {("name", "raw"): ids(5, 10), ("phone", "raw"): ids(0, 3)}, NOW)
    for w in workers:
        w.run_once(NOW)
    with db.session() as session:
        (row,) = session.scalars(select(DeliveryHour))
        assert row.field_people == {"name": 15, "phone": 3}


# --- new_credential_volume ------------------------------------------------------------------------


def token_id(db: Database, token: dict[str, Any]) -> int:
    from appwarden.digests import token_hash

    with db.session() as session:
        found = session.scalar(
            select(Token.id).where(Token.access_token_hash == token_hash(token["access_token"]))
        )
        assert found is not None
        return found


def test_network_prefixes_keep_no_address() -> None:
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_of("::ffff:203.0.113.77") == "203.0.113.0/24"
    assert network_of("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert network_of("testclient") is None and network_of(None) is None


def test_a_new_network_or_grant_on_an_established_connection_followed_by_volume_fires(
    settings: Settings, db: Database, world: World
) -> None:
    old = world.connect("invoice-plus", world.tenants[0])
    new_grant = world.connect("invoice-plus", world.tenants[0])  # a second authorisation: a new grant
    fresh = world.connect("loyalty-stamp", world.tenants[0])
    m = monitor(settings, db, new_credential_people=20)
    app_id, company_id = pair(world, "invoice-plus", 0)
    old_id, new_id = token_id(db, old), token_id(db, new_grant)

    def take(token: int, client: str, n: int, at: datetime, app: int = app_id) -> None:
        m.delivered(app, company_id, {("name", "raw"): ids(0, n)}, at, token_id=token, client=client)

    take(old_id, "198.51.100.20", 5, NOW - 3 * DAY)  # the connection as it has always been
    take(old_id, "198.51.100.21", 30, NOW - 2 * HOUR)  # same /24, same grant: nothing new
    take(old_id, "203.0.113.7", 30, NOW - 2 * HOUR)  # a network never seen for this connection
    take(new_id, "198.51.100.20", 30, NOW - HOUR)  # a grant never seen
    # A brand-new connection's first grant and network are the connection itself: not this detector's.
    take(token_id(db, fresh), "192.0.2.1", 30, NOW - HOUR, app=world.apps["loyalty-stamp"][0])
    m.run_once(NOW)
    found = {
        (a["observed"]["kind"], a["observed"]["source"][:6]): a for a in alerts(db, "new_credential_volume")
    }
    assert set(found) == {("network", "203.0."), ("credential", "grant:")}
    network = found[("network", "203.0.")]
    assert network["app"] == "invoice-plus" and network["observed"]["source"] == "203.0.113.0/24"
    assert network["observed"]["people"] == 30 and network["baseline"]["people_threshold"] == 20
    with db.session() as session:
        keys = list(session.scalars(select(SourceSighting.key)))
        families = list(session.scalars(select(Token.family_id)))
    assert not any(f in k or k in f for k in keys for f in families)  # the grant is hashed
    assert not any(str(old["access_token"]) in k for k in keys)
    assert "198.51.100.0/24" in keys and "198.51.100.20" not in keys  # the prefix, never the address


def test_only_a_sources_first_hours_count_toward_its_volume(
    settings: Settings, db: Database, world: World
) -> None:
    token = token_id(db, world.connect("invoice-plus", world.tenants[0]))
    m = monitor(settings, db, new_credential_people=20, new_credential_hours=24)
    app_id, company_id = pair(world, "invoice-plus", 0)
    m.delivered(
        app_id, company_id, {("name", "raw"): ids(0, 5)}, NOW - 5 * DAY, token_id=token, client="198.51.100.1"
    )
    m.run_once(NOW - 5 * DAY)
    m.delivered(
        app_id, company_id, {("name", "raw"): ids(0, 15)}, NOW - 3 * DAY, token_id=token, client="203.0.113.1"
    )
    m.run_once(NOW - 3 * DAY)
    m.delivered(
        app_id,
        company_id,
        {("name", "raw"): ids(100, 15)},
        NOW - 2 * DAY + HOUR,
        token_id=token,
        client="203.0.113.1",
    )
    m.run_once(NOW)
    with db.session() as session:
        row = session.scalar(select(SourceSighting).where(SourceSighting.key == "203.0.113.0/24"))
        assert row is not None and row.first_seen_at == NOW - 3 * DAY
    from pyroaring import BitMap

    assert len(BitMap.deserialize(row.people)) == 15  # 30 in all, but 15 after its first day
    assert alerts(db, "new_credential_volume") == []


def test_the_broker_notes_the_grant_and_the_client_network(
    settings: Settings, db: Database, world: World
) -> None:
    token = world.connect("invoice-plus", world.tenants[0])
    app = create_app(settings, db)
    app.state.monitor = Monitor(settings, db, MonitorPolicy())
    with TestClient(app, client=("203.0.113.9", 40000)) as client:
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.get("/v1/customers", params={"limit": 5}, headers=headers).status_code == 200
        monitor_of(app).run_once()
    with db.session() as session:
        rows = {r.kind: r for r in session.scalars(select(SourceSighting))}
    assert set(rows) == {"credential", "network"} and rows["network"].key == "203.0.113.0/24"
    from pyroaring import BitMap

    assert len(BitMap.deserialize(rows["credential"].people)) == 5


# --- new_app_high_usage: the listing date ---------------------------------------------------------


def list_at(db: Database, slug: str, at: datetime, *, relist_at: datetime | None = None) -> None:
    with db.session() as session:
        app = marketplace.get_app(session, slug)
        app.listing_state = LifecycleState.IN_REVIEW.value
        app.created_at = NOW - 60 * DAY  # registered long ago either way
        marketplace.transition(session, app, LifecycleState.LISTED, actor="reviewer", now=at)
        if relist_at is not None:
            marketplace.transition(session, app, LifecycleState.RESTRICTED, actor="operator", now=relist_at)
            marketplace.transition(session, app, LifecycleState.LISTED, actor="operator", now=relist_at)


def test_new_app_high_usage_counts_from_the_listing_not_the_registration(
    settings: Settings, db: Database, world: World
) -> None:
    list_at(db, "invoice-plus", NOW - 2 * DAY)  # registered 60 days ago, listed 2 days ago
    list_at(db, "booking-go", NOW - 30 * DAY, relist_at=NOW - DAY)  # a relist is not a new listing
    with db.session() as session:
        old = session.get(App, world.apps["loyalty-stamp"][0])
        assert old is not None
        old.created_at = NOW - 30 * DAY  # seeded as listed, no event: counts from its registration
    m = monitor(settings, db, new_app_people_per_day=15)
    for slug in ("invoice-plus", "booking-go", "loyalty-stamp"):
        m.delivered(*pair(world, slug, 0), {("name", "raw"): ids(0, 20)}, NOW - HOUR)
    m.run_once(NOW)
    (alert,) = alerts(db, "new_app_high_usage")
    assert alert["app"] == "invoice-plus" and alert["observed"]["listed_at"] == (NOW - 2 * DAY).isoformat()


# --- mirror: approved full syncs ------------------------------------------------------------------


def declare(db: Database, slug: str, *, full_sync: bool, approve: bool) -> None:
    with db.session() as session:
        app = marketplace.get_app(session, slug)
        version = versions.new_version(session, app, actor="vendor")
        figures = {"average": 1_000, "peak": 100_000}
        volume = {"people_per_day": figures, "requests_per_minute": figures, "full_sync": full_sync}
        versions.declare_volume(version, volume)
        if approve:
            scopes = list(app.approved_scopes)
            marketplace.put_version_in_force(session, app, version, scopes, actor="reviewer", now=utcnow())


def test_mirror_exempts_an_approved_full_sync_and_nothing_else(
    settings: Settings, db: Database, world: World
) -> None:
    declare(db, "invoice-plus", full_sync=True, approve=True)
    declare(db, "booking-go", full_sync=True, approve=False)  # declared, not approved: not in force
    declare(db, "loyalty-stamp", full_sync=False, approve=True)
    m = monitor(settings, db, mirror_min_members=5)
    for slug in ("invoice-plus", "booking-go", "loyalty-stamp"):
        members = [c.id for c in world.tenants[0].customers]
        m.delivered(*pair(world, slug, 0), {("name", "raw"): members}, NOW - HOUR)
    m.run_once(NOW)
    assert sorted(a["app"] for a in alerts(db, "mirror")) == ["booking-go", "loyalty-stamp"]


def test_the_vendor_declares_full_sync_and_reviewers_see_it(client: TestClient, db: Database) -> None:
    vendor = new_vendor(client, db)
    prepare(vendor, "sync-pos", ["customers.name:raw"], submit=False)
    figures = {"average": 10, "peak": 50}
    body: dict[str, Any] = {"people_per_day": figures, "requests_per_minute": figures, "full_sync": "yes"}
    assert vendor.put("/vendor/apps/sync-pos/volume", json=body).status_code == 422
    body["full_sync"] = True
    assert vendor.put("/vendor/apps/sync-pos/volume", json=body).status_code == 200
    assert vendor.get("/vendor/apps/sync-pos").json()["version"]["volume"]["full_sync"] is True
    del body["full_sync"]
    assert vendor.put("/vendor/apps/sync-pos/volume", json=body).status_code == 200
    assert "full_sync" not in vendor.get("/vendor/apps/sync-pos").json()["version"]["volume"]


@pytest.mark.parametrize("bad", [{"baseline_quantile": 0.2}, {"new_credential_hours": 0}])
def test_bad_policy_values_are_refused(bad: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        MonitorPolicy(**bad)
