"""``appwarden demo``: build a synthetic platform, drive app traffic through the real HTTP API, summarise
what the ledger recorded, then serve."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from appwarden.demo.catalog import SCENARIOS, Plan, plan_default, plan_incident
from appwarden.errors import InvalidInput

DEFAULTS = {"companies": 10, "stores": 40, "customers": 50_000}


def make_plan(
    scenario: str | None, *, companies: int | None, stores: int | None, customers: int | None, seed: int
) -> Plan:
    """The plan for the options given; bad combinations are a one-line user error."""
    sizes = {"companies": companies, "stores": stores, "customers": customers}
    if scenario is not None:
        if scenario not in SCENARIOS:
            raise InvalidInput(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
        given = [f"--{k}" for k, v in sizes.items() if v is not None]
        if given:
            raise InvalidInput(f"{', '.join(given)} cannot be combined with --scenario (its sizes are fixed)")
        return plan_incident(seed=seed, scenario=scenario)
    c, s, n = (v if v is not None else DEFAULTS[k] for k, v in sizes.items())
    if c < 1:
        raise InvalidInput("--companies must be at least 1")
    if s < c:
        raise InvalidInput("--stores must be at least --companies (every company has a store)")
    if n < c:
        raise InvalidInput("--customers must be at least --companies")
    return plan_default(companies=c, stores=s, customers=n, seed=seed)


def demo(
    scenario: Annotated[
        str | None,
        typer.Option(
            help="A reference scenario instead of the default platform: incident-2026 (monitor auditing) or "
            "incident-2026-guarded (the same vendor, the default policy active)."
        ),
    ] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Exit after the summary.")] = False,
    json_mode: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON (only) on stdout.")
    ] = False,
    companies: Annotated[int | None, typer.Option(help="Contract companies (default 10).")] = None,
    stores: Annotated[int | None, typer.Option(help="Stores in all (default 40).")] = None,
    customers: Annotated[int | None, typer.Option(help="Customers in all (default 50,000).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed builds the same platform.")] = 2026,
    host: Annotated[str, typer.Option(help="Interface to serve on afterwards.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on afterwards.")] = 8000,
) -> None:
    """Build a synthetic platform (Faker ja_JP), install apps through the real OAuth flow, drive their
    traffic through the real data API, print what the ledger recorded, then serve on 127.0.0.1:8000."""
    from appwarden.config import get_settings
    from appwarden.demo.runner import run_demo
    from appwarden.demo.summary import render
    from appwarden.terminal import out, print_json
    from appwarden.terminal import progress as progress_bar

    plan = make_plan(scenario, companies=companies, stores=stores, customers=customers, seed=seed)
    # Claim the serving port before the long build, so a busy port is reported at once, not after it.
    listener = None if no_serve else _listen(host, port)
    settings = get_settings()
    try:
        with progress_bar(json_mode=json_mode) as bar:
            result = run_demo(settings, plan, progress=bar)
        # Where this command serves afterwards (and where `appwarden serve` would, with the same options).
        result["base_url"] = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if json_mode:
            print_json(result)
        else:
            render(result, out(json_mode))
        if listener is None:
            return
        import uvicorn

        from appwarden.app import create_app
        from appwarden.db.session import get_database

        out(json_mode).print(f"serving on http://{host}:{port} (Ctrl-C stops)")
        app = create_app(settings, get_database(settings))
        config = uvicorn.Config(app, log_level="warning")
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        if listener is not None:
            listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or a one-line error when it is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput(
            f"cannot serve on {host}:{port} ({exc.strerror}); pass --port or --no-serve"
        ) from None
    sock.listen(128)
    return sock
