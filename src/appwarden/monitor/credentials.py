"""``new_credential_volume``: a credential (a grant never seen before for that app × company) or a client
network (an IP prefix never seen before) that delivered many people in its first hours.

The tally notes every delivery's token and client network; the fold records each one's first sighting
per app × company in ``monitor_sources`` and the distinct people delivered through it during its first
``new_credential_hours`` (``monitor.tally``). A source counts as new only on an established pair, one
whose first delivery is at least ``new_credential_hours`` older than the source: a new connection's
first grant and network are the connection itself, watched by ``mirror``, ``over_declaration`` and
``new_app_high_usage``. "Many" is ``new_credential_people`` or the vendor's declared people-per-day
average over those hours (a real declaration's, not the settings' stand-in), whichever is higher: an
app declared to read tens of thousands a day is not suspicious for doing so from a new server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.monitor.detectors import HOUR, Declared, Pair, Window
from appwarden.monitor.models import SourceSighting
from appwarden.monitor.policy import Detector, MonitorPolicy, Severity
from appwarden.monitor.service import Finding
from appwarden.monitor.sources import SourceKind
from appwarden.monitor.tally import hour_of


def new_credential_volume(
    session: Session,
    window: Window,
    declared: Declared,
    since: Mapping[Pair, datetime],
    policy: MonitorPolicy,
) -> list[Finding]:
    """Sources first seen within the last ``new_credential_hours`` (and the hour before, so a crossing
    just at the end is not missed) whose people exceed the threshold."""
    counted = timedelta(hours=policy.new_credential_hours)
    query = select(SourceSighting).where(SourceSighting.first_seen_at >= window.current - counted - 2 * HOUR)
    findings = []
    for row in session.scalars(query.order_by(SourceSighting.id)):
        pair = (row.app_id, row.company_id)
        first_hour = hour_of(row.first_seen_at)
        pair_since = since.get(pair)
        if pair_since is None or pair_since + counted > first_hour:
            continue  # the connection's own first grant and network, or a connection still new
        people = len(BitMap.deserialize(bytes(row.people)))
        volume = declared(*pair)
        # Only a vendor's own declaration raises the bar: the settings' stand-in for an undeclared app
        # is a ceiling, not knowledge of its traffic.
        average = volume.people_per_day_avg if volume.declared else 0
        threshold = max(policy.new_credential_people, math.ceil(average * counted / timedelta(days=1)))
        if people <= threshold:
            continue
        kind = SourceKind(row.kind)
        # A network is shown as its prefix; a credential only by the start of its hash (never a token).
        shown = row.key if kind is SourceKind.NETWORK else f"grant:{row.key[:12]}"
        findings.append(
            Finding(
                Detector.NEW_CREDENTIAL_VOLUME,
                Severity.HIGH,
                row.app_id,
                row.company_id,
                observed={
                    "kind": kind.value,
                    "source": shown,
                    "first_seen_at": row.first_seen_at.isoformat(),
                    "people": people,
                },
                baseline={
                    "people_threshold": threshold,
                    "hours": policy.new_credential_hours,
                    "min_people": policy.new_credential_people,
                    "declared_people_per_day_avg": average,
                    "pair_first_seen_at": pair_since.isoformat(),
                },
                window_start=first_hour,
                window_end=first_hour + counted,
                dedup_window=f"{kind.value}:{row.key}",
            )
        )
    return findings
