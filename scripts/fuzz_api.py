"""Fuzz the whole OpenAPI of the real app with schemathesis: no 5xx, no response contradicting its schema.

Builds its own world in a temporary directory with the project's service functions (a fresh migrated
SQLite, a company with stores and customers, two listed apps connected to it with an access token each),
serves ``appwarden.app.create_app`` with uvicorn on a free loopback port, reads customers through it and
opens an incident, then runs ``st run`` over ``/openapi.json`` three times: unauthenticated, with an app's
access token, and with the admin key (last: it may suspend or close things). Real ids are offered as
hints for half the generated path and query values. Prints a summary; exits 1 on any failure (a 5xx, an
undocumented status or content type, a body or header that contradicts the schema) so ``.ci/run`` fails.

    uv run python scripts/fuzz_api.py [--max-examples N] [--seed S] [--only unauthenticated|app|admin]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What "contradicts its schema" means here: a 5xx, an undocumented status, content type, header or body.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
ADMIN_KEY = f"fuzz-admin-{secrets.token_urlsafe(16)}"
APP_SCOPES = [
    "customers.name:raw",
    "customers.name_kana:masked",
    "customers.phone:token",
    "customers.email:masked",
    "customers.points:raw",
    "transactions:read",
]
VICTIM_SCOPES = ["customers.name:raw", "customers.phone:masked", "customers.address:raw"]


@dataclass
class Run:
    """One schemathesis run: its name, the header it sends, and what came back."""

    name: str
    authorization: str | None
    exit_code: int = -1
    cases: int = 0
    operations: int = 0
    failures: int = 0
    server_errors: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass
class World:
    """What the fuzzer is told about, so that some requests name things that exist."""

    token: str  # fuzz-app's access token
    victim_token: str  # fuzz-victim's, whose incident gives the incident routes something to read
    company: str
    customer: str  # a customer's public id (admin routes)
    customer_ids: list[str] = field(default_factory=list)  # fuzz-app's ids for customers (its routes)
    tokens: list[str] = field(default_factory=list)  # fuzz-app's phone tokens (detokenize)
    incident: str = ""


def mail_sink() -> Any:
    """A local SMTP server that accepts and discards mail, so that sending notices really sends (with
    no SMTP server configured, notices are a 503 by design)."""
    import socket

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    os.environ["APPWARDEN_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    return controller


def prepare(workdir: Path) -> World:
    """A migrated database with one company and its customers, and two listed apps connected to it with
    an access token each. Settings come from the environment, as ``appwarden serve`` reads them."""
    data = workdir / "data"
    data.mkdir()
    os.environ.update(
        {
            "APPWARDEN_DATA_DIR": str(data),
            "APPWARDEN_DATABASE_URL": f"sqlite:///{data / 'appwarden.db'}",
            "APPWARDEN_ADMIN_API_KEY": ADMIN_KEY,
            "APPWARDEN_SECRET_KEY": secrets.token_urlsafe(32),
        }
    )
    os.environ.pop("APPWARDEN_REDIS_URL", None)

    from sqlalchemy import select

    from appwarden.config import get_settings
    from appwarden.db.base import utcnow
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import get_database
    from appwarden.marketplace import service as marketplace
    from appwarden.oauth.service import OAuthStore
    from appwarden.oauth.tokens import issue_token
    from appwarden.platform import service as platform
    from appwarden.platform.models import Customer
    from appwarden.wiring import wire

    wire()  # derived indexes follow customer writes, as in every entry point
    settings = get_settings()
    upgrade(settings.database_url)
    db = get_database(settings)
    with db.session() as session:
        company = platform.create_company(session, "Fuzz Company", "owner@fuzz.example")
        stores = [platform.create_store(session, company, f"Fuzz Store {i}") for i in range(2)]
        owner = platform.create_user(
            session, "fuzz-owner", secrets.token_urlsafe(12), role="company_owner", company=company
        )
        platform.add_customers(
            session,
            company,
            [
                {
                    "home_store_id": stores[i % 2].id,
                    "name": f"山田 太郎{i}",
                    "name_kana": f"ヤマダ タロウ{i}",
                    "phone": f"090-0000-{i:04d}",
                    "email": f"taro{i}@fuzz.example",
                    "points": i * 10,
                    "rank": "gold",
                }
                for i in range(20)
            ],
        )
        tokens = []
        for slug, scopes in (("fuzz-app", APP_SCOPES), ("fuzz-victim", VICTIM_SCOPES)):
            app = marketplace.register_app(
                session, slug=slug, name=slug, redirect_uris=[f"https://{slug}.example/cb"], scopes=scopes
            ).app
            connection = OAuthStore(session, now=utcnow()).grant_connection(
                app, owner, scopes, settings=settings
            )
            issued = issue_token(session, connection, " ".join(scopes), access_ttl=3600, refresh_ttl=3600)
            tokens.append(str(issued["access_token"]))
        customer = session.scalars(
            select(Customer.public_id).where(Customer.company_id == company.id)
        ).first()
        return World(tokens[0], tokens[1], company.public_id, str(customer))


def populate(world: World, base_url: str) -> None:
    """Through the HTTP API, as apps and the security team would: both apps read customers (ledgered),
    then an incident is opened about fuzz-victim. Fills in the ids the fuzzer gets as hints."""
    import httpx

    with httpx.Client(base_url=base_url) as http:
        for token in (world.victim_token, world.token):
            page = http.get("/v1/customers?limit=20", headers={"Authorization": f"Bearer {token}"})
            page.raise_for_status()
        for row in page.json()["data"]:
            world.customer_ids.append(row["id"])
            if row.get("phone"):
                world.tokens.append(row["phone"])
        opened = http.post(
            "/admin/incidents",
            json={"apps": ["fuzz-victim"], "reason": "fuzzing"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        opened.raise_for_status()
        world.incident = opened.json()["incident"]


def hints(world: World, path: Path) -> Path:
    """A schemathesis.toml that offers real ids for half of the values it generates for these names, so
    requests get past "not found" into each route's own logic."""
    known = {
        "path.slug": ["fuzz-app", "fuzz-victim"],
        "path.incident": [world.incident],
        "path.customer": [world.customer],
        "path.customer_id": world.customer_ids[:5],
        "query.company": [world.company],
        "query.app": ["fuzz-app", "fuzz-victim"],
        "body.apps[*]": ["fuzz-victim"],
        "body.tokens[*]": world.tokens[:5],
    }
    lines = []
    for i, values in enumerate(known.values()):
        lines += [f"[dictionaries.d{i}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"{key}" = {{ dictionary = "d{i}", probability = 0.5 }}' for i, key in enumerate(known)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def serve(log: Any) -> tuple[str, Any]:
    """Serve the real app on a free loopback port in a thread; returns its base URL and the server.
    The app's own log (a traceback for each 500) goes to ``log``, apart from schemathesis' report."""
    import structlog
    import uvicorn

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log))

    from appwarden.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=0, log_level="critical", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # uvicorn has no startup callback; poll its flag
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("fuzz: the app did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server


def fuzz(run: Run, base_url: str, reports: Path, config: Path, *, max_examples: int, seed: int) -> None:
    """``st run`` over the whole schema; fills ``run`` from its JSON report."""
    report = reports / f"{run.name}.json"
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        # One worker: Python 3.11's ast module is not thread-safe and Hypothesis parses lambdas with it
        # ("AST constructor recursion depth mismatch", CPython gh-106905).
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--generation-database",
        "none",
        "--continue-on-failure",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if run.authorization:
        command += ["--header", f"Authorization: {run.authorization}"]
    print(f"\n== schemathesis: {run.name}", flush=True)
    started = time.monotonic()
    # The token and key are throwaway values made for this run; --output-sanitize (on by default) masks
    # the Authorization header in what schemathesis prints anyway.
    run.exit_code = subprocess.run(command, check=False, cwd=reports).returncode
    run.seconds = time.monotonic() - started
    if report.exists():
        _read_report(run, json.loads(report.read_text()))


def _read_report(run: Run, report: dict[str, Any]) -> None:
    """Counts from schemathesis' JSON run report."""
    run.cases = int(report.get("test_cases", {}).get("generated", 0))
    run.operations = int(report.get("operations", {}).get("tested", 0))
    failures = report.get("failures") or []
    run.failures = sum(int(f.get("count", 1)) for f in failures)
    run.server_errors = sum(int(f.get("count", 1)) for f in failures if f.get("code") == "ST101")
    run.errors = len(report.get("errors") or [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", 30)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 20240901)))
    parser.add_argument("--report-dir", type=Path, help="Keep schemathesis' JSON reports here.")
    parser.add_argument("--only", choices=["unauthenticated", "app", "admin"], action="append")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="appwarden-fuzz-"))
    try:
        smtp = mail_sink()
        world = prepare(workdir)
        server_log = (workdir / "server.log").open("w", encoding="utf-8")
        base_url, server = serve(server_log)
        populate(world, base_url)
        reports = (args.report_dir or workdir / "reports").resolve()
        reports.mkdir(parents=True, exist_ok=True)
        config = hints(world, workdir / "schemathesis.toml")
        runs = [
            Run("unauthenticated", None),
            Run("app", f"Bearer {world.token}"),
            Run("admin", f"Bearer {ADMIN_KEY}"),
        ]
        runs = [r for r in runs if not args.only or r.name in args.only]
        for run in runs:
            fuzz(run, base_url, reports, config, max_examples=args.max_examples, seed=args.seed)
        server.should_exit = True
        smtp.stop()
        server_log.close()
        log_tail = (workdir / "server.log").read_text(encoding="utf-8").splitlines()[-80:]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n== fuzz summary (seed {args.seed}, up to {args.max_examples} examples per operation and phase)")
    for run in runs:
        verdict = "ok" if run.exit_code == 0 else "FAILED"
        print(
            f"  {run.name:<16} {verdict:<7} operations {run.operations:>3}  test cases {run.cases:>6}  "
            f"failures {run.failures:>3} (5xx {run.server_errors})  errors {run.errors}  {run.seconds:6.1f}s"
        )
    failed = [r.name for r in runs if r.exit_code != 0]
    if failed and log_tail:
        print("\n== the app's log, last lines", *log_tail, sep="\n")
    bad = sum(r.failures + r.errors for r in runs)
    if failed:
        print(f"fuzz: FAILED ({', '.join(failed)}); see the schemathesis output above", file=sys.stderr)
    else:
        print("fuzz: ok: no 5xx, no response contradicts its schema")
    # The plain closing line CI readers count (schemathesis' own last line is pytest-shaped, with no tally).
    print(f"fuzz: {sum(r.cases for r in runs) - bad} passed, {bad} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
