"""``appwarden erasure list|deliver|worker|customer|data-request|set-endpoint``: erasure requests owed to
vendors, and their endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from appwarden.db.session import get_database
from appwarden.obligations.vocabulary import ErasureStatus, ErasureTopic
from appwarden.terminal import out, print_json

if TYPE_CHECKING:
    from appwarden.obligations.erasure import ErasureView

erasure_app = typer.Typer(
    help="Erasure requests to vendors (company.redact 48 h after a disconnection, …), signed webhooks.",
    no_args_is_help=True,
)


@erasure_app.command("list")
def list_requests(
    app_ref: Annotated[str | None, typer.Option("--app", help="Only this app (slug or client id).")] = None,
    status: Annotated[
        ErasureStatus | None, typer.Option("--status", help="Only requests in this state.")
    ] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Every erasure request (of one app), newest first, with its delivery state."""
    from appwarden.obligations.erasure import list_requests as compute

    with get_database().session() as session:
        rows = compute(session, app_ref=app_ref, status=status)
    _print_rows(rows, json_mode)


def _print_rows(rows: list[ErasureView], json_mode: bool) -> None:
    if json_mode:
        print_json([row.to_dict() for row in rows])
        return
    table = Table("id", "app", "company", "topic", "status", "attempts", "next attempt", "last error")
    for r in rows:
        table.add_row(
            r.id,
            r.app,
            r.company or "",
            r.topic,
            r.status,
            str(r.attempts),
            r.next_attempt_at.isoformat(timespec="seconds") if r.status == "pending" else "",
            r.last_error or "",
        )
    console = out(False)
    console.print(table)
    if not rows:
        console.print("no erasure request is owed to any vendor")


@erasure_app.command("deliver")
def deliver() -> None:
    """Owe company.redact for connections revoked 48 h ago or more, then send every due request once."""
    import httpx

    from appwarden.config import get_settings
    from appwarden.db.base import utcnow
    from appwarden.obligations.erasure import schedule_company_redacts
    from appwarden.obligations.erasure_delivery import deliver_due

    settings, db, now = get_settings(), get_database(), utcnow()
    with db.session() as session:
        scheduled = schedule_company_redacts(session, settings, now)
    with httpx.Client() as client:
        run = deliver_due(db, settings, now, client)
    out(False).print(
        f"scheduled {len(scheduled)} company.redact; delivered {run.delivered}, "
        f"failed {run.failed} (retried later), dead-lettered {run.dead}"
    )


@erasure_app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="One turn, then exit (cron, tests).")] = False,
    interval: Annotated[float, typer.Option("--interval", min=1.0, help="Seconds between two turns.")] = 60.0,
) -> None:
    """Each turn: owe the due company.redact and retention.expired requests, then send every due one."""
    import time

    import httpx

    from appwarden.config import get_settings
    from appwarden.db.base import utcnow
    from appwarden.obligations.erasure_worker import turn

    settings, db = get_settings(), get_database()
    console = out(False)
    with httpx.Client() as client:
        while True:
            result = turn(db, settings, utcnow(), client)
            console.print(result.line(), highlight=False)
            if once:
                return
            time.sleep(interval)  # the only wait; a turn itself is driven by the injected clock


def _person(topic: ErasureTopic, customer: str, actor: str, json_mode: bool) -> None:
    from appwarden.db.base import utcnow
    from appwarden.obligations.erasure import list_requests as compute
    from appwarden.obligations.erasure_triggers import person_requests

    with get_database().session() as session:
        ids = person_requests(session, customer, topic, now=utcnow(), actor=actor)
        rows = compute(session, public_ids=ids)
    if not json_mode and not rows:
        out(False).print(f"no app received this person's data: no {topic} is owed")
        return
    _print_rows(rows, json_mode)


