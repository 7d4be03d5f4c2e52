"""``appwarden alerts list|show|ack|throttles|unthrottle``: the monitor's alerts and throttles."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from appwarden.db.session import get_database
from appwarden.terminal import out, print_json

alerts_app = typer.Typer(help="Monitoring alerts: list, show, acknowledge.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


@alerts_app.command("list")
def list_(
    state: Annotated[str, typer.Option(help="open, acknowledged or all.")] = "open",
    app_ref: Annotated[str | None, typer.Option("--app", help="Only this app (slug or client id).")] = None,
    detector: Annotated[str | None, typer.Option(help="Only this detector, e.g. mirror.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 100,
    json_mode: JsonOpt = False,
) -> None:
    """Alerts, newest first (open ones unless --state says otherwise)."""
    from appwarden.db.base import utcnow
    from appwarden.marketplace.standing import find
    from appwarden.monitor import service
    from appwarden.monitor.risk import risk_scores

    with get_database().session() as session:
        rows = service.describe(
            session,
            service.list_alerts(session, app_ref=app_ref, detector=detector, state=state, limit=limit),
        )
        if json_mode:
            print_json(rows)
            return
        # The table shows each app's risk beside its alerts: one score per app listed, not per alert.
        apps = [find(session, slug) for slug in sorted({row["alert"]["app"] for row in rows})]
        scores = risk_scores(session, apps, utcnow())
        risk = {app.slug: scores[app.id].score for app in apps}
    columns = ("id", "raised", "detector", "severity", "app", "risk", "company", "observed", "acknowledged")
    table = Table(*columns)
    for row in rows:
        a = row["alert"]
        observed = ", ".join(f"{k}={v}" for k, v in a["observed"].items())
        ack = row["acknowledged"]
        table.add_row(
            a["id"],
            a["raised_at"],
            a["detector"],
            a["severity"],
            a["app"],
            f"{risk[a['app']]:g}",
            a["company"] or "(all)",
            observed,
            f"{ack['by']} {ack['at']}" if ack else "",
        )
    console = out(False)
    console.print(table)
    console.print(f"{len(rows)} alerts")


@alerts_app.command("show")
def show(
    alert_id: Annotated[str, typer.Argument(help="Alert id (alr_…).")], json_mode: JsonOpt = False
) -> None:
    """One alert: its numbers against the baseline and the ledger entries behind it."""
    from appwarden.monitor import service

    with get_database().session() as session:
        (row,) = service.describe(session, [service.get_alert(session, alert_id)])
    if json_mode:
        print_json(row)
        return
    _print(row)


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="Alert id (alr_…).")],
    note: Annotated[str | None, typer.Option(help="What was done about it.")] = None,
    actor: Annotated[str, typer.Option(help="Who acknowledges (recorded in the event).")] = "cli",
    json_mode: JsonOpt = False,
) -> None:
    """Acknowledge an alert (recorded as a monitor:alert:acknowledged security event)."""
    from appwarden.monitor import service

    with get_database().session() as session:
        alert = service.acknowledge(session, alert_id, actor=actor, note=note)
        (row,) = service.describe(session, [alert])
    if json_mode:
        print_json(row)
        return
    _print(row)


@alerts_app.command("throttles")
def throttles_(
    app_ref: Annotated[str | None, typer.Option("--app", help="Only this app (slug or client id).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Lifted and expired ones too.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Throttles set by alerts' actions (those in force unless --all)."""
    from appwarden.monitor import throttles

    with get_database().session() as session:
        rows = throttles.describe(
            session, throttles.list_throttles(session, app_ref=app_ref, include_past=all_)
        )
    if json_mode:
        print_json(rows)
        return
    table = Table("id", "alert", "app", "company", "factor", "expires", "state")
    for r in rows:
        table.add_row(
            r["id"],
            r["alert"],
            r["app"],
            r["company"] or "(all)",
            f"{r['factor']:g}",
            r["expires_at"],
            r["state"],
        )
    console = out(False)
    console.print(table)
    console.print(f"{len(rows)} throttles")


@alerts_app.command("unthrottle")
def unthrottle(
    ref: Annotated[str, typer.Argument(help="An alert id (alr_…): its throttles; or an app: all of its.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the security history).")],
    actor: Annotated[str, typer.Option(help="Who lifts it (recorded in the event).")] = "cli",
    json_mode: JsonOpt = False,
) -> None:
    """Lift throttles: the connection gets its usual quotas back (every worker within seconds)."""
    from appwarden.monitor import throttles

    with get_database().session() as session:
        rows = throttles.describe(session, throttles.lift(session, ref, actor=actor, reason=reason))
    if json_mode:
        print_json(rows)
        return
    for r in rows:
        out(False).print(f"{r['id']} lifted: {r['app']}, company {r['company'] or '(all)'}")


def _print(row: dict) -> None:
    a, ack = row["alert"], row["acknowledged"]
    console = out(False)
    console.print(f"[bold]{a['id']}[/bold] {a['detector']} ({a['severity']}) raised {a['raised_at']}")
    console.print(f"app {a['app']}, company {a['company'] or '(all)'}")
    console.print(f"window {a['window']['start']} – {a['window']['end']}; action {a['action']}")
    console.print(f"observed {a['observed']}; baseline {a['baseline']}")
    console.print(f"ledger entries {', '.join(map(str, a['ledger_entries'])) or '(none)'}")
    console.print(f"acknowledged by {ack['by']} at {ack['at']}: {ack['note'] or ''}" if ack else "open")
