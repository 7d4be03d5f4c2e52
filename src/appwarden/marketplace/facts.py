"""What packages above the marketplace know about an app, gathered into the app's views.

An app's views (``appwarden apps list|show``, ``GET /admin/apps`` and ``/admin/apps/{slug}``) live here,
but the facts that matter most about an app come from packages above: its risk score (``monitor.risk``:
the ledger's people, screening's audits, the monitor's alerts) and its unused scopes (``ledger.usage``).
The marketplace cannot import them, so it asks :data:`app_facts`, a :class:`appwarden.hooks.Question`
that ``wiring.wire`` answers. Each answer is ``(session, apps, now) -> {app id: {key: value}}`` and must
answer for every app it is asked about; the keys of all answers are merged into each app's view (a key
given by two answers, or an app left out, is a wiring error, raised rather than shown half).

Every app list is ordered by the ``risk`` fact's score, highest first (then by slug).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from appwarden.hooks import Question
from appwarden.marketplace.models import App, Vendor
from appwarden.marketplace.service import app_summary
from appwarden.marketplace.standing import AppStanding, standing

Facts = Mapping[int, Mapping[str, Any]]  # app id -> {fact key: JSON value}

app_facts: Question[[Session, Sequence[AppStanding], datetime], Facts] = Question("app facts")

RISK = "risk"  # the fact app lists are ordered by: {"score": float, "parts": {...}}


def gather(session: Session, apps: Sequence[App], now: datetime) -> dict[int, dict[str, Any]]:
    """Every registered answer's facts about ``apps``, merged per app (fail closed: see the module)."""
    merged: dict[int, dict[str, Any]] = {app.id: {} for app in apps}
    if not apps:
        return merged
    asked = [standing(app) for app in apps]  # answers get frozen copies, never the rows
    for answer, facts in zip(app_facts.registered(), app_facts(session, asked, now), strict=True):
        for app in apps:
            if app.id not in facts:
                raise RuntimeError(f"{answer.__qualname__} gave no facts about app {app.slug!r}")
            clash = merged[app.id].keys() & facts[app.id].keys()
            if clash:
                raise RuntimeError(f"{answer.__qualname__} gives {sorted(clash)} a second time")
            merged[app.id].update(facts[app.id])
    return merged


def risk_score(view: Mapping[str, Any]) -> float:
    """The view's risk score; a view without one is a wiring error (a list in some other order would
    put a risky app where nobody looks)."""
    risk = view.get(RISK)
    if not isinstance(risk, Mapping):
        raise RuntimeError(f"no answer to {app_facts.name!r} gives the {RISK!r} of app {view['slug']!r}")
    return float(risk["score"])


def app_views(session: Session, apps: Sequence[App], now: datetime) -> list[dict[str, Any]]:
    """Each app's summary (its keys unchanged) with the gathered facts beside them, riskiest first."""
    facts = gather(session, apps, now)
    views = [dict(app_summary(app, session=session)) | facts[app.id] for app in apps]
    return sorted(views, key=lambda view: (-risk_score(view), view["slug"]))


def app_view(session: Session, app: App, now: datetime) -> dict[str, Any]:
    """One app's summary, with its vendor, and the gathered facts beside it."""
    vendor = session.get(Vendor, app.vendor_id) if app.vendor_id else None
    return dict(app_summary(app, vendor, session=session)) | gather(session, [app], now)[app.id]
