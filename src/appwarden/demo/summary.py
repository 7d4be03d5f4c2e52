"""The demo's summary, read back from the ledger (entries and the bitmap index), never from the generator."""

from __future__ import annotations

from typing import Any

import numpy as np
from pyroaring import BitMap
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from appwarden.canary.lookup import canary_ids
from appwarden.demo.catalog import APPS, APPS_BY_SLUG, INVOICE_PLUS
from appwarden.ledger import census as ledger_census
from appwarden.ledger import service as ledger
from appwarden.ledger.usage import last_deliveries
from appwarden.marketplace import service as marketplace
from appwarden.marketplace.scopes import CUSTOMER_FIELDS
from appwarden.monitor import outbox
from appwarden.monitor import service as monitor_service
from appwarden.platform import census as platform_census


def app_summaries(session: Session) -> list[dict[str, Any]]:
    """Per demo app: companies it received data from, distinct home stores of the people it received,
    and distinct people per field across modes (``ledger.service.persons``). Canaries are delivered and
    recorded like anyone, but they are nobody: they are taken out of every count."""
    ids, homes = platform_census.home_stores_by_id(session)
    canaries = canary_ids(session)
    out: list[dict[str, Any]] = []
    for spec in APPS:
        app_id = marketplace.app_id_of(session, spec.slug)
        if app_id is None:
            continue
        companies = ledger_census.companies_served(session, app_id)
        keys = _index_keys(session, app_id)
        everyone = BitMap()
        fields: dict[str, int] = {}
        for field in CUSTOMER_FIELDS:  # in the canonical order
            people = BitMap()
            for f, mode in keys:
                if f == field:
                    people |= ledger.persons(session, app_id=app_id, field=field, mode=mode)
            people -= canaries
            if people:
                fields[field] = len(people)
                everyone |= people
        received = np.array(everyone.to_array(), dtype=np.int64)
        stores = int(np.unique(homes[np.searchsorted(ids, received)]).size) if received.size else 0
        out.append({"slug": spec.slug, "companies": companies, "stores": stores, "fields": fields})
    return out


def _index_keys(session: Session, app_id: int) -> list[tuple[str, str]]:
    """Every (field, mode) the ledger index holds deliveries of for ``app_id``."""
    return list(last_deliveries(session, app_id))


def ledger_state(session: Session) -> dict[str, Any]:
    """How many entries the ledger holds and the hash at its head."""
    state = ledger_census.ledger_state(session)
    return {"entries": state.entries, "head": state.head}


def platform_counts(session: Session) -> dict[str, int]:
    """Companies, stores and (real) customers on the platform; canaries are counted apart."""
    counts = platform_census.platform_counts(session)
    return {
        "customers": counts.customers,
        "canaries": len(canary_ids(session)),  # one canary per customer id (its primary key)
        "companies": counts.companies,
        "stores": counts.stores,
    }


def render(summary: dict[str, Any], console: Console) -> None:
    """The people-facing summary: one row per app, then logins and where to look."""
    table = Table(title="What each app received, per the ledger index (distinct people)")
    table.add_column("app")
    table.add_column("vendor")
    table.add_column("companies", justify="right")
    table.add_column("stores", justify="right")
    table.add_column("people per field")
    for app in summary["apps"]:
        spec = APPS_BY_SLUG.get(app["slug"])
        fields = ", ".join(f"{f} {n:,}" for f, n in app["fields"].items()) or "(no customer fields)"
        table.add_row(
            app["slug"], spec.vendor if spec else "", str(app["companies"]), str(app["stores"]), fields
        )
    console.print(table)
    console.print(
        f"platform: {summary['companies']} companies, {summary['stores']} stores, "
        f"{summary['customers']:,} customers; ledger: {summary['ledger']['entries']:,} entries, "
        f"head {summary['ledger']['head']}"
    )
    market = summary.get("marketplace", [])
    if market:
        by_state: dict[str, list[str]] = {}
        for row in market:
            by_state.setdefault(row["state"], []).append(row["slug"])
        console.print(
            "marketplace (screened through /vendor and /admin/reviews): "
            + "; ".join(f"{state} {', '.join(slugs)}" for state, slugs in sorted(by_state.items()))
        )
        overdue = [r["slug"] + " (grandfathered)" * r["grandfathered"] for r in market if r["audit_overdue"]]
        listed = ", ".join(overdue) or "none"
        console.print(f"audits overdue: {listed} (see [bold]appwarden audits due[/bold])")
    invoice = next((a for a in summary["apps"] if a["slug"] == INVOICE_PLUS), None)
    if invoice is not None:
        console.print(
            f"[bold]{INVOICE_PLUS}[/bold] received, per the ledger index: "
            f"{invoice['fields'].get('name', 0):,} names and {invoice['fields'].get('phone', 0):,} phone "
            f"numbers from {invoice['companies']} companies ({invoice['stores']} stores)"
        )
    if summary.get("leak"):
        console.print(
            f"the leaked dump (as the forum post had it): {summary['leak']}\n"
            f"  attribute it: [bold]appwarden attribute {summary['leak']}[/bold]"
        )
    guarded = summary.get("guarded")
    if guarded is not None:
        steps = (
            "; ".join(f"{a['raised_at']} {a['detector']} → {a['action']}" for a in guarded["actions"])
            or "none"
        )
        console.print(
            f"[bold]guarded replay[/bold] (default policy, active): {guarded['app']} received raw names or "
            f"phones of {guarded['raw_people']:,} people; first alert at {guarded['first_alert_at']} after "
            f"{guarded['first_alert_after_people']} people; actions: {steps}; "
            f"false alerts on the other apps: {guarded['false_alerts']}"
        )
    elif summary.get("monitor"):
        m = summary["monitor"]
        console.print(
            f"monitor ({m['mode']}): {m['alerts_raised']} alerts; first on {INVOICE_PLUS} at "
            f"{m['first_alert_at']}, the dump appeared {m['leaked_at']}"
        )
    story = summary.get("obligations")
    if story:
        render_obligations(story, console)
    logins = Table(title="Company owner logins (demo data only)")
    for column in ("company", "company_id", "username", "password"):
        logins.add_column(column)
    for login in summary["logins"]:
        logins.add_row(login["company"], login["company_id"], login["username"], login["password"])
    console.print(logins)
    if summary.get("console_logins"):
        people = Table(
            title=f"Console logins, one per role (demo data only): {summary['console_logins'][0]['url']}"
        )
        for column in ("role", "of", "username", "password"):
            people.add_column(column)
        for login in summary["console_logins"]:
            people.add_row(login["role"], login["of"], login["username"], login["password"])
        console.print(people)
    console.print(f"admin API key: {summary['admin_api_key']}")
    console.print(f"built in {summary['elapsed_seconds']:.1f} s")