@erasure_app.command("customer")
def customer_redact(
    customer: Annotated[
        str, typer.Argument(metavar="CUSTOMER", help="Customer id (cus_…), phone or e-mail.")
    ],
    actor: Annotated[str, typer.Option(help="Who raises it (recorded in the event).")] = "cli",
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """The person asked to be erased: owe customer.redact to every app that received them."""
    _person(ErasureTopic.CUSTOMER_REDACT, customer, actor, json_mode)


@erasure_app.command("data-request")
def data_request(
    customer: Annotated[
        str, typer.Argument(metavar="CUSTOMER", help="Customer id (cus_…), phone or e-mail.")
    ],
    actor: Annotated[str, typer.Option(help="Who raises it (recorded in the event).")] = "cli",
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """The person asked what the vendors hold: owe customer.data_request to every app that received them."""
    _person(ErasureTopic.CUSTOMER_DATA_REQUEST, customer, actor, json_mode)


@erasure_app.command("set-endpoint")
def set_endpoint(
    app_ref: Annotated[str, typer.Argument(help="The app (slug or client id).")],
    url: Annotated[str, typer.Argument(help="Where the vendor receives erasure requests (https).")],
    actor: Annotated[str, typer.Option(help="Who sets it (recorded in the event).")] = "cli",
) -> None:
    """Register (or replace) the app's erasure endpoint and print its new signing secret, once."""
    from appwarden.config import get_settings
    from appwarden.db.base import utcnow
    from appwarden.obligations.erasure import set_endpoint as register

    with get_database().session() as session:
        slug, secret = register(session, get_settings(), app_ref, url, actor=actor, now=utcnow())
    console = out(False)
    console.print(f"erasure endpoint of {slug} set; its signing secret (shown this once):", highlight=False)
    typer.echo(secret)


@erasure_app.command("attestations")
def attestations(
    app_ref: Annotated[str | None, typer.Option("--app", help="Only this app (slug or client id).")] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Every erasure request that asks for erasure, with its attestation: due, overdue, attested."""
    from appwarden.config import get_settings
    from appwarden.db.base import utcnow
    from appwarden.obligations.attestation import attestations as compute

    with get_database().session() as session:
        rows = compute(session, get_settings(), utcnow(), app_ref=app_ref)
    if json_mode:
        print_json([row.to_dict() for row in rows])
        return
    table = Table("request", "app", "company", "topic", "delivered", "deadline", "state", "attested by")
    for r in rows:
        by = r.attestation["attested_by"] if r.attestation else None
        table.add_row(
            r.request,
            r.app,
            r.company or "",
            r.topic,
            r.delivered_at.isoformat(timespec="seconds") if r.delivered_at else "",
            r.deadline.isoformat(timespec="seconds") if r.deadline else "",
            r.state,
            f"{by['name']} ({by['role']}) at {r.attestation['attested_at']}" if by and r.attestation else "",
        )
    console = out(False)
    console.print(table)
    if not rows:
        console.print("no erasure request asks any vendor to erase")


@erasure_app.command("check")
def check(
    app_ref: Annotated[str, typer.Argument(help="The app (slug or client id).")],
    actor: Annotated[str, typer.Option(help="Who runs the check (recorded in the event).")] = "cli",
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """The review's check: a signed endpoint.test must get 2xx, an unsigned and a wrongly signed one 401.
    Exits 1 when the check fails (the outcome is recorded either way)."""
    import httpx

    from appwarden.config import get_settings
    from appwarden.db.base import utcnow
    from appwarden.obligations.endpoint_check import check_endpoint

    with get_database().session() as session, httpx.Client() as client:
        outcome = check_endpoint(session, get_settings(), app_ref, client, actor=actor, now=utcnow())
    if json_mode:
        print_json(outcome.to_dict())
    else:
        verdict = "passed" if outcome.passed else "FAILED"
        out(False).print(f"erasure endpoint of {outcome.app} {verdict}: {outcome.reason}", highlight=False)
    if not outcome.passed:
        raise typer.Exit(1)
