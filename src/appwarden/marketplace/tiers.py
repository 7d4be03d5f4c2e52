"""The data tier of an app, a pure function of the scopes it asks for, with its reasons.

0: no customer data; 1: non-identifying fields only (points, rank, gender); 2: identifying fields only
masked or as tokens; 3: any raw identifying field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from appwarden.marketplace.scopes import PII_FIELDS, FieldScope, Mode, parse_scope

# Months between audits, by tier (tier 0 holds no customer data: no audit).
AUDIT_INTERVAL_MONTHS: dict[int, int | None] = {0: None, 1: 24, 2: 12, 3: 6}


@dataclass(frozen=True, slots=True)
class Tier:
    """A tier and why: one reason per scope that decided it."""

    tier: int
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"tier": self.tier, "reasons": list(self.reasons)}


def tier_of(scopes: Iterable[str]) -> Tier:
    """The tier of ``scopes`` (valid scope strings) and the scopes that put it there."""
    by_tier: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for scope in scopes:
        parsed = parse_scope(scope)
        if not isinstance(parsed, FieldScope):
            continue
        if parsed.field not in PII_FIELDS:
            by_tier[1].append(f"{parsed}: non-identifying field")
        elif parsed.mode == Mode.RAW:
            by_tier[3].append(f"{parsed}: raw identifying field")
        else:
            by_tier[2].append(f"{parsed}: identifying field {parsed.mode.value}")
    for tier in (3, 2, 1):
        if by_tier[tier]:
            return Tier(tier, tuple(by_tier[tier]))
    return Tier(0, ("no customer fields",))
