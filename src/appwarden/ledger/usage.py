"""Unused permissions: the scopes an app is approved for but has not used, from the ledger's index.

A customer-field scope ``customers.<field>:<mode>`` is *used* when the app received that field in that
mode, in any company, within the last ``days`` (90 by default) before ``now``. The index row of each
(app, company, field, mode) keeps the time of its last delivery (``last_at``), so the answer is one
grouped query over the index, never a scan of entries. Through an access token a raw identifying field
goes out masked (``broker.auth.ordinary_modes``): a ``:raw`` scope is used only by deliveries made with
restricted tokens (or detokenize), which is exactly what a review wants to know.

Each approved scope gets one status (:class:`Usage`):

- ``used``: delivered within the window;
- ``unused``: not delivered within the window, and approved at least ``days`` ago — the app has had the
  whole window to use it (this includes scopes never used at all since their approval);
- ``not_yet_judged``: not delivered within the window, but approved less than ``days`` ago: too recent
  to call unused (it is listed again once the window has passed);
- ``not_judged``: a resource scope (``transactions:read`` …), which delivers no customer field.

When a scope was approved is read from the ``app:scope:approved`` security events: the start of the
latest uninterrupted run of approvals that include it (an approval that drops it ends the run), or the
app's registration when no approval event names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appwarden.events.service import Event, EventTag, occurrences, occurrences_by_app
from appwarden.ledger.models import LedgerIndex
from appwarden.marketplace.scopes import FieldScope, parse_scope
from appwarden.marketplace.standing import AppStanding, find, standings

DAYS = 90


class Usage(StrEnum):
    USED = "used"
    UNUSED = "unused"
    NOT_YET_JUDGED = "not_yet_judged"
    NOT_JUDGED = "not_judged"


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    """One approved scope: its status, when it was approved (since), when last delivered (or None)."""

    scope: str
    status: Usage
    approved_since: datetime
    last_used_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "status": self.status.value,
            "approved_since": self.approved_since.isoformat(),
            "last_used_at": None if self.last_used_at is None else self.last_used_at.isoformat(),
        }


def approved_since(
    approvals: Iterable[tuple[datetime, Sequence[str]]], current: Sequence[str], registered: datetime
) -> dict[str, datetime]:
    """When each of the ``current`` scopes was approved: the first approval of its latest run.

    ``approvals`` are (time, scopes approved) oldest first; a scope no approval names dates from
    ``registered``.
    """
    since: dict[str, datetime] = {}
    for at, scopes in approvals:
        named = set(scopes)
        for scope in list(since):
            if scope not in named:
                del since[scope]  # dropped by this approval: a later one starts a new run
        for scope in named:
            since.setdefault(scope, at)
    return {scope: since.get(scope, registered) for scope in current}


def judge(
    scope: str, *, since: datetime, last_used: datetime | None, now: datetime, days: int = DAYS
) -> Usage:
    """The status of one approved scope (pure; see the module docstring)."""
    if not isinstance(parse_scope(scope), FieldScope):
        return Usage.NOT_JUDGED
    start = now - timedelta(days=days)
    if last_used is not None and last_used >= start:
        return Usage.USED
    return Usage.UNUSED if since <= start else Usage.NOT_YET_JUDGED


def last_deliveries(session: Session, app_id: int) -> dict[tuple[str, str], datetime]:
    """(field, mode) → the app's last delivery of it in any company, from the index (one query)."""
    query = (
        select(LedgerIndex.field, LedgerIndex.mode, func.max(LedgerIndex.last_at))
        .where(LedgerIndex.app_id == app_id)
        .group_by(LedgerIndex.field, LedgerIndex.mode)
    )
    return {(field, mode): at for field, mode, at in session.execute(query)}


def scope_usage(session: Session, app_id: int, *, now: datetime, days: int = DAYS) -> list[ScopeUsage]:
    """Every scope the app is approved for, in approval order, with its usage status as of ``now``."""
    app = standings(session, [app_id]).get(app_id)
    if app is None:
        return []
    approvals = occurrences(session, EventTag.APP_SCOPE_APPROVED, app_id=app_id)
    return _usage(app, approvals, last_deliveries(session, app_id), now=now, days=days)


def _usage(
    app: AppStanding,
    approvals: Iterable[Event],
    last: dict[tuple[str, str], datetime],
    *,
    now: datetime,
    days: int,
) -> list[ScopeUsage]:
    """The statuses of ``app``'s approved scopes from its approval events and last deliveries (pure)."""
    approved = [str(s) for s in app.approved_scopes]
    runs = [(event.occurred_at, list(event.data.get("scopes", []))) for event in approvals]
    since = approved_since(runs, approved, app.created_at)
    out = []
    for scope in approved:
        parsed = parse_scope(scope)
        used_at = last.get((parsed.field, parsed.mode.value)) if isinstance(parsed, FieldScope) else None
        status = judge(scope, since=since[scope], last_used=used_at, now=now, days=days)
        out.append(ScopeUsage(scope, status, since[scope], used_at))
    return out


def unused_of_apps(
    session: Session, apps: Sequence[AppStanding], *, now: datetime, days: int = DAYS
) -> dict[int, list[str]]:
    """:func:`unused_scopes` of several apps in two queries (their index rows grouped, their approval
    events), for views that list every app."""
    ids = [app.id for app in apps]
    last: dict[int, dict[tuple[str, str], datetime]] = {app_id: {} for app_id in ids}
    if ids:
        query = (
            select(LedgerIndex.app_id, LedgerIndex.field, LedgerIndex.mode, func.max(LedgerIndex.last_at))
            .where(LedgerIndex.app_id.in_(ids))
            .group_by(LedgerIndex.app_id, LedgerIndex.field, LedgerIndex.mode)
        )
        for app_id, field, mode, at in session.execute(query):
            last[app_id][(field, mode)] = at
    approvals = occurrences_by_app(session, EventTag.APP_SCOPE_APPROVED, app_ids=ids)
    return {
        app.id: [
            u.scope
            for u in _usage(app, approvals[app.id], last[app.id], now=now, days=days)
            if u.status is Usage.UNUSED
        ]
        for app in apps
    }


def unused_scopes_fact(
    session: Session, apps: Sequence[AppStanding], now: datetime
) -> dict[int, dict[str, Any]]:
    """The ``unused_scopes`` shown on each app (``apps show``, ``GET /admin/apps/{slug}``): an answer to
    ``marketplace.facts.app_facts``, registered by ``appwarden.wiring``."""
    unused = unused_of_apps(session, apps, now=now)
    return {app_id: {"unused_scopes": scopes} for app_id, scopes in unused.items()}


def unused_scopes(session: Session, app_id: int, *, now: datetime, days: int = DAYS) -> list[str]:
    """The app's approved customer-field scopes it has not used in ``days`` before ``now`` (and has been
    approved for at least that long), for reviews and re-audits to question."""
    return [u.scope for u in scope_usage(session, app_id, now=now, days=days) if u.status is Usage.UNUSED]


def unused_report(session: Session, slug: str, *, now: datetime, days: int = DAYS) -> dict[str, Any]:
    """The JSON of ``appwarden ledger unused APP`` and ``GET /admin/ledger/unused/{app}``."""
    app = find(session, slug)  # 404 app_not_found for an unknown slug or client id
    usage = scope_usage(session, app.id, now=now, days=days)
    return {
        "app": app.slug,
        "as_of": now.isoformat(),
        "days": days,
        "unused": [u.scope for u in usage if u.status is Usage.UNUSED],
        "scopes": [u.to_dict() for u in usage],
    }
