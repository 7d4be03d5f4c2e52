"""``restricted_token_volume``: restricted tokens minted for more distinct people in 24 h than declared.

A restricted token (``POST /v1/restricted-tokens``) is the only way raw identifying fields leave, for
named customers and a stated purpose; the broker notes each mint's customers in the tally
(``Monitor.restricted_minted``), folded into ``monitor_hours.restricted_people`` (a bitmap per app ×
company × hour). The yardstick is the connection's declared restricted-token figure
(``DeclaredVolume.restricted_people_per_day``) or, when the declaration has none (the marketplace's
volume declaration has only people per day and requests per minute), the declared people-per-day peak
× ``restricted_token_people_factor``, never below ``restricted_token_min_people`` (docs/monitoring.md).
"""

from __future__ import annotations

import math
from collections import defaultdict

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.monitor.declarations import DeclaredVolume
from appwarden.monitor.detectors import HOUR, Declared, Pair, Window
from appwarden.monitor.models import DeliveryHour
from appwarden.monitor.policy import Detector, MonitorPolicy, Severity
from appwarden.monitor.service import Finding


def restricted_people(session: Session, window: Window) -> dict[Pair, BitMap]:
    """Distinct people named in restricted-token mints per app × company in the last 24 hourly buckets."""
    rows = session.execute(
        select(DeliveryHour.app_id, DeliveryHour.company_id, DeliveryHour.restricted_people).where(
            DeliveryHour.hour >= window.day_start,
            DeliveryHour.hour <= window.current,
            DeliveryHour.restricted_people.is_not(None),
        )
    )
    people: dict[Pair, BitMap] = defaultdict(BitMap)
    for app_id, company_id, blob in rows:
        if blob is not None:  # (the query filters them out; the column is nullable)
            people[(app_id, company_id)] |= BitMap.deserialize(bytes(blob))
    return dict(people)


def allowance(volume: DeclaredVolume, policy: MonitorPolicy) -> tuple[int, dict[str, object]]:
    """The people a day a connection may mint restricted tokens for, and how it was derived."""
    declared = volume.restricted_people_per_day
    if declared is not None:
        return declared, {"restricted_people_per_day": declared}
    derived = max(
        math.ceil(volume.people_per_day_peak * policy.restricted_token_people_factor),
        policy.restricted_token_min_people,
    )
    return derived, {
        "restricted_people_per_day": derived,
        "people_per_day_peak": volume.people_per_day_peak,
        "factor": policy.restricted_token_people_factor,
        "min_people": policy.restricted_token_min_people,
    }


def restricted_token_volume(
    session: Session, window: Window, declared: Declared, policy: MonitorPolicy
) -> list[Finding]:
    """Restricted tokens of one app × company named more distinct people in 24 h than it may: one
    alert per pair per UTC day (the window slides; the finding persists)."""
    findings = []
    for (app_id, company_id), named in sorted(restricted_people(session, window).items()):
        volume = declared(app_id, company_id)
        limit, yardstick = allowance(volume, policy)
        if len(named) > limit:
            findings.append(
                Finding(
                    Detector.RESTRICTED_TOKEN_VOLUME,
                    Severity.HIGH,  # raw identifying fields, by definition
                    app_id,
                    company_id,
                    observed={"restricted_people_per_day": len(named)},
                    baseline={**yardstick, "declared": volume.declared},
                    window_start=window.day_start,
                    window_end=window.current + HOUR,
                    dedup_window=f"restricted:{window.current.date().isoformat()}",
                )
            )
    return findings
