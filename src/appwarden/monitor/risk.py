"""The risk score of each app: what harm its vendor could do with what it holds and may still take.

    score = sensitivity × people × audit × alerts × obligations

Each part is a factor with the numbers behind it (``parts``); docs/monitoring.md gives the formula and
why each weight is what it is. In short:

- ``sensitivity``: the weight of the most sensitive scope the app is approved for (raw identifying 1.0,
  masked 0.4, token 0.1, non-identifying 0.02, no customer field 0): what it may still take.
- ``people``: ``1 + log10(1 + raw + 0.1 × not_raw)`` over the distinct people the ledger says the app
  holds (``ledger.exposure.people_held``): a tenfold more people adds one, so the other parts still
  count; an app holding nobody keeps factor 1 (its scopes and audit still rank it).
- ``audit``: 2.0 when its audit is overdue (due at once counts), × 1.5 when it was never reviewed
  (grandfathered or not yet approved): nobody has checked the vendor's security.
- ``alerts``: ``1 + min(5, Σ open alerts × severity weight)`` (low 0.1, medium 0.25, high 0.5,
  critical 2.0: a canary contact is proof).
- ``obligations``: ``1 + min(2, 0.5 × overdue obligations)``, an overdue obligation being a company
  whose people the vendor still holds past the retention it accepted, or after the company's connection
  ended (``obligations.service.overdue_obligations``, from the ledger), or an erasure request delivered
  and unattested past its deadline (``obligations.service.overdue_attestation_counts``). Pass
  ``obligations=`` / ``attestations=`` to count otherwise.

The score is an answer to ``marketplace.facts.app_facts`` (:func:`risk_fact`), so every app list shows
it and is ordered by it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from appwarden.ledger.exposure import PeopleHeld, people_held
from appwarden.marketplace.scopes import PII_FIELDS, FieldScope, Mode, parse_scope
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.tiers import tier_of
from appwarden.monitor.policy import Severity
from appwarden.monitor.service import open_alert_counts
from appwarden.obligations.service import overdue_attestation_counts, overdue_obligations
from appwarden.screening.audits import Posture, postures

# What one person's field is worth to someone who would misuse it, by how the app may receive it.
MODE_WEIGHTS: dict[str, float] = {Mode.RAW: 1.0, Mode.MASKED: 0.4, Mode.TOKEN: 0.1}
NON_IDENTIFYING_WEIGHT = 0.02
NOT_RAW_PEOPLE_WEIGHT = 0.1  # a person held only masked or as tokens, against one held raw
OVERDUE_AUDIT = 2.0
UNREVIEWED = 1.5
SEVERITY_WEIGHTS: dict[str, float] = {
    Severity.LOW: 0.1,
    Severity.MEDIUM: 0.25,
    Severity.HIGH: 0.5,
    Severity.CRITICAL: 2.0,
}
ALERTS_CAP = 5.0
OBLIGATION_WEIGHT = 0.5
OBLIGATIONS_CAP = 2.0

# (session, app ids, now) -> {app id: overdue obligations}; apps left out have none.
ObligationSource = Callable[[Session, Collection[int], datetime], Mapping[int, int]]


@dataclass(frozen=True, slots=True)
class RiskScore:
    """An app's score and its parts (``{part: {"factor": …, the numbers behind it}}``)."""

    score: float
    parts: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "parts": self.parts}


def sensitivity(scopes: Sequence[str]) -> dict[str, Any]:
    """The sensitivity part of ``scopes`` (pure): the weight of the most sensitive customer-field scope."""
    weight, top = 0.0, None
    for scope in scopes:
        parsed = parse_scope(scope)
        if not isinstance(parsed, FieldScope):
            continue
        w = MODE_WEIGHTS[parsed.mode] if parsed.field in PII_FIELDS else NON_IDENTIFYING_WEIGHT
        if w > weight:
            weight, top = w, str(parsed)
    return {"factor": weight, "most_sensitive": top, "tier": tier_of(scopes).tier}


def people_part(held: PeopleHeld) -> dict[str, Any]:
    """The people part (pure): logarithmic in the people held, raw ones counting in full."""
    weighted = held.raw + NOT_RAW_PEOPLE_WEIGHT * held.not_raw
    return {"factor": round(1 + math.log10(1 + weighted), 4), "raw": held.raw, "not_raw": held.not_raw}


def audit_part(posture: Posture) -> dict[str, Any]:
    """The audit part (pure): overdue and never-reviewed multiply."""
    factor = (OVERDUE_AUDIT if posture.overdue else 1.0) * (1.0 if posture.reviewed else UNREVIEWED)
    return {
        "factor": factor,
        "reviewed": posture.reviewed,
        "grandfathered": posture.grandfathered,
        "audit_tier": posture.audit_tier,
        "due_at": posture.due_at.isoformat() if posture.due_at else None,
        "overdue": posture.overdue,
        "days_overdue": posture.days_overdue,
    }


def alerts_part(open_alerts: Mapping[str, int]) -> dict[str, Any]:
    """The alerts part (pure): the open alerts by severity, weighted, capped."""
    weighted = sum(SEVERITY_WEIGHTS.get(severity, 0.0) * n for severity, n in open_alerts.items())
    ordered = {s.value: open_alerts[s] for s in Severity if open_alerts.get(s)}
    return {"factor": round(1 + min(ALERTS_CAP, weighted), 4), "open": ordered}


def obligations_part(overdue: int, attestations_overdue: int = 0) -> dict[str, Any]:
    """The obligations part (pure): companies held past retention (``overdue``) and erasure requests
    unattested past their deadline (``attestations_overdue``) count alike."""
    owed = overdue + attestations_overdue
    return {
        "factor": 1 + min(OBLIGATIONS_CAP, OBLIGATION_WEIGHT * owed),
        "overdue": overdue,
        "attestations_overdue": attestations_overdue,
    }


def combine(parts: dict[str, dict[str, Any]]) -> RiskScore:
    """The score is the product of the parts' factors (pure), to two decimals."""
    return RiskScore(round(math.prod(float(p["factor"]) for p in parts.values()), 2), parts)


def risk_scores(
    session: Session,
    apps: Sequence[AppStanding],
    now: datetime,
    *,
    obligations: ObligationSource = overdue_obligations,
    attestations: ObligationSource = overdue_attestation_counts,
) -> dict[int, RiskScore]:
    """Each app's :class:`RiskScore` as of ``now``: five queries whatever the number of apps (the
    ledger's index, open audits, open alerts, obligations, overdue attestations)."""
    ids = [app.id for app in apps]
    held = people_held(session, ids)
    standing = postures(session, apps, now)
    alerts = open_alert_counts(session, ids)
    owed = obligations(session, ids, now)
    unattested = attestations(session, ids, now)
    return {
        app.id: combine(
            {
                "sensitivity": sensitivity([str(s) for s in app.approved_scopes]),
                "people": people_part(held[app.id]),
                "audit": audit_part(standing[app.id]),
                "alerts": alerts_part(alerts[app.id]),
                "obligations": obligations_part(owed.get(app.id, 0), unattested.get(app.id, 0)),
            }
        )
        for app in apps
    }


def risk_fact(session: Session, apps: Sequence[AppStanding], now: datetime) -> dict[int, dict[str, Any]]:
    """Each app's ``risk`` for its views: an answer to ``marketplace.facts.app_facts``, registered by
    ``appwarden.wiring``."""
    return {app_id: {"risk": score.to_dict()} for app_id, score in risk_scores(session, apps, now).items()}
