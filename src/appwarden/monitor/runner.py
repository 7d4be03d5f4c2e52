"""The background run: fold this worker's tally, then — in one worker at a time — run the detectors.

Every worker calls :func:`run_once` each ``run_interval_seconds`` (:class:`MonitorLoop`). Folding is
additive and needs no turn. The detectors run under the row lock of ``monitor_runs`` (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so a worker that finds it taken skips instead of queueing; SQLite serialises
writers already), and a run that finds the last one younger than half an interval skips: N workers
mean one detector run per interval, not N. Deduplication (``alerts.dedup_key``) makes a finding raised
once even if two runs overlap anyway. After the detectors, every worker does the actions and deliveries
owed on alerts (``monitor.actions``, ``monitor.delivery``), each outbox row claimed before it is done.
Tests call ``run_once(..., now=...)`` with an injected clock.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import structlog
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.monitor import (
    actions,
    baseline,
    credentials,
    delivery,
    detectors,
    obligation_checks,
    probing,
    restricted,
)
from appwarden.monitor.declarations import DeclaredVolume, declared_volume_source
from appwarden.monitor.models import MonitorRun
from appwarden.monitor.policy import MonitorPolicy
from appwarden.monitor.quotas import Quotas
from appwarden.monitor.service import Outcome, raise_alert
from appwarden.monitor.tally import Tally

log = structlog.get_logger()
_runs = cast(Table, MonitorRun.__table__)
RUN_ID = 1
# This process's name in outbox claims (several workers on one host differ by pid and a random part).
WORKER = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunReport:
    """What one call of :func:`run_once` did."""

    folded: int = 0  # hour rows this worker's tally went into
    ran: bool = False  # whether this call ran the detectors (False: another worker's turn)
    raised: list[str] = field(default_factory=list)  # public ids of the alerts raised
    duplicates: int = 0
    capped: int = 0
    actions: list[str] = field(default_factory=list)  # outcomes of the alerts' actions done this call
    delivered: int = 0  # webhook and mail deliveries sent
    delivery_failures: int = 0  # deliveries that failed (retried by a later run)
    pruned: int = 0  # folded hours past their retention, deleted by this run
    restricted: list[str] = field(default_factory=list)  # apps restricted for attestations past grace


def run_once(
    db: Database,
    settings: Settings,
    policy: MonitorPolicy,
    tally: Tally,
    *,
    now: datetime | None = None,
    quotas: Quotas | None = None,
) -> RunReport:
    """Fold ``tally``, run every detector at ``now`` if it is this worker's turn, then do the actions
    and deliveries owed on alerts (any worker: each row is claimed first). ``quotas``: this worker's,
    told at once when an action changed the throttles."""
    now = now or utcnow()
    report = RunReport()
    with db.session() as session:
        report.folded = tally.fold(session, source_hours=policy.new_credential_hours)
    _ensure_run_row(db)
    with db.session() as session:
        if _take_turn(session, now, policy):
            report.ran = True
            for finding in _findings(session, settings, policy, now):
                outcome, alert = raise_alert(session, finding, cap=policy.alerts_per_app_per_day, now=now)
                if outcome is Outcome.RAISED and alert is not None:
                    report.raised.append(alert.public_id)
                elif outcome is Outcome.DUPLICATE:
                    report.duplicates += 1
                else:
                    report.capped += 1
            report.restricted = obligation_checks.restrict_past_grace(session, settings, policy, now)
            report.pruned = detectors.prune_hours(session, now, policy)
            session.execute(
                update(_runs).where(_runs.c.id == RUN_ID).values(last_run_at=now, runs=_runs.c.runs + 1)
            )
    # The alerts have committed: act on them first (a delivery then tells what was done), then deliver.
    report.actions = actions.act_on_due(db, settings, policy, worker=WORKER, now=now)
    if report.actions and quotas is not None:
        quotas.forget_throttles()
    report.delivered, report.delivery_failures = delivery.deliver_due(
        db, settings, policy, worker=WORKER, now=now
    )
    return report


def _ensure_run_row(db: Database) -> None:
    with db.engine.begin() as conn:
        ins = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
        conn.execute(ins(_runs).values(id=RUN_ID, runs=0).on_conflict_do_nothing(index_elements=["id"]))


def _take_turn(session: Session, now: datetime, policy: MonitorPolicy) -> bool:
    """Lock the run row (skipping if another worker holds it) unless the last run is too recent."""
    query = select(_runs.c.last_run_at).where(_runs.c.id == RUN_ID).with_for_update(skip_locked=True)
    row = session.execute(query).first()
    if row is None:  # locked by a run in progress elsewhere
        return False
    last = row.last_run_at  # aware UTC (the column's type reads it back so, SQLite included)
    min_gap = timedelta(seconds=policy.run_interval_seconds / 2)
    return last is None or not (last - min_gap < now < last + min_gap)


def read_history(
    session: Session, now: datetime, policy: MonitorPolicy
) -> tuple[list[detectors.Hour], detectors.Window]:
    """The run's one read of ``monitor_hours``: the learning days' counts (the longer of the baseline's
    and the hours of the day's, and the two hours being checked) with the last day's bitmaps, and
    the last day grouped for the detectors."""
    current = detectors.hour_of(now)
    days = max(policy.unusual_hours_learning_days, policy.baseline_learning_days)
    day_start = current - 23 * detectors.HOUR
    history = detectors.read_hours(
        session,
        current - timedelta(days=days, hours=2),
        current + detectors.HOUR,
        bitmaps_since=day_start,
    )
    return history, detectors.Window((h for h in history if h.hour >= day_start), now)


def _findings(
    session: Session, settings: Settings, policy: MonitorPolicy, now: datetime
) -> list[detectors.Finding]:
    history, window = read_history(session, now, policy)
    cache: dict[tuple[int, int], DeclaredVolume] = {}

    def declared(app_id: int, company_id: int) -> DeclaredVolume:
        key = (app_id, company_id)
        if key not in cache:
            cache[key] = declared_volume_source(session, app_id, company_id, settings)
        return cache[key]

    since = detectors.first_seen(session)
    return [
        *detectors.over_declaration(window, declared, policy),
        *baseline.over_baseline(baseline.field_hours(history), window, declared, since, policy),
        *detectors.mirror(session, window, policy, declared),
        *detectors.new_app_high_usage(session, window, policy),
        *credentials.new_credential_volume(session, window, declared, since, policy),
        *detectors.unusual_hours(window, history, since, policy),
        *probing.refusal_bursts(window, policy),
        *probing.late_calls(session, window, policy),
        *restricted.restricted_token_volume(session, window, declared, policy),
        *obligation_checks.attestation_overdue(session, settings, policy, now),
    ]


class MonitorLoop:
    """A daemon thread calling ``run`` every ``interval`` seconds until stopped (one per worker)."""

    def __init__(self, run: Callable[[], object], interval: float) -> None:
        self._run = run
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="appwarden-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._run()
            except Exception:  # a failed run is logged and retried next interval; the worker serves on
                log.exception("monitor run failed")
