"""``appwarden ledger …``: verify the chain, index and checkpoints, publish a checkpoint, and ask who
received a customer's data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from appwarden.db.session import get_database
from appwarden.errors import InvalidInput
from appwarden.terminal import out, print_json, progress

ledger_app = typer.Typer(help="The access ledger.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


CheckpointOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--checkpoint",
        help="A signed checkpoint the chain must extend (repeatable); default: every file in the "
        "checkpoint directory.",
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key", help="Verifier key (<name>+<id>+<key>) for the checkpoints; default: the platform's."
    ),
]


@ledger_app.command("verify")
def verify_cmd(checkpoint: CheckpointOpt = None, key: KeyOpt = None, json_mode: JsonOpt = False) -> None:
    """Check every entry's hash, the chain, the index and that the chain extends each signed checkpoint;
    exit 1 and list the problems if anything fails."""
    from appwarden.ledger.checkpoint import read_note
    from appwarden.ledger.note import NoteError, Verifier
    from appwarden.ledger.verify import verify

    notes = [(str(path), read_note(path)) for path in checkpoint] if checkpoint else None
    try:
        verifier = Verifier.parse(key) if key else None
    except NoteError as exc:
        raise InvalidInput(f"--key: {exc}", parameter="key") from None
    console = out(json_mode)
    with progress(json_mode=json_mode) as bar:
        task = bar.add_task("verifying ledger", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = verify(get_database(), actor="cli", on_progress=on_progress, checkpoints=notes, key=verifier)
    if json_mode:
        print_json(report.to_dict())
    else:
        console.print(report.summary(), highlight=False, soft_wrap=True)
        against = {c["detail"] for c in report.checkpoints if c["status"] != "extends"}
        chain = [p for p in report.problems if p.detail not in against]
        if chain:
            table = Table("problem", "position", "count", "detail")
            for problem in chain:
                table.add_row(problem.kind, str(problem.position), str(problem.count), problem.detail)
            console.print(table)
        for entry in report.checkpoints:  # one unwrapped line each: what was cut, said exactly
            if entry["status"] != "extends":
                console.print(f"{entry['status']}: {entry['detail']}", highlight=False, soft_wrap=True)
    if not report.intact:
        raise typer.Exit(1)


@ledger_app.command("checkpoint")
def checkpoint_cmd(json_mode: JsonOpt = False) -> None:
    """Sign the ledger's head and publish it to the checkpoint directory (run it from cron); print it."""
    from appwarden.ledger.checkpoint import publish_checkpoint

    published = publish_checkpoint(get_database(), reason="ledger checkpoint command", actor="cli")
    if json_mode:
        print_json(published.to_dict())
        return
    sys.stdout.write(published.note)
    sys.stderr.write(f"wrote {published.path}\nverifier key: {published.vkey}\n")


@ledger_app.command("who-has")
def who_has_cmd(
    customer: Annotated[str, typer.Argument(help="The customer's public id (cus_…).")],
    json_mode: JsonOpt = False,
) -> None:
    """Every app, field and mode this customer's data went to, with first and last time."""
    from appwarden.ledger.queries import who_has

    if not customer.startswith("cus_"):
        raise InvalidInput(f"{customer!r} is not a customer public id (cus_…)")
    rows = who_has(get_database(), customer)
    if json_mode:
        print_json([_jsonable(row) for row in rows])
        return
    console = out(False)
    if not rows:
        console.print(f"no app has received any of {customer}'s data")
        return
    table = Table("app", "field", "mode", "first (UTC)", "last (UTC)", "entries", title=f"who has {customer}")
    for row in rows:
        table.add_row(
            row["app"],
            row["field"],
            row["mode"],
            row["first_at"].strftime("%Y-%m-%d %H:%M:%S"),
            row["last_at"].strftime("%Y-%m-%d %H:%M:%S"),
            str(row["entries"]),
        )
    console.print(table)


@ledger_app.command("unused")
def unused_cmd(
    app: Annotated[str, typer.Argument(metavar="APP", help="Slug or client id.")],
    days: Annotated[int, typer.Option(help="The window, in days before now.")] = 90,
    json_mode: JsonOpt = False,
) -> None:
    """The scopes APP is approved for but has not used (no delivery of that field in that mode, in any
    company) in the last DAYS days; scopes approved more recently are "not yet judged"."""
    from appwarden.db.base import utcnow
    from appwarden.ledger.usage import unused_report

    with get_database().session() as session:
        report = unused_report(session, app, now=utcnow(), days=_days(days))
    if json_mode:
        print_json(report)
        return
    render_unused(out(False), report)


def render_unused(console: Any, report: dict[str, Any]) -> None:
    """The text form of an unused-scopes report (``appwarden apps show`` can print it under the app)."""
    table = Table("scope", "status", "approved since (UTC)", "last used (UTC)")
    for row in report["scopes"]:
        table.add_row(
            row["scope"], row["status"], row["approved_since"][:19], (row["last_used_at"] or "never")[:19]
        )
    console.print(table)
    unused = report["unused"]
    verdict = ", ".join(unused) if unused else "none"
    console.print(f"unused in {report['days']} days: {verdict}", highlight=False, soft_wrap=True)


def _days(days: int) -> int:
    if not 1 <= days <= 3650:
        raise InvalidInput("--days must be between 1 and 3650", parameter="days")
    return days


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "first_at": row["first_at"].isoformat(), "last_at": row["last_at"].isoformat()}
