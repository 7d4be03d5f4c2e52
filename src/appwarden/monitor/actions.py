"""What an alert does, by policy: alert → throttle → restrict → kill (issue 12, point 3).

Each raised alert owes one ``action`` outbox row (``monitor.outbox``). The background run claims it after
the alert has committed and calls :func:`act`:

- in ``audit`` mode (the detector's, see ``MonitorPolicy.mode_of``) nothing is done to the app; a
  ``monitor:action:audited`` event says what active mode would have done, so an operator can read a
  week of audit before switching a detector on;
- in ``active`` mode the policy's first action for the detector and severity applies, escalated one step
  up the ladder (to at most ``escalation_ceiling``) when the app already has a standing action from the
  last ``escalate_within_hours`` and this alert is at least ``escalate_min_severity``. Standing means
  not reversed: a throttle not lifted, a restriction not relisted, a kill (never reversed).

The steps: **throttle** — ``monitor.throttles`` (``factor`` × the connection's quotas; the quotas see it
at once in this worker and within ``throttle_cache_seconds`` in the others); **restrict** — the
marketplace lifecycle's transition to ``restricted`` (``appwarden apps relist`` reverses it); **kill** —
the incident package's kill switch, which opens an incident and cuts the app off (irreversible: an
incident is closed, not undone). Each records a ``monitor:app:…`` event and its name on the alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import AppwardenError
from appwarden.events.service import EventTag, record
from appwarden.incident.killswitch import kill_switch
from appwarden.incident.revocation import RevocationSignal
from appwarden.marketplace.standing import AppStanding, standing_of, transition
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy
from appwarden.monitor import outbox, throttles
from appwarden.monitor.models import Alert, OutboxItem, Throttle
from appwarden.monitor.outbox import Channel
from appwarden.monitor.policy import LADDER, SEVERITY_ORDER, Action, Detector, Mode, MonitorPolicy, Severity

log = structlog.get_logger()
ACTOR = "monitor"


@dataclass(frozen=True)
class Decision:
    """What the policy says an alert does, and why (shown in events and the outbox row)."""

    mode: Mode
    action: Action
    reason: str


def decide(policy: MonitorPolicy, detector: Detector, severity: Severity, prior: Action | None) -> Decision:
    """The step for an alert of ``detector`` at ``severity`` on an app whose strongest standing action
    from the escalation window is ``prior`` (None: none). Pure."""
    mode = policy.mode_of(detector)
    base = policy.first_action(detector, severity)
    why = f"{detector} {severity}: {base}"
    step = base
    if (
        prior is not None
        and prior is not Action.ALERT
        and SEVERITY_ORDER.index(severity) >= SEVERITY_ORDER.index(policy.escalate_min_severity)
    ):
        up = LADDER[min(LADDER.index(prior) + 1, len(LADDER) - 1)]
        up = LADDER[min(LADDER.index(up), LADDER.index(policy.escalation_ceiling))]
        if LADDER.index(up) > LADDER.index(base):
            step = up
            why = (
                f"{why}, escalated to {up} after a standing {prior} within {policy.escalate_within_hours:g} h"
            )
    return Decision(mode, step, why)


def standing_action(session: Session, alert: Alert, policy: MonitorPolicy, app: AppStanding) -> Action | None:
    """The strongest action still in force from the app's other alerts in the escalation window."""
    since = alert.raised_at - timedelta(hours=policy.escalate_within_hours)
    rows = session.execute(
        select(Alert.id, Alert.action).where(
            Alert.app_id == alert.app_id,
            Alert.id != alert.id,
            Alert.raised_at >= since,
            Alert.raised_at <= alert.raised_at,
            Alert.action != Action.ALERT.value,
        )
    ).all()
    lifted = set(
        session.scalars(
            select(Throttle.alert_id).where(Throttle.app_id == alert.app_id, Throttle.lifted_at.is_not(None))
        )
    )
    best: Action | None = None
    for alert_id, name in rows:
        action = Action(name)
        if action is Action.THROTTLE and alert_id in lifted:
            continue  # an operator said the throttle was wrong: it does not count against the app
        if action is Action.RESTRICT and app.listing_state != LifecycleState.RESTRICTED.value:
            continue  # relisted since (or delisted: a kill, which counts through its own alert)
        if best is None or LADDER.index(action) > LADDER.index(best):
            best = action
    return best


