"""``appwarden apps …``: register, list, show and suspend marketplace apps."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from appwarden.db.session import get_database
from appwarden.marketplace import service
from appwarden.marketplace.models import Vendor
from appwarden.terminal import out, print_json

apps_app = typer.Typer(help="Marketplace apps.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


@apps_app.command("register")
def register(
    slug: Annotated[str, typer.Option(help="URL-safe identifier, e.g. invoice-plus.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    redirect_uri: Annotated[
        list[str], typer.Option("--redirect-uri", help="Exact redirect URI (repeatable).")
    ],
    scopes: Annotated[
        str, typer.Option(help='Approved scopes, e.g. "customers.name:raw customers.phone:masked".')
    ],
    vendor: Annotated[str | None, typer.Option(help="Vendor (委託先) name.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Register a listed app and print its client id and secret (the secret is shown only now)."""
    with get_database().session() as session:
        reg = service.register_app(
            session, slug=slug, name=name, redirect_uris=redirect_uri, scopes=scopes, vendor_name=vendor
        )
        data = service.app_summary(reg.app) | {"client_secret": reg.client_secret}
    if json_mode:
        print_json(data)
        return
    console = out(False)
    console.print(f"registered [bold]{slug}[/bold] ({data['listing_state']})")
    console.print(f"client_id:     {data['client_id']}")
    console.print(f"client_secret: {data['client_secret']}")
    console.print(
        "[yellow]store the secret now: it is kept only as a hash and cannot be shown again[/yellow]"
    )


@apps_app.command("list")
def list_(json_mode: JsonOpt = False) -> None:
    """List every app with its listing state and approved scopes."""
    with get_database().session() as session:
        rows = [service.app_summary(a) for a in service.list_apps(session)]
    if json_mode:
        print_json(rows)
        return
    table = Table("slug", "name", "state", "approved scopes")
    for row in rows:
        scopes = " ".join(str(s) for s in row["approved_scopes"])  # type: ignore[attr-defined]
        table.add_row(str(row["slug"]), str(row["name"]), str(row["listing_state"]), scopes)
    out(False).print(table)


@apps_app.command("show")
def show(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="Slug or client id.")],
    json_mode: JsonOpt = False,
) -> None:
    """Show one app."""
    with get_database().session() as session:
        app = service.get_app(session, app_ref)
        vendor = session.get(Vendor, app.vendor_id) if app.vendor_id else None
        data = service.app_summary(app, vendor)
    if json_mode:
        print_json(data)
        return
    console = out(False)
    for key, value in data.items():
        console.print(f"{key:>16}: {' '.join(value) if isinstance(value, list) else value}")


@apps_app.command("suspend")
def suspend(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="Slug or client id.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the security history).")] = "",
    json_mode: JsonOpt = False,
) -> None:
    """Suspend an app: the broker refuses its calls until it is listed again."""
    with get_database().session() as session:
        app = service.suspend_app(session, service.get_app(session, app_ref), actor="cli", reason=reason)
        data = service.app_summary(app)
    if json_mode:
        print_json(data)
        return
    out(False).print(f"{data['slug']} is now {data['listing_state']}")
