"""Canary contact joins the alert stream: the answer to ``canary.alerts.canary_contacted``.

A contact is proof, not a statistic, so it is raised at ``critical`` on the first contact. One monitor
alert per connection per day (deduplicated); the canary's own table keeps every contact. A contact with
a canary the vendor had already attested erased also raises ``erasure_contradicted``
(``monitor.obligation_checks``): the attestation was not true.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from appwarden.canary.alerts import Contact
from appwarden.config import get_settings
from appwarden.monitor.obligation_checks import contact_contradicts
from appwarden.monitor.policy import Detector, Severity, load_policy
from appwarden.monitor.service import Finding, raise_alert


def canary_contacted(session: Session, contact: Contact) -> None:
    """Raise (or deduplicate) the ``canary_contact`` alert for this contact, in the canary's transaction."""
    policy = load_policy(get_settings())
    day = contact.received_at.date().isoformat()
    finding = Finding(
        Detector.CANARY_CONTACT,
        Severity.CRITICAL,
        contact.app_id,
        contact.company_id,
        observed={"canary_alert": contact.alert, "channel": contact.channel, "kind": contact.kind},
        baseline={"expected_contacts": 0},
        window_start=contact.received_at,
        window_end=contact.received_at,
        dedup_window=f"{contact.connection_id}:{day}",
        ledger_entries=[],
    )
    raise_alert(session, finding, cap=policy.alerts_per_app_per_day, actor=f"canary-{contact.channel}")
    contradicted = contact_contradicts(session, contact)
    if contradicted is not None:
        raise_alert(
            session, contradicted, cap=policy.alerts_per_app_per_day, actor=f"canary-{contact.channel}"
        )
