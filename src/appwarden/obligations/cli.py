"""``appwarden holdings`` (what each vendor may still hold, and what it should no longer hold) and
``appwarden records provision|person`` (APPI records of provision to third parties)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from appwarden.db.session import get_database
from appwarden.errors import InvalidInput
from appwarden.terminal import out, print_json


def holdings(
    app_ref: Annotated[str | None, typer.Option("--app", help="Only this app (slug or client id).")] = None,
    company_ref: Annotated[
        str | None, typer.Option("--company", help="Only this company (public id or name).")
    ] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Per app × company × field, from the ledger: the people the vendor may hold now (delivered within
    the retention it accepted, connection active) and those it should no longer hold."""
    from appwarden.db.base import utcnow
    from appwarden.obligations.service import holdings as compute

    with get_database().session() as session:
        rows = compute(session, app_ref=app_ref, company_ref=company_ref, now=utcnow())
    if json_mode:
        print_json([row.to_dict() for row in rows])
        return
    table = Table("app", "company", "field", "retention", "may hold", "should not hold")
    for row in rows:
        table.add_row(
            row.app,
            row.company,
            row.field,
            f"{row.retention_days} d",
            f"{row.may_hold:,}",
            f"[red]{row.should_not_hold:,}[/red]" if row.should_not_hold else "0",
        )
    console = out(False)
    console.print(table)
    if not rows:
        console.print("no app holds any customer's data (raw or masked) according to the ledger")


records_app = typer.Typer(
    help="APPI records of provision to third parties (第三者提供の記録, 法29条), from the ledger.",
    no_args_is_help=True,
)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} must be a date YYYY-MM-DD, not {text!r}", parameter=option) from None


@records_app.command("provision")
def provision_cmd(
    company: Annotated[str, typer.Option("--company", help="The company (co_… or name).")],
    since: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD, Japan time (default 3 years ago).")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD (default today).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or pdf.")] = "csv",
    people: Annotated[bool, typer.Option("--people", help="One row per person (csv, json).")] = False,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write to this file (pdf needs it).")] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """The company's records of provision: per app and day, the recipient (the app's vendor), the data
    items, the people (count; the list with --people), the date and the consent on record."""
    from appwarden.db.base import utcnow
    from appwarden.obligations.service import provision, provision_document, provision_range

    if fmt not in ("csv", "pdf"):
        raise InvalidInput(f"unknown format {fmt!r} (choose csv or pdf)", parameter="format")
    if fmt == "pdf" and out_path is None:
        raise InvalidInput("--format pdf needs --out FILE (a PDF is not printed to the terminal)")
    first, last = provision_range(utcnow(), _day(since, "--from"), _day(until, "--to"))
    with get_database().session() as session:
        if json_mode:
            company_id, records = provision(
                session, company_ref=company, since=first, until=last, with_people=people
            )
            print_json(
                {
                    "company": company_id,
                    "from": first.isoformat(),
                    "to": last.isoformat(),
                    "records": [
                        r.to_dict() | ({"customers": list(r.customers)} if people else {}) for r in records
                    ],
                }
            )
            return
        body, records = provision_document(
            session, company_ref=company, since=first, until=last, fmt=fmt, with_people=people
        )
    if out_path is not None:
        out_path.write_bytes(body)
        out(False).print(f"wrote {out_path} ({len(records)} records)")
        return
    text = body.decode("utf-8")
    sys.stdout.write(text)
    sys.stdout.flush()


@records_app.command("person")
def person_cmd(
    customer: Annotated[
        str, typer.Argument(metavar="CUSTOMER", help="Customer id (cus_…), phone or e-mail.")
    ],
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """For a person's disclosure request: every recipient, field and period their data went to."""
    from appwarden.obligations.service import person_records

    with get_database().session() as session:
        rows = person_records(session, customer)
    if json_mode:
        print_json(rows)
        return
    table = Table("customer", "recipient", "app", "field", "mode", "from (UTC)", "to (UTC)", "entries")
    for row in rows:
        table.add_row(
            row["customer"],
            row["recipient"],
            row["app"],
            row["field"],
            row["mode"],
            row["from"][:19],
            row["to"][:19],
            str(row["entries"]),
        )
    console = out(False)
    console.print(table)
    if not rows:
        console.print("no app received this person's data according to the ledger")
