"""Lifecycle rules: which transitions exist and what an app in each state may do. Pure functions only.

The service (``marketplace.service.transition``) applies these and records a security event per move.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from appwarden.errors import Conflict
from appwarden.marketplace.scopes import PII_FIELDS, FieldScope, Mode, parse_scope
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy

S = LifecycleState

# The kill switch delists from any state; every other move is listed here. ``restricted → listed`` is a
# relist after a passed audit (or the operator's decision, recorded with its reason).
TRANSITIONS: dict[LifecycleState, frozenset[LifecycleState]] = {
    S.DRAFT: frozenset({S.SUBMITTED}),
    S.SUBMITTED: frozenset({S.IN_REVIEW, S.DRAFT}),
    S.IN_REVIEW: frozenset({S.LISTED, S.DRAFT}),
    S.LISTED: frozenset({S.RESTRICTED}),
    S.RESTRICTED: frozenset({S.LISTED}),
    S.DELISTED: frozenset(),
}
PRE_LISTING = frozenset({S.DRAFT, S.SUBMITTED, S.IN_REVIEW})


class Access(StrEnum):
    """What the broker and the token endpoint may do for an app in a state."""

    FULL = "full"  # the grant as consented
    TOKEN_ONLY = "token_only"  # raw identifying fields drop to token mode
    REFUSED = "refused"


def allowed_targets(current: LifecycleState) -> frozenset[LifecycleState]:
    """Every state ``current`` may move to (delisting always included)."""
    return TRANSITIONS[current] | {S.DELISTED}


def check_transition(current: LifecycleState, target: LifecycleState) -> None:
    """Raise 409 ``invalid_transition`` unless ``current → target`` is a lifecycle move."""
    if target == S.DELISTED or target in TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(allowed_targets(current)))
    raise Conflict(
        f"an app that is {current} cannot become {target} (it may become: {allowed})",
        code="invalid_transition",
        state=current.value,
        target=target.value,
    )


def access_in_state(state: str, policy: str, *, test_company: bool) -> Access:
    """What an app in ``state`` may receive for a company (``test_company``: marked as a test company).

    Listed: its grant. Restricted: by ``policy``, raw identifying fields as tokens, or nothing. Not yet
    listed: only test companies. Delisted: nothing. Anything unknown fails closed.
    """
    try:
        current = LifecycleState(state)
    except ValueError:
        return Access.REFUSED
    if current == S.LISTED:
        return Access.FULL
    if current == S.RESTRICTED:
        return Access.TOKEN_ONLY if policy == RestrictedPolicy.TOKEN else Access.REFUSED
    if current in PRE_LISTING and test_company:
        return Access.FULL
    return Access.REFUSED


def refusal_code(state: str) -> str:
    """The 403 code for an app refused in ``state``: ``app_restricted``, ``app_delisted``, ``app_draft``…"""
    return f"app_{state}"


def effective_mode_for_restricted(field: str, mode: Mode, policy: str) -> Mode | None:
    """The mode a restricted app receives ``field`` in: raw identifying fields become tokens under the
    ``token`` policy; nothing at all (None) under ``pause``."""
    if policy != RestrictedPolicy.TOKEN:
        return None
    if mode == Mode.RAW and field in PII_FIELDS:
        return Mode.TOKEN
    return mode


def scopes_for_access(scopes: Iterable[str], access: Access, policy: str) -> list[str]:
    """``scopes`` as the app may use them under ``access`` (resource scopes are kept when not refused)."""
    if access == Access.REFUSED:
        return []
    if access == Access.FULL:
        return list(scopes)
    out: list[str] = []
    for scope in scopes:
        parsed = parse_scope(scope)
        if isinstance(parsed, FieldScope):
            mode = effective_mode_for_restricted(parsed.field, parsed.mode, policy)
            if mode is None:
                continue
            parsed = FieldScope(parsed.field, mode)
        if str(parsed) not in out:
            out.append(str(parsed))
    return out


def may_install(state: str) -> bool:
    """Only listed apps can be installed by a production company."""
    return state == S.LISTED
