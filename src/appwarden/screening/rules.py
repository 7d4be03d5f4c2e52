"""Review rules, pure: scope decisions (a weaker mode only, with a reason), who may review, how two
tier-3 approvals combine. ``screening.review`` applies them to the stored version."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appwarden.errors import Forbidden, InvalidInput
from appwarden.marketplace.scopes import FieldScope, Mode, parse_scope
from appwarden.platform.staff import StaffMember
from appwarden.screening.vocabulary import ScopeVerdict

# raw → masked → token: each step reveals less; a reviewer may only move right.
STRENGTH = {Mode.RAW: 2, Mode.MASKED: 1, Mode.TOKEN: 0}


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    scope: str  # as requested
    verdict: ScopeVerdict
    mode: str | None  # the mode approved (weakened: the weaker one); None when refused
    reason: str

    @property
    def approved(self) -> str | None:
        """The scope as approved, or None."""
        if self.verdict == ScopeVerdict.REFUSED:
            return None
        parsed = parse_scope(self.scope)
        if isinstance(parsed, FieldScope) and self.mode is not None:
            return str(FieldScope(parsed.field, Mode(self.mode)))
        return self.scope

    def to_dict(self) -> dict[str, object]:
        return {"scope": self.scope, "verdict": self.verdict.value, "mode": self.mode, "reason": self.reason}


def scope_decision(scope: str, verdict: str, mode: str | None, reason: str) -> ScopeDecision:
    """One checked scope decision; a weakened or refused scope needs a reason, a weaker mode only."""
    try:
        v = ScopeVerdict(verdict)
    except ValueError:
        raise InvalidInput(
            f"{scope}: verdict must be approved, weakened or refused", code="invalid_decision"
        ) from None
    parsed = parse_scope(scope)
    reason = reason.strip()
    if v != ScopeVerdict.APPROVED and not reason:
        raise InvalidInput(f"{scope}: a {v.value} scope needs a reason", code="reason_required", scope=scope)
    if v == ScopeVerdict.REFUSED:
        return ScopeDecision(scope, v, None, reason)
    asked = parsed.mode if isinstance(parsed, FieldScope) else None
    if v == ScopeVerdict.APPROVED:
        return ScopeDecision(scope, v, asked.value if asked else None, reason)
    if asked is None or mode is None:
        raise InvalidInput(
            f"{scope}: only a customer field can be weakened, to a mode", code="invalid_decision"
        )
    try:
        weaker = Mode(mode)
    except ValueError:
        raise InvalidInput(f"{scope}: unknown mode {mode!r}", code="invalid_decision") from None
    if STRENGTH[weaker] >= STRENGTH[asked]:
        raise InvalidInput(
            f"{scope}: {weaker.value} is not weaker than {asked.value} (raw → masked → token)",
            code="not_weaker",
            scope=scope,
        )
    assert isinstance(parsed, FieldScope)
    parse_scope(str(FieldScope(parsed.field, weaker)))  # points, rank, gender exist raw only
    return ScopeDecision(scope, v, weaker.value, reason)


def complete_checklist(requested: Sequence[str], decided: Iterable[ScopeDecision]) -> list[ScopeDecision]:
    """The decisions in requested order; every requested scope decided once, nothing else."""
    by_scope: dict[str, ScopeDecision] = {}
    for d in decided:
        if d.scope in by_scope:
            raise InvalidInput(f"{d.scope} is decided twice", code="invalid_decision")
        by_scope[d.scope] = d
    extra = sorted(set(by_scope) - set(requested))
    if extra:
        raise InvalidInput(f"not requested by this version: {', '.join(extra)}", code="invalid_decision")
    missing = [s for s in requested if s not in by_scope]
    if missing:
        raise InvalidInput(
            f"every requested scope needs a decision; missing: {', '.join(missing)}",
            code="checklist_incomplete",
            missing=missing,
        )
    return [by_scope[s] for s in requested]


def check_reviewer(
    reviewer: StaffMember,
    *,
    vendor_public_id: str | None,
    vendor_email: str | None,
    earlier_reviewer_ids: Iterable[int],
) -> None:
    """403 unless ``reviewer`` may decide: a reviewer or security admin, not the vendor's own person,
    not a second decision by the same person on one version."""
    if reviewer.role not in ("reviewer", "security_admin"):
        raise Forbidden(f"{reviewer.username} is not a reviewer", code="not_a_reviewer")
    own = vendor_public_id is not None and reviewer.vendor_affiliation == vendor_public_id
    if own or (vendor_email and reviewer.email and reviewer.email.lower() == vendor_email.lower()):
        raise Forbidden(
            f"{reviewer.username} belongs to the app's vendor and cannot review it", code="reviewer_is_vendor"
        )
    if reviewer.id in set(earlier_reviewer_ids):
        raise Forbidden(
            f"{reviewer.username} has already decided on this version; a second reviewer "
            "must be a different person",
            code="same_reviewer",
        )


def combine(approvals: Sequence[Sequence[ScopeDecision]]) -> list[str]:
    """The approved scopes of several approvals: per scope the weakest mode any reviewer allowed;
    refused by any reviewer, not approved (fail closed)."""
    out: list[str] = []
    for decisions in zip(*approvals, strict=True):
        if any(d.verdict == ScopeVerdict.REFUSED for d in decisions):
            continue
        chosen = min(decisions, key=lambda d: STRENGTH[Mode(d.mode)] if d.mode else 0)
        approved = chosen.approved
        if approved is not None:
            out.append(approved)
    return out
