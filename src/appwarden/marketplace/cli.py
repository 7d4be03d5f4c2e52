"""``appwarden apps …`` (register, list, show, suspend, restrict, relist, rotate-secret, set-redirect-uris)
and ``appwarden vendors …`` (create, keys, issue-key, revoke-key)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from appwarden.db.base import utcnow
from appwarden.db.session import get_database
from appwarden.marketplace import facts, service
from appwarden.marketplace.vendors import (
    create_vendor,
    get_vendor,
    issue_key,
    key_prefix,
    keys_of,
    revoke_key,
)
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy
from appwarden.terminal import out, print_json

apps_app = typer.Typer(help="Marketplace apps.", no_args_is_help=True)
vendors_app = typer.Typer(help="Vendor accounts.", no_args_is_help=True)
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
    """List every app, riskiest first, with its risk score, listing state and approved scopes."""
    with get_database().session() as session:
        rows = facts.app_views(session, service.list_apps(session), utcnow())
    if json_mode:
        print_json(rows)
        return
    table = Table("risk", "slug", "name", "state", "tier", "reviewed", "approved scopes")
    for row in rows:
        scopes = " ".join(str(s) for s in row["approved_scopes"])
        reviewed = "yes" if row["reviewed"] else ("grandfathered" if row["grandfathered"] else "no")
        table.add_row(
            f"{facts.risk_score(row):g}",
            str(row["slug"]),
            str(row["name"]),
            str(row["listing_state"]),
            str(row["tier"]),
            reviewed,
            scopes,
        )
    out(False).print(table)


@apps_app.command("show")
def show(
    app_ref: Annotated[str, typer.Argument(metavar="APP", help="Slug or client id.")],
    json_mode: JsonOpt = False,
) -> None:
    """Show one app, with its risk score and the parts behind it, and its unused scopes."""
    with get_database().session() as session:
        data = facts.app_view(session, service.get_app(session, app_ref), utcnow())
    if json_mode:
        print_json(data)
        return
    console = out(False)
    risk = data.pop(facts.RISK, None)
    for key, value in data.items():
        console.print(f"{key:>16}: {' '.join(map(str, value)) if isinstance(value, list) else value}")
    if isinstance(risk, dict):
        console.print(
            f"{'risk':>16}: {risk['score']:g} = "
            + " × ".join(f"{name} {part['factor']:g}" for name, part in risk["parts"].items())
        )
        for name, part in risk["parts"].items():
            detail = ", ".join(f"{k}={v}" for k, v in part.items() if k != "factor")
            console.print(f"{name:>16}: {part['factor']:g} ({detail})")


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


AppArg = Annotated[str, typer.Argument(metavar="APP", help="Slug or client id.")]


def _show_state(data: dict[str, object], json_mode: bool) -> None:
    if json_mode:
        print_json(data)
        return
    policy = f" ({data['restricted_policy']})" if data.get("restricted_policy") else ""
    out(False).print(f"{data['slug']} is now {data['listing_state']}{policy}")


@apps_app.command("restrict")
def restrict(
    app_ref: AppArg,
    reason: Annotated[str, typer.Option(help="Why (recorded in the security history).")],
    policy: Annotated[
        RestrictedPolicy, typer.Option(help="token: raw identifying fields as tokens; pause: nothing.")
    ] = RestrictedPolicy.TOKEN,
    json_mode: JsonOpt = False,
) -> None:
    """Restrict a listed app: it keeps working with reduced access, by policy."""
    with get_database().session() as session:
        app = service.transition(
            session,
            service.get_app(session, app_ref),
            LifecycleState.RESTRICTED,
            actor="cli",
            reason=reason,
            policy=policy,
        )
        data = service.app_summary(app, session=session)
    _show_state(data, json_mode)


@apps_app.command("relist")
def relist(
    app_ref: AppArg,
    reason: Annotated[str, typer.Option(help="Why, e.g. the audit it passed (recorded).")],
    json_mode: JsonOpt = False,
) -> None:
    """Relist a restricted app."""
    with get_database().session() as session:
        app = service.relist_app(session, service.get_app(session, app_ref), actor="cli", reason=reason)
        data = service.app_summary(app, session=session)
    _show_state(data, json_mode)


@apps_app.command("rotate-secret")
def rotate_secret(app_ref: AppArg, json_mode: JsonOpt = False) -> None:
    """Issue a new client secret (shown only now); the old one stops working at once."""
    with get_database().session() as session:
        app = service.get_app(session, app_ref)
        data = {"slug": app.slug, "client_secret": service.rotate_client_secret(session, app, actor="cli")}
    if json_mode:
        print_json(data)
        return
    out(False).print(f"client_secret: {data['client_secret']}")


@apps_app.command("set-redirect-uris")
def set_redirect_uris(
    app_ref: AppArg,
    uris: Annotated[list[str], typer.Argument(metavar="URI...", help="The exact redirect URIs.")],
    json_mode: JsonOpt = False,
) -> None:
    """Replace an app's redirect URIs."""
    with get_database().session() as session:
        app = service.set_redirect_uris(session, service.get_app(session, app_ref), uris, actor="cli")
        data = service.app_summary(app, session=session)
    if json_mode:
        print_json(data)
        return
    out(False).print(f"{data['slug']}: {' '.join(data['redirect_uris'])}")  # type: ignore[arg-type]