def act(db: Database, settings: Settings, policy: MonitorPolicy, item_id: int, *, now: datetime) -> str:
    """Do the action owed by the claimed outbox row ``item_id``; return its outcome (also stored).

    Throttle and restrict are applied in one transaction with the row's completion. The kill switch
    commits on its own (it opens the incident and cuts the app off in its transaction), so the row is
    completed after it; should that fail, the retry finds the incident open and completes the row."""
    with db.session() as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        alert = session.get(Alert, item.alert_id)
        assert alert is not None
        app = standing_of(session, alert.app_id)
        decision = decide(
            policy,
            Detector(alert.detector),
            Severity(alert.severity),
            standing_action(session, alert, policy, app),
        )
        if decision.mode is Mode.AUDIT or decision.action is Action.ALERT:
            if decision.mode is Mode.AUDIT and decision.action is not Action.ALERT:
                record(
                    session,
                    EventTag.MONITOR_ACTION_AUDITED,
                    actor=ACTOR,
                    app_id=alert.app_id,
                    company_id=alert.company_id,
                    alert=alert.public_id,
                    would=decision.action.value,
                    reason=decision.reason,
                )
            outcome = f"{decision.mode}: alert only ({decision.reason})"
            outbox.finish(session, item, now=now, outcome=outcome)
            return outcome
        if decision.action is Action.THROTTLE:
            row = throttles.throttle(
                session,
                alert,
                factor=policy.throttle_factor,
                hours=policy.throttle_hours,
                actor=ACTOR,
                now=now,
            )
            until = row.expires_at.isoformat()
            outcome = f"throttled to {policy.throttle_factor:g}× until {until} ({row.public_id})"
        elif decision.action is Action.RESTRICT:
            outcome = _restrict(session, alert, app, policy, decision, now)
        else:
            slug, detector, severity = app.slug, alert.detector, alert.severity
            outcome = ""
    if decision.action is not Action.KILL:
        _done(db, item_id, alert_id=alert.id, action=decision.action, outcome=outcome, now=now)
        return outcome
    reason = f"monitor: alert {alert.public_id} ({detector}, {severity}): {decision.reason}"
    try:
        result = kill_switch(db, apps=[slug], reason=reason, actor=ACTOR, signal=RevocationSignal(settings))
        incident, opened = result.incident, "opened"
    except AppwardenError as exc:
        if exc.code != "incident_already_open":
            raise
        incident, opened = str(exc.extra.get("incident")), "already open"
    outcome = f"killed: incident {incident} {opened}"
    with db.session() as session:
        record(
            session,
            EventTag.MONITOR_APP_KILLED,
            actor=ACTOR,
            app_id=alert.app_id,
            company_id=alert.company_id,
            alert=alert.public_id,
            incident=incident,
            reason=decision.reason,
        )
    _done(db, item_id, alert_id=alert.id, action=Action.KILL, outcome=outcome, now=now)
    return outcome


def _restrict(
    session: Session, alert: Alert, app: AppStanding, policy: MonitorPolicy, decision: Decision, now: datetime
) -> str:
    previous = app.listing_state
    if previous == LifecycleState.DELISTED.value:
        return "not restricted: the app is delisted already"
    try:
        transition(
            session,
            app.id,
            LifecycleState.RESTRICTED,
            actor=ACTOR,
            reason=f"monitor: alert {alert.public_id} ({alert.detector}, {alert.severity})",
            now=now,
            policy=RestrictedPolicy(policy.restrict_policy),
        )
    except AppwardenError as exc:  # e.g. a draft app cannot be restricted: the alert stands alone
        return f"not restricted: {exc.detail}"
    record(
        session,
        EventTag.MONITOR_APP_RESTRICTED,
        actor=ACTOR,
        app_id=alert.app_id,
        company_id=alert.company_id,
        alert=alert.public_id,
        previous=previous,
        policy=policy.restrict_policy,
        reason=decision.reason,
    )
    return f"restricted ({policy.restrict_policy}); was {previous}"


def _done(db: Database, item_id: int, *, alert_id: int, action: Action, outcome: str, now: datetime) -> None:
    with db.session() as session:
        item = session.get(OutboxItem, item_id)
        alert = session.get(Alert, alert_id)
        assert item is not None and alert is not None
        if not outcome.startswith("not "):
            alert.action = action.value
        outbox.finish(session, item, now=now, outcome=outcome)


def act_on_due(
    db: Database, settings: Settings, policy: MonitorPolicy, *, worker: str, now: datetime
) -> list[str]:
    """Claim and do every due action row; a failure is logged and retried by a later run."""
    outcomes = []
    for item_id in outbox.claim(db, [Channel.ACTION], worker=worker, now=now):
        try:
            outcomes.append(act(db, settings, policy, item_id, now=now))
        except Exception as exc:  # retried: the alert stands, its action is owed still
            log.exception("monitor action failed; retried by a later run", item=item_id)
            with db.session() as session:
                item = session.get(OutboxItem, item_id)
                if item is not None:
                    outbox.fail(
                        session,
                        item,
                        now=now,
                        error=type(exc).__name__,
                        interval=policy.run_interval_seconds,
                        cap=policy.delivery_backoff_max_seconds,
                    )
    return outcomes
