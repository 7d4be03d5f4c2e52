"""The ``appwarden`` command line: one Typer app composing each capability's commands.

Exit codes: 0 ok, 1 user error (one line on stderr), 2 usage.
"""

from __future__ import annotations

import sys
from typing import Annotated

import structlog
import typer
from sqlalchemy.exc import DBAPIError

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
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the data API, OAuth server, admin API and console."""
    import uvicorn

    from appwarden.config import get_settings
    from appwarden.db.migrate import upgrade

    settings = get_settings()
    if settings.database_url is None:
        settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    uvicorn.run("appwarden.asgi:app", host=host, port=port, workers=workers, log_level="warning")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _register() -> None:
    from appwarden.attribution.cli import attribute
    from appwarden.canary.cli import canary_app
    from appwarden.demo.cli import demo
    from appwarden.incident.cli import incident_app
    from appwarden.ledger.cli import ledger_app
    from appwarden.marketplace.cli import apps_app

    app.add_typer(apps_app, name="apps")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(incident_app, name="incident")
    app.add_typer(canary_app, name="canary")
    app.command("demo")(demo)
    app.command("attribute")(attribute)


_register()


def run(argv: list[str]) -> int:
    """Run the CLI on ``argv``; domain errors become one line on stderr and exit code 1."""
    # Log lines go to stderr: stdout is for results, and ``--json`` output must stay parseable.
    # The factory looks sys.stderr up per logger, so a replaced stream (tests, redirection) is followed.
    structlog.configure(logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr))
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
