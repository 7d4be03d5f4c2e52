"""The ``appwarden`` command line: one Typer app composing each capability's commands.

Exit codes: 0 ok, 1 user error (one line on stderr), 2 usage.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from appwarden import logs, wiring
from appwarden.errors import AppwardenError

app = typer.Typer(
    name="appwarden",
    help="The security system around a POS platform's app marketplace.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations to the configured database (SQLite under ./.appwarden by default)."""
    from appwarden.config import get_settings
    from appwarden.db.migrate import upgrade
    from appwarden.terminal import stderr

    settings = get_settings()
    if settings.database_url is None:
        settings.ensure_data_dir()
    upgrade(settings.resolved_database_url, revision)
    stderr.print(f"database at {_redact(settings.resolved_database_url)} is at {revision}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the data API (/v1), the OAuth server, the admin and vendor APIs, the web console (/console,
    Japanese and English, one login per person) and the API docs (/docs, offline); one JSON log line
    per request on stderr."""
    import os

    import uvicorn

    from appwarden.config import get_settings
    from appwarden.db.migrate import upgrade
    from appwarden.terminal import stderr

    settings = get_settings()
    if settings.database_url is None:
        settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    base_url = settings.base_url if "base_url" in settings.model_fields_set else listening_url(host, port)
    # Workers are fresh processes that read their settings from the environment: the issuer goes there.
    os.environ["APPWARDEN_BASE_URL"] = base_url
    # Every worker runs the monitor's background run (one at a time runs the detectors: monitor.runner).
    os.environ.setdefault("APPWARDEN_MONITOR_BACKGROUND", "true")
    get_settings.cache_clear()  # one worker runs in this process: it must read the same
    stderr.print(
        f"appwarden listening on {listening_url(host, port, literal=True)} "
        f"({workers} worker{'s' if workers != 1 else ''}); issuer and base URL {base_url}",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(
        "appwarden.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",  # its start-up lines say when the server is ready
        log_config=None,  # our handlers (appwarden.logs) render uvicorn's lines too
        access_log=False,  # RequestLog writes the request lines, without paths' personal data
        server_header=False,
    )


def listening_url(host: str, port: int, *, literal: bool = False) -> str:
    """The base URL for a bound address: a wildcard bind is reached as localhost unless ``literal``."""
    if not literal and host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _register() -> None:
    from appwarden.attribution.cli import attribute
    from appwarden.canary.cli import canary_app
    from appwarden.demo.cli import demo
    from appwarden.incident.cli import incident_app
    from appwarden.ledger.cli import ledger_app
    from appwarden.marketplace.cli import apps_app, vendors_app
    from appwarden.monitor.cli import alerts_app
    from appwarden.obligations.cli import holdings, records_app
    from appwarden.obligations.erasure_cli import erasure_app
    from appwarden.screening.cli import audits_app, companies_app, review_app, reviewers_app

    app.add_typer(apps_app, name="apps")
    app.add_typer(vendors_app, name="vendors")
    app.add_typer(review_app, name="review")
    app.add_typer(audits_app, name="audits")
    app.add_typer(reviewers_app, name="reviewers")
    app.add_typer(companies_app, name="companies")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(incident_app, name="incident")
    app.add_typer(canary_app, name="canary")
    app.add_typer(alerts_app, name="alerts")
    app.command("demo")(demo)
    app.command("attribute")(attribute)
    app.command("holdings")(holdings)
    app.add_typer(records_app, name="records")
    app.add_typer(erasure_app, name="erasure")


_register()


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv``; domain errors become one line on stderr and exit code 1."""
    # Log lines go to stderr: stdout is for results, and ``--json`` output must stay parseable. The
    # handler follows the current sys.stderr, so a replaced stream (tests, redirection) is followed.
    logs.configure(level=logging.WARNING if argv[:1] != ["serve"] else logging.INFO)
    wiring.wire()  # commands write customers (demo, canary issuance) only through wired write paths
    try:
        app(args=argv, prog_name="appwarden")
    except SystemExit as exc:  # Typer/Click finished: usage errors exit 2 with their message printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AppwardenError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except DBAPIError as exc:
        # Usually an unmigrated or unreachable database; never show a traceback to the operator.
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        sys.stderr.write(
            f"error: database error: {reason} (is it reachable and migrated? `appwarden db upgrade`)\n"
        )
        return 1
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
