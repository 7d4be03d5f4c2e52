"""The vendor obligations' detectors (issue 14): ``attestation_overdue`` and ``erasure_contradicted``.

- ``attestation_overdue``: a delivered erasure request past its attestation deadline without an
  attestation (``obligations.attestation.overdue``), raised once per request at the policy's
  ``attestation_overdue_severity``, by the background run. Past the deadline plus the grace period the
  same run restricts the app (:func:`restrict_past_grace`) whatever the detector's mode: the vendor
  accepted the deadline at review, so it is an obligation enforced, not a statistic acted upon.
- ``erasure_contradicted`` (high): a canary the vendor attested erased — it was among the request's
  people — was contacted after the attestation (:func:`contact_contradicts`, called from the canary
  hook ``monitor.canary``), or turned up in an attributed dump (:func:`dump_canaries_found`, the answer
  to ``attribution.service.dump_canaries_found``). The evidence names the canary (its public id), the
  attestation and when it was made, and the contact or the dump. A contact before the attestation is
  an ordinary ``canary_contact`` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from appwarden.attribution.service import DumpCanaries
from appwarden.canary.alerts import Contact
from appwarden.canary.lookup import issued_canaries
from appwarden.config import Settings, get_settings
from appwarden.errors import Conflict
from appwarden.marketplace import standing
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy
from appwarden.monitor.policy import Detector, MonitorPolicy, Severity, load_policy
from appwarden.monitor.service import Finding, raise_alert
from appwarden.obligations.attestation import AttestedScope, attested_scopes, overdue
from appwarden.platform.directory import customer_cards

ACTOR = "monitor-obligations"


def attestation_overdue(
    session: Session, settings: Settings, policy: MonitorPolicy, now: datetime
) -> list[Finding]:
    """One finding per delivered erasure request past its attestation deadline, unattested."""
    return [
        Finding(
            Detector.ATTESTATION_OVERDUE,
            Severity(policy.attestation_overdue_severity),
            o.app_id,
            o.company_id,
            observed={
                "request": o.request,
                "topic": o.topic,
                "delivered_at": o.delivered_at.isoformat(),
                "days_overdue": o.days_overdue(now),
                "restrict_at": o.restrict_at.isoformat(),
            },
            baseline={
                "deadline": o.deadline.isoformat(),
                "deadline_days": settings.attestation_deadline_days,
            },
            window_start=o.deadline,
            window_end=now,
            # Raised once per request, however many runs find it still overdue.
            dedup_window=f"request:{o.request}",
            ledger_entries=[],
        )
        for o in overdue(session, settings, now)
    ]


def restrict_past_grace(
    session: Session, settings: Settings, policy: MonitorPolicy, now: datetime
) -> list[str]:
    """Restrict every listed app with an erasure request unattested past its deadline plus the grace
    period; the reason names the overdue requests. Returns the slugs restricted now."""
    late: dict[int, list[str]] = {}
    for o in overdue(session, settings, now):
        if now >= o.restrict_at:
            late.setdefault(o.app_id, []).append(o.request)
    restricted: list[str] = []
    for app_id, requests in sorted(late.items()):
        app = standing.standing_of(session, app_id)
        if app.listing_state != LifecycleState.LISTED:
            continue  # already restricted, delisted or not listed: nothing to take away here
        reason = (
            f"erasure attestation overdue past the {settings.attestation_grace_days}-day grace period: "
            + ", ".join(requests)
        )
        try:
            standing.transition(
                session,
                app_id,
                LifecycleState.RESTRICTED,
                actor=ACTOR,
                reason=reason,
                now=now,
                policy=RestrictedPolicy(policy.restrict_policy),
            )
        except Conflict:
            continue
        restricted.append(app.slug)
    return restricted


def _covering(scopes: list[AttestedScope], public_id: str, before: datetime) -> AttestedScope | None:
    """The first attestation made at or before ``before`` whose scope names the customer."""
    for scope in scopes:
        if public_id in scope.customers and scope.attested_at <= before:
            return scope
    return None


def _evidence(scope: AttestedScope) -> dict[str, Any]:
    return {
        "attestation": scope.attestation,
        "request": scope.request,
        "topic": scope.topic,
        "attested_at": scope.attested_at.isoformat(),
        "erased_at": scope.erased_at.isoformat(),
    }


def contact_contradicts(session: Session, contact: Contact) -> Finding | None:
    """The ``erasure_contradicted`` finding of a canary contact after an attestation covering the
    canary, or None (no attestation yet covers it: an ordinary ``canary_contact``)."""
    card = customer_cards(session, [contact.canary_customer_id]).get(contact.canary_customer_id)
    if card is None:
        return None
    scope = _covering(attested_scopes(session, contact.app_id), card.public_id, contact.received_at)
    if scope is None:
        return None
    return Finding(
        Detector.ERASURE_CONTRADICTED,
        Severity.HIGH,
        contact.app_id,
        contact.company_id,
        observed={
            "canary": card.public_id,
            "canary_alert": contact.alert,
            "channel": contact.channel,
            "kind": contact.kind,
            "contacted_at": contact.received_at.isoformat(),
        },
        baseline=_evidence(scope),
        window_start=scope.attested_at,
        window_end=contact.received_at,
        dedup_window=f"{scope.attestation}:{card.public_id}:{contact.received_at.date().isoformat()}",
        ledger_entries=[],
    )


def dump_findings(session: Session, found: DumpCanaries) -> list[Finding]:
    """One ``erasure_contradicted`` finding per attestation contradicted by canaries in the dump."""
    issued = issued_canaries(session, found.customer_ids)
    cards = customer_cards(session, [c.customer_id for c in issued])
    by_scope: dict[tuple[int, str], tuple[AttestedScope, int | None, list[str]]] = {}
    scopes_of: dict[int, list[AttestedScope]] = {}
    for canary in issued:
        card = cards.get(canary.customer_id)
        if card is None:
            continue
        if canary.app_id not in scopes_of:
            scopes_of[canary.app_id] = attested_scopes(session, canary.app_id)
        scope = _covering(scopes_of[canary.app_id], card.public_id, found.found_at)
        if scope is None:
            continue
        entry = by_scope.setdefault((canary.app_id, scope.attestation), (scope, canary.company_id, []))
        entry[2].append(card.public_id)
    return [
        Finding(
            Detector.ERASURE_CONTRADICTED,
            Severity.HIGH,
            app_id,
            company_id,
            observed={
                "canaries": sorted(canaries),
                "dump": found.dump,
                "incident": found.incident,
                "found_at": found.found_at.isoformat(),
            },
            baseline=_evidence(scope),
            window_start=scope.attested_at,
            window_end=found.found_at,
            dedup_window=f"{attestation}:dump:{found.dump}:{found.found_at.date().isoformat()}",
            ledger_entries=[],
        )
        for (app_id, attestation), (scope, company_id, canaries) in sorted(by_scope.items())
    ]


def dump_canaries_found(session: Session, found: DumpCanaries) -> None:
    """Raise ``erasure_contradicted`` for canaries in an attributed dump that a vendor attested erased
    (the answer to ``attribution.service.dump_canaries_found``, in the attribution's transaction)."""
    findings = dump_findings(session, found)
    if findings:
        cap = load_policy(get_settings()).alerts_per_app_per_day
        for finding in findings:
            raise_alert(session, finding, cap=cap, actor="attribution", now=found.found_at)
