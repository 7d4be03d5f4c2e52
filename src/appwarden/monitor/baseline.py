"""``over_baseline``: per app × company × customer field, distinct people in an hour against what that
pair normally takes of that field in an hour.

The baseline is learned from the pair's own hours (``monitor_hours.field_people``) over the last
``baseline_learning_days``: the ``baseline_quantile`` of those hours (an hour with no delivery counts as
zero), × ``baseline_factor``, and never under ``baseline_min_people``. A high quantile, not the maximum,
so that one odd hour in the learning days (a re-sync, or an attack that is still going on) does not
raise the bar for the week after. Until the pair has that much history its yardstick is the vendor's
declaration: one hour above the declared people-per-day peak. The hours being checked (the last
complete one and the current one as it fills) are never part of what is learned.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from appwarden.monitor.detectors import HOUR, Declared, Hour, Pair, Window
from appwarden.monitor.policy import Detector, MonitorPolicy, Severity
from appwarden.monitor.service import Finding

FieldHours = dict[Pair, dict[datetime, dict[str, int]]]  # pair → hour → {field: distinct people}


def field_hours(hours: Iterable[Hour]) -> FieldHours:
    """The hours' distinct people per field, by pair and hour (from the one read of the run)."""
    out: FieldHours = defaultdict(dict)
    for h in hours:
        if h.field_people:
            out[(h.app_id, h.company_id)][h.hour] = dict(h.field_people)
    return out


def quantile(values: Iterable[int], q: float) -> int:
    """The nearest-rank ``q`` quantile (0.99 of 168 hours: the second busiest hour)."""
    ordered = sorted(values)
    if not ordered:
        return 0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def learned_baseline(
    hours: Mapping[datetime, Mapping[str, int]],
    field: str,
    learn_from: datetime,
    learn_until: datetime,
    policy: MonitorPolicy,
) -> tuple[int, int]:
    """(the quantile of the field's hourly people over ``[learn_from, learn_until)``, the baseline)."""
    return _learned(hours, field, _slots(learn_from, learn_until), policy)


def _slots(learn_from: datetime, learn_until: datetime) -> list[datetime]:
    return [learn_from + i * HOUR for i in range(int((learn_until - learn_from) / HOUR))]


def _learned(
    hours: Mapping[datetime, Mapping[str, int]], field: str, slots: list[datetime], policy: MonitorPolicy
) -> tuple[int, int]:
    empty: Mapping[str, int] = {}
    values = [hours.get(slot, empty).get(field, 0) for slot in slots]
    q = quantile(values, policy.baseline_quantile)
    return q, max(policy.baseline_min_people, math.ceil(q * policy.baseline_factor))


def over_baseline(
    history: FieldHours,
    window: Window,
    declared: Declared,
    since: Mapping[Pair, datetime],
    policy: MonitorPolicy,
) -> list[Finding]:
    """The last complete hour, or the current one so far, delivered more distinct people of some field
    than the pair's baseline for that field (learned, or the declaration while still learning). One
    finding per app × company × hour, naming every field over its baseline. ``history``: the run's
    hours (:func:`field_hours`), from ``baseline_learning_days`` before the current hour on."""
    checked = (window.current - HOUR, window.current)
    learn_until = window.current - HOUR
    learn_from = learn_until - timedelta(days=policy.baseline_learning_days)
    slots = _slots(learn_from, learn_until)  # the same learning hours for every pair and field
    findings = []
    for pair in sorted(window.by_pair):
        hours = history.get(pair, {})
        learned = since.get(pair, window.current) <= learn_from
        bars: dict[str, tuple[int, int]] = {}  # both checked hours share the pair's learned baselines
        for hour in checked:
            observed = hours.get(hour, {})
            over: dict[str, int] = {}
            yardsticks: dict[str, Any] = {}
            for field, people in sorted(observed.items()):
                if learned:
                    if field not in bars:
                        bars[field] = _learned(hours, field, slots, policy)
                    q, bar = bars[field]
                    yardstick: Any = {"people_per_hour": bar, "quantile_people": q}
                else:
                    bar = declared(*pair).people_per_day_peak
                    yardstick = {"people_per_hour": bar}
                if people > bar:
                    over[field] = people
                    yardsticks[field] = yardstick
            if not over:
                continue
            if learned:
                basis: dict[str, Any] = {
                    "source": "learned",
                    "learning_days": policy.baseline_learning_days,
                    "quantile": policy.baseline_quantile,
                    "factor": policy.baseline_factor,
                    "floor": policy.baseline_min_people,
                }
            else:
                volume = declared(*pair)
                basis = {
                    "source": "declaration",
                    "people_per_day_peak": volume.people_per_day_peak,
                    "declared": volume.declared,
                }
            findings.append(
                Finding(
                    Detector.OVER_BASELINE,
                    Severity.MEDIUM,
                    pair[0],
                    pair[1],
                    observed={"people_per_hour": over},
                    baseline={**basis, "fields": yardsticks},
                    window_start=hour,
                    window_end=hour + HOUR,
                )
            )
    return findings
