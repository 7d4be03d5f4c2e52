"""``appwarden holdings``: what each vendor may still hold, and what it should no longer hold."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from appwarden.db.session import get_database
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
