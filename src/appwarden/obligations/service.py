"""The obligations package's operations for the CLI, the admin API and the app views."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from appwarden.config import get_settings
from appwarden.marketplace import standing
from appwarden.marketplace.standing import AppStanding
from appwarden.obligations.holdings import AppHoldings, HoldingRow, app_holdings
from appwarden.platform.service import get_company


def holdings(
    session: Session, *, app_ref: str | None = None, company_ref: str | None = None, now: datetime
) -> list[HoldingRow]:
    """Every app × company × field row (of one app, of one company), by app then company then field;
    404 ``app_not_found`` / ``company_not_found`` for an unknown reference."""
    apps = [standing.find(session, app_ref)] if app_ref is not None else standing.all_standings(session)
    companies = None if company_ref is None else {get_company(session, company_ref).id}
    found = app_holdings(
        session, apps, now=now, default_days=get_settings().retention_default_days, company_ids=companies
    )
    return [row for app in found for row in app.rows]


def holdings_of_apps(session: Session, apps: Sequence[AppStanding], now: datetime) -> dict[int, AppHoldings]:
    """:func:`app_holdings` of ``apps`` by app id (the app views' and the risk score's source)."""
    found = app_holdings(session, apps, now=now, default_days=get_settings().retention_default_days)
    return {h.app_id: h for h in found}


def holdings_fact(session: Session, apps: Sequence[AppStanding], now: datetime) -> dict[int, dict[str, Any]]:
    """The ``holdings`` shown on each app (``apps show``, ``GET /admin/apps/{slug}``): distinct people
    the vendor may hold and should no longer hold; an answer to ``marketplace.facts.app_facts``."""
    return {
        app_id: {
            "holdings": {
                "may_hold": h.may_hold,
                "should_not_hold": h.should_not_hold,
                "companies_past_retention": h.companies_past_retention,
            }
        }
        for app_id, h in holdings_of_apps(session, apps, now).items()
    }


def overdue_obligations(session: Session, app_ids: Collection[int], now: datetime) -> Mapping[int, int]:
    """Per app, the companies whose people it holds past retention or after their connection ended:
    the risk score's ``obligations`` count (``monitor.risk``)."""
    apps = list(standing.standings(session, app_ids).values())
    return {app_id: h.companies_past_retention for app_id, h in holdings_of_apps(session, apps, now).items()}
