"""``appwarden canary …``: issue (backfill), list, alerts, and the SMTP receiver for the canary domain."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.table import Table

from appwarden.config import get_settings
from appwarden.db.session import get_database
from appwarden.errors import InvalidInput
from appwarden.terminal import out, print_json, stderr

canary_app = typer.Typer(help="Canary records and the secondary-damage watch.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
AppOpt = Annotated[str | None, typer.Option("--app", help="Only this app (slug or client id).")]


@canary_app.command("issue")
def issue(
    app_ref: AppOpt = None,
    company: Annotated[str | None, typer.Option("--company", help="Only this company (public id).")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Issue canaries to every active connection that has none (connections made before canaries)."""
    from appwarden.canary.service import backfill

    settings = get_settings()
    with get_database(settings).session() as session:
        rows = backfill(session, settings=settings, app_ref=app_ref, company_ref=company, actor="cli")
    if json_mode:
        print_json({"connections": rows, "issued": sum(r["issued"] for r in rows)})
        return
    console = out(False)
    for row in rows:
        console.print(f"{row['app']} × {row['company']} ({row['connection']}): {row['issued']} canaries")
    console.print(f"{sum(r['issued'] for r in rows)} canaries issued to {len(rows)} connections")


@canary_app.command("list")
def list_(app_ref: AppOpt = None, json_mode: JsonOpt = False) -> None:
    """List canaries with their values (synthetic people) and the connection each was issued to."""
    from appwarden.canary.service import list_canaries

    with get_database().session() as session:
        rows = list_canaries(session, app_ref=app_ref)
    if json_mode:
        print_json(rows)
        return
    table = Table("app", "company", "connection", "name", "phone", "email", "alerts")
    for r in rows:
        table.add_row(
            r["app"], r["company"], r["connection"], r["name"], r["phone"], r["email"], str(r["alerts"])
        )
    console = out(False)
    console.print(table)
    console.print(f"{len(rows)} canaries")


@canary_app.command("alerts")
def alerts_(
    app_ref: AppOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 200,
    json_mode: JsonOpt = False,
) -> None:
    """Secondary-damage alerts: contact with a canary, naming the app and connection it was issued to."""
    from appwarden.canary.alerts import list_alerts

    with get_database().session() as session:
        rows = list_alerts(session, app_ref=app_ref, limit=limit)
    if json_mode:
        print_json(rows)
        return
    table = Table("received", "app", "company", "connection", "kind", "sender", "subject", "incident")
    for r in rows:
        table.add_row(
            r["received_at"],
            r["app"],
            r["company"],
            r["connection"],
            f"{r['kind']} ({r['channel']})",
            r["sender"] or "",
            r["subject"] or "",
            r["incident"] or "(none open)",
        )
    console = out(False)
    console.print(table)
    console.print(f"{len(rows)} alerts")


@canary_app.command("listen")
def listen(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 2525,
) -> None:
    """Receive mail for the canary domain over SMTP until Ctrl-C; each mail to a canary is an alert."""
    from appwarden.canary.listen import build_controller

    settings = get_settings()
    controller = build_controller(get_database(settings), settings, host=host, port=port)
    try:
        controller.start()
    except Exception as exc:  # bind failures surface from the server thread in several types
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc}", parameter="port") from exc
    stderr.print(f"canary receiver for @{settings.canary_domain} on smtp://{host}:{port} (Ctrl-C to stop)")
    stop = threading.Event()
    # SIGTERM (systemd, docker stop) stops as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):  # the controller serves on its own thread
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stderr.print("stopping")
        controller.stop()
