"""``probing``: an app feeling for what it may not have, or still calling when it may not.

Three patterns, one detector id (``observed["pattern"]`` says which):

- ``refusals``: a burst of refused calls (401, 403, 404: other companies' ids, revoked or expired
  tokens) by one app × company in one hour (:func:`refusal_bursts`, over the folded hours);
- ``after_revocation`` / ``after_kill``: calls presenting a revoked token, or of an app the kill switch
  delisted, counted apart on the broker's auth path (``broker.auth``) and alerted on the first few in
  an hour (:func:`late_calls`): an app told by a 401 or 403 that it is done should stop, so a handful is
  a client that ignores it (or a copy of its tokens elsewhere);
- ``token_reuse``: a rotated refresh token (or a used authorization code) presented again at the token
  endpoint. ``oauth`` refuses it and revokes the whole grant family (RFC 9700 §4.14.2) and announces it
  (``oauth.service.token_reused``, wired by ``appwarden.wiring``); :func:`token_reused` raises the alert
  at once, in the token endpoint's transaction: one reuse proves a second holder of the grant.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.config import get_settings
from appwarden.monitor.detectors import HOUR, Window
from appwarden.monitor.models import DeliveryHour
from appwarden.monitor.policy import Detector, MonitorPolicy, Severity, load_policy
from appwarden.monitor.service import Finding, raise_alert
from appwarden.monitor.tally import LateCall
from appwarden.oauth.service import TokenReuse


def refusal_bursts(window: Window, policy: MonitorPolicy) -> list[Finding]:
    """At least ``probing_refusals_per_hour`` refused calls (revoked or expired tokens, 403s, other
    companies' ids) by one app × company in one hour; the current hour counts as it fills."""
    findings = []
    for (app_id, company_id), hours in window.by_pair.items():
        for h in hours:
            if h.hour >= window.current - HOUR and h.refused >= policy.probing_refusals_per_hour:
                findings.append(
                    Finding(
                        Detector.PROBING,
                        Severity.HIGH,
                        app_id,
                        company_id,
                        observed={"refused_calls": h.refused},
                        baseline={"refused_calls_per_hour_threshold": policy.probing_refusals_per_hour},
                        window_start=h.hour,
                        window_end=h.hour + HOUR,
                    )
                )
    return findings


def late_calls(session: Session, window: Window, policy: MonitorPolicy) -> list[Finding]:
    """At least ``probing_after_revocation_per_hour`` calls with a revoked token, or
    ``probing_after_kill_per_hour`` calls of a killed app, by one app × company in the last complete
    or the current hour. One alert per kind, pair and hour."""
    since = window.current - HOUR
    rows = session.execute(
        select(DeliveryHour.app_id, DeliveryHour.company_id, DeliveryHour.hour)
        .add_columns(DeliveryHour.after_revocation, DeliveryHour.after_kill)
        .where(DeliveryHour.hour >= since, DeliveryHour.hour <= window.current)
        .where((DeliveryHour.after_revocation > 0) | (DeliveryHour.after_kill > 0))
        .order_by(DeliveryHour.app_id, DeliveryHour.company_id, DeliveryHour.hour)
    )
    thresholds = {
        LateCall.AFTER_REVOCATION: (policy.probing_after_revocation_per_hour, Severity.MEDIUM),
        LateCall.AFTER_KILL: (policy.probing_after_kill_per_hour, Severity.HIGH),
    }
    findings = []
    for app_id, company_id, hour, after_revocation, after_kill in rows:
        counts = {LateCall.AFTER_REVOCATION: after_revocation, LateCall.AFTER_KILL: after_kill}
        for kind, calls in counts.items():
            threshold, severity = thresholds[kind]
            if calls >= threshold:
                findings.append(
                    Finding(
                        Detector.PROBING,
                        severity,
                        app_id,
                        company_id,
                        observed={"pattern": kind.value, "calls": calls},
                        baseline={"calls_per_hour_threshold": threshold, "expected_calls": 0},
                        window_start=hour,
                        window_end=hour + HOUR,
                        dedup_window=f"{kind.value}:{_iso(hour)}",
                        ledger_entries=[],  # refused calls deliver nothing: no ledger entry behind them
                    )
                )
    return findings


def token_reused(session: Session, reuse: TokenReuse) -> None:
    """Raise the ``probing`` alert for a refused token reuse (the answer to ``oauth`` ``token reused``),
    in the token endpoint's transaction. One alert per grant family: the family is revoked already, so
    a second replay of it is the same finding."""
    policy = load_policy(get_settings())
    finding = Finding(
        Detector.PROBING,
        Severity.HIGH,
        reuse.app_id,
        reuse.company_id,
        observed={"pattern": "token_reuse", "kind": reuse.kind, "tokens_revoked": reuse.tokens_revoked},
        baseline={"expected_reuses": 0},
        window_start=reuse.at,
        window_end=reuse.at,
        dedup_window=f"reuse:{reuse.family}",
        ledger_entries=[],
    )
    raise_alert(session, finding, cap=policy.alerts_per_app_per_day, actor="oauth", now=reuse.at)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
