"""Fuzz the whole OpenAPI of the real app with schemathesis: no 5xx, no response contradicting its schema.

Builds its own world in a temporary directory (a fresh migrated SQLite, a company with stores and
customers, a listed app with a connection and an access token), serves ``appwarden.app.create_app`` with
uvicorn on a free loopback port, and runs ``st run`` over ``/openapi.json`` three times: unauthenticated,
with the app's access token, and with the admin key (the admin run last: it may suspend or kill things).
Prints one summary line per run and exits 1 on any failure, so ``.ci/run`` fails with it.

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
from dataclasses import dataclass
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


def prepare(workdir: Path) -> str:
    """A migrated database with one company, an app, its connection and an access token; returns the
    token. Settings come from the environment, as ``appwarden serve`` reads them."""
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
    for name in ("APPWARDEN_REDIS_URL", "APPWARDEN_SMTP_URL"):
        os.environ.pop(name, None)

    from appwarden.config import get_settings
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import get_database
    from appwarden.marketplace import service as marketplace
    from appwarden.oauth.service import OAuthStore
    from appwarden.oauth.tokens import issue_token
    from appwarden.platform import service as platform

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
        app = marketplace.register_app(
            session,
            slug="fuzz-app",
            name="Fuzz App",
            redirect_uris=["https://fuzz-app.example/cb"],
            scopes=APP_SCOPES,
        ).app
        store = OAuthStore(session, now=_now())
        connection = store.grant_connection(app, owner, APP_SCOPES, settings=settings)
        token = issue_token(
            session, connection, " ".join(connection.scopes), access_ttl=3600, refresh_ttl=3600
        )
    return str(token["access_token"])


def _now() -> Any:
    from appwarden.db.base import utcnow

    return utcnow()


def serve() -> tuple[str, Any]:
    """Serve the real app on a free loopback port in a thread; returns its base URL and the server."""
    import uvicorn

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


def fuzz(run: Run, base_url: str, reports: Path, *, max_examples: int, seed: int) -> None:
    """``st run`` over the whole schema; fills ``run`` from its JSON report."""
    report = reports / f"{run.name}.json"
    command = [
        str(Path(sys.executable).with_name("st")),
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
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", 25)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 20240901)))
    parser.add_argument("--report-dir", type=Path, help="Keep schemathesis' JSON reports here.")
    parser.add_argument("--only", choices=["unauthenticated", "app", "admin"], action="append")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="appwarden-fuzz-"))
    try:
        token = prepare(workdir)
        base_url, server = serve()
        reports = (args.report_dir or workdir / "reports").resolve()
        reports.mkdir(parents=True, exist_ok=True)
        runs = [
            Run("unauthenticated", None),
            Run("app", f"Bearer {token}"),
            Run("admin", f"Bearer {ADMIN_KEY}"),
        ]
        runs = [r for r in runs if not args.only or r.name in args.only]
        for run in runs:
            fuzz(run, base_url, reports, max_examples=args.max_examples, seed=args.seed)
        server.should_exit = True
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
    if failed:
        print(f"fuzz: FAILED ({', '.join(failed)}); see the schemathesis output above", file=sys.stderr)
        return 1
    print("fuzz: ok: no 5xx, no response contradicts its schema")
    return 0


if __name__ == "__main__":
    sys.exit(main())
