"""Incident commands: ``appwarden incident blast-radius INCIDENT [--as-of TIME] [--json]``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from appwarden.terminal import out, print_json

if TYPE_CHECKING:  # the module is imported lazily: every CLI start pays for numpy otherwise
    from appwarden.incident.blast_radius import BlastRadius


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``appwarden incident``."""
    app.command("blast-radius")(blast_radius_cmd)


def blast_radius_cmd(
    incident: Annotated[str, typer.Argument(help="The incident's id (inc_…).")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Only deliveries recorded at or before this ISO 8601 time (UTC if no offset)."
        ),
    ] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Distinct people per field and mode, per company and store, from the ledger index."""
    from appwarden.db.session import get_database
    from appwarden.incident.blast_radius import compute_blast_radius, parse_time, record_counts

    at = parse_time(as_of) if as_of is not None else None
    db = get_database()
    radius = compute_blast_radius(db, incident, as_of=at)
    record_counts(db, radius, actor="cli")
    if json_mode:
        print_json(radius.to_dict())
    else:
        render(out(False), radius)


def render(console: Console, radius: BlastRadius) -> None:
    """The blast radius for people: fields × modes, then each company with its stores."""
    from appwarden.incident.blast_radius import format_time

    console.print(f"[bold]{radius.incident}[/] ({', '.join(radius.apps)}) as of {format_time(radius.as_of)}")
    summary = f"[bold red]{radius.persons_exposed:,}[/] people exposed in {len(radius.companies)} companies"
    if radius.canaries_excluded:
        summary += f" ({radius.canaries_excluded} canaries excluded)"
    console.print(summary)
    if not radius.fields:
        return  # nothing was delivered (by then): no empty tables
    fields = Table("field", "exposed", "raw", "masked", "token", title="people per field and mode")
    for name, c in radius.fields.items():
        fields.add_row(name, f"{c.exposed:,}", f"{c.raw:,}", f"{c.masked:,}", f"{c.token:,}")
    console.print(fields)
    names = list(radius.fields)
    companies = Table("company", "store", "people exposed", *names, title="per company and store")
    for company in radius.companies:
        companies.add_row(
            f"[bold]{company.name}[/] {company.id}",
            "",
            f"{company.persons_exposed:,}",
            *(f"{company.fields[n].exposed:,}" if n in company.fields else "0" for n in names),
        )
        for store in company.stores:
            companies.add_row(
                "", f"{store.name} {store.id}", f"{store.persons_exposed:,}", *("" for _ in names)
            )
    console.print(companies)