@vendors_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The vendor's name (委託先).")],
    email: Annotated[str, typer.Option(help="Contact address (audit reminders go here).")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, envvar="APPWARDEN_VENDOR_PASSWORD", help="≥ 12 characters."
        ),
    ],
    json_mode: JsonOpt = False,
) -> None:
    """Create a vendor account and print its API key (shown only now)."""
    with get_database().session() as session:
        account = create_vendor(session, name, email=email, password=password)
        data = {"vendor": account.vendor.public_id, "name": account.vendor.name, "api_key": account.api_key}
    if json_mode:
        print_json(data)
        return
    out(False).print(f"vendor {data['name']} ({data['vendor']})\napi_key: {data['api_key']}")


VendorArg = Annotated[str, typer.Argument(help="The vendor's name or public id.")]


@vendors_app.command("keys")
def keys(vendor_ref: VendorArg, json_mode: JsonOpt = False) -> None:
    """The vendor's API keys: prefix, issued, revoked (the keys themselves are never kept)."""
    with get_database().session() as session:
        rows = keys_of(session, get_vendor(session, vendor_ref))
    if json_mode:
        print_json(rows)
        return
    table = Table("prefix", "issued", "revoked")
    for row in rows:
        table.add_row(str(row["prefix"]), str(row["created_at"]), str(row["revoked_at"] or "-"))
    out(False).print(table)


@vendors_app.command("issue-key")
def issue_key_command(vendor_ref: VendorArg, json_mode: JsonOpt = False) -> None:
    """A new API key for the vendor (shown only now); its other keys keep working until revoked."""
    with get_database().session() as session:
        vendor = get_vendor(session, vendor_ref)
        key = issue_key(session, vendor, actor="cli")
        data = {"vendor": vendor.public_id, "api_key": key, "prefix": key_prefix(key)}
    if json_mode:
        print_json(data)
        return
    out(False).print(f"api_key: {key}")


@vendors_app.command("revoke-key")
def revoke_key_command(
    vendor_ref: VendorArg,
    prefix: Annotated[str, typer.Argument(help="The key's prefix, as `vendors keys` lists it.")],
    json_mode: JsonOpt = False,
) -> None:
    """Revoke one of the vendor's API keys at once."""
    with get_database().session() as session:
        data = revoke_key(session, get_vendor(session, vendor_ref), prefix, actor="cli")
    if json_mode:
        print_json(data)
        return
    out(False).print(f"revoked {data['prefix']} at {data['revoked_at']}")
