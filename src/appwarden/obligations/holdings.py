"""What each vendor may still hold, per app × company × field, from the ledger (issue 14).

A vendor received a person's field when the ledger says so; it may keep it for the retention period it
accepted in review for that field (the version in force's ``retention``, else
``settings.retention_default_days``, 30 days as Amazon's data protection policy sets for buyer PII),
counted from the **latest** delivery of that field to that person. After that, or once the company's
connection has ended, the vendor should no longer hold it:

    may_hold        = people delivered the field (raw or masked) after now − retention,
                      unless the company's connection has ended (revoked)
    should_not_hold = everyone ever delivered the field (raw or masked) − may_hold

A connection the kill switch suspended has not ended (it may be approved again): retention still
decides there.

Token deliveries are pseudonyms (different per app, unlinkable) and are not holdings of personal data.
Canaries are excluded from the counts, as from the blast radius: they are synthetic people (and part of
what a vendor must erase, which the canary watch checks). Both sets come from the ledger alone:
``ledger.exposure.received_per_app`` (the cumulative index) and ``received_after`` (the entries after
each field's cutoff).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.canary.lookup import canary_ids
from appwarden.errors import NotFound
from appwarden.ledger.exposure import PerCompany, received_after, received_per_app
from appwarden.marketplace import versions
from appwarden.marketplace.scopes import Mode
from appwarden.marketplace.standing import AppStanding
from appwarden.oauth.connections import ended_company_ids
from appwarden.platform.directory import company_names

HELD_MODES = frozenset({Mode.RAW.value, Mode.MASKED.value})  # modes that hand over the value itself


@dataclass(frozen=True, slots=True)
class HoldingRow:
    """One app × company × field: how many people the vendor may hold, and how many it should not."""

    app: str
    company: str
    field: str
    may_hold: int
    should_not_hold: int
    retention_days: int

    def to_dict(self) -> dict[str, Any]:
        """The ``holdings --json`` row (``retention_days`` beside the contract's keys)."""
        return {
            "app": self.app,
            "company": self.company,
            "field": self.field,
            "may_hold": self.may_hold,
            "should_not_hold": self.should_not_hold,
            "retention_days": self.retention_days,
        }


@dataclass(frozen=True, slots=True)
class AppHoldings:
    """One app's holdings: its rows, and the distinct people behind them (a person counts once however
    many fields and companies)."""

    app_id: int
    rows: list[HoldingRow]
    may_hold: int  # people with at least one field the vendor may still hold
    should_not_hold: int  # people with at least one field past retention or of an ended connection
    companies_past_retention: int  # companies with at least one person the vendor should not hold


def retention_of(session: Session, app: AppStanding, default_days: int) -> dict[str, int]:
    """Days per field the vendor accepted for the app's version in force (its latest version when none
    is in force yet); fields it declared nothing for are absent (the caller applies the default)."""
    try:
        version = versions.version_view(session, app, app.approved_version)
    except NotFound:  # an app with no version yet: every field gets the default
        return {}
    return {field: int(item["days"]) for field, item in version.retention.items() if "days" in item}


def _per_field(per_company: dict[tuple[str, str], BitMap]) -> dict[str, BitMap]:
    merged: dict[str, BitMap] = {}
    for (field, mode), people in per_company.items():
        if mode in HELD_MODES:
            merged[field] = merged.get(field, BitMap()) | people
    return merged


def app_holdings(
    session: Session,
    apps: Sequence[AppStanding],
    *,
    now: datetime,
    default_days: int,
    company_ids: Collection[int] | None = None,
) -> list[AppHoldings]:
    """The holdings of each of ``apps`` (of ``company_ids`` only, when given), as of ``now``."""
    received = received_per_app(session, [app.id for app in apps])
    canaries = canary_ids(session, app_ids=[app.id for app in apps]) if apps else BitMap()
    companies = {c for per in received.values() for c in per}
    names = company_names(session, companies)
    out = []
    for app in apps:
        everything: PerCompany = received[app.id]
        if company_ids is not None:
            everything = {c: v for c, v in everything.items() if c in company_ids}
        fields = sorted({f for per in everything.values() for f, m in per if m in HELD_MODES})
        declared = retention_of(session, app, default_days)
        days = {f: declared.get(f, default_days) for f in fields}
        recent = received_after(session, app.id, {f: now - timedelta(days=d) for f, d in days.items()})
        ended = ended_company_ids(session, app.id)
        rows: list[HoldingRow] = []
        may_people, gone_people = BitMap(), BitMap()
        past = 0
        for company_id in sorted(everything, key=lambda c: names[c].public_id):
            all_fields = _per_field(everything[company_id])
            kept = {} if company_id in ended else _per_field(recent.get(company_id, {}))
            company_past = False
            for field in sorted(all_fields):
                held = all_fields[field] - canaries
                may = kept.get(field, BitMap()) & held
                gone = held - may
                may_people |= may
                gone_people |= gone
                company_past = company_past or bool(gone)
                rows.append(
                    HoldingRow(app.slug, names[company_id].public_id, field, len(may), len(gone), days[field])
                )
            past += company_past
        out.append(AppHoldings(app.id, rows, len(may_people), len(gone_people), past))
    return out