def render_obligations(story: dict[str, Any], console: Console) -> None:
    """The weeks after the traffic (``demo.obligations``): who disconnected, what each vendor received
    and attested, and what the monitor raised."""
    console.print(
        "[bold]vendor obligations[/bold] (the demo's calendar runs on after the traffic): disconnected "
        + ", ".join(
            f"{slug} ({conn}, by {story['disconnected_by'][slug]})"
            for slug, conn in story["disconnected"].items()
        )
    )
    table = Table(title="Erasure requests, signed webhooks to the vendors' receiver")
    for column in ("request", "app", "topic", "delivery", "attestation"):
        table.add_column(column)
    for request in story["requests"]:
        table.add_row(
            request["id"], request["app"], request["topic"], request["status"], request["attestation"]
        )
    console.print(table)
    if story["canary_mailed"]:
        mailed = story["canary_mailed"]
        console.print(
            f"mail reached {mailed['email']} ({mailed['customer']}), a canary the vendor attested erased"
        )
    for alert in story["alerts"]:
        console.print(f"alert [bold]{alert['detector']}[/bold] ({alert['severity']}) on {alert['app']}")
    console.print("see [bold]appwarden erasure attestations[/bold] and [bold]appwarden alerts list[/bold]")


RAW_IDENTITY = ("name", "phone")


def received(session: Session, app_id: int) -> dict[str, int]:
    """Distinct people ``app_id`` has received so far, per the ledger index (canaries left out): in any
    field and mode, and with a raw name or phone."""
    canaries = canary_ids(session)
    keys = _index_keys(session, app_id)
    anyone, raw = BitMap(), BitMap()
    for field, mode in keys:
        people = ledger.persons(session, app_id=app_id, field=field, mode=mode)
        anyone |= people
        if mode == "raw" and field in RAW_IDENTITY:
            raw |= people
    return {"people": len(anyone - canaries), "raw_people": len(raw - canaries)}


def alerts_by_app(db: Any) -> list[dict[str, Any]]:
    """Every alert the replay raised, oldest first: what, on which app, and what was done."""
    with db.session() as session:
        rows = monitor_service.describe(
            session, monitor_service.list_alerts(session, state="all", limit=1000)
        )
        did = outbox.action_outcomes(session, [row["alert"]["id"] for row in rows])
    keep = ("id", "detector", "severity", "app", "company", "observed", "baseline", "action", "raised_at")
    return [
        {**{k: row["alert"][k] for k in keep}, "did": did.get(row["alert"]["id"])} for row in reversed(rows)
    ]


def guarded_report(session: Session, replayed: dict[str, Any]) -> dict[str, Any]:
    """The guarded replay's figures, from the ledger (people) and the alerts (what the monitor did)."""
    app = marketplace.get_app(session, INVOICE_PLUS)
    alerts = replayed["alerts"]
    first = replayed.get("before_first_alert") or {}
    false = [a for a in alerts if a["app"] != INVOICE_PLUS]
    return {
        "app": INVOICE_PLUS,
        "raw_people": received(session, app.id)["raw_people"],
        "first_alert_after_people": first.get("people"),
        "first_alert_at": replayed["first_alert_at"],
        "actions": [
            {k: a[k] for k in ("id", "detector", "severity", "company", "raised_at", "action", "did")}
            for a in alerts
            if a["app"] == INVOICE_PLUS and a["action"] != "alert"
        ],
        "false_alerts": len(false),
    }
