"""Kill switch reach: `appwarden serve --workers 4` under load, `appwarden incident open` as a subprocess,
and for each worker the time from the command's return to that worker's first refusal (goal ≤ 1 s).

    uv run python bench/kill_switch.py [--workers 4] [--threads 16] [--redis redis://127.0.0.1:6379/14]
                                       [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench]

A real server on a free port over a prepared database (SQLite in a temporary directory by default), client
threads calling `GET /v1/customers` with the app's tokens (a new connection per request, so the kernel
spreads them over the workers), workers told apart by the `X-Worker-Pid` response header (turned on for
the bench by `APPWARDEN_WORKER_PID_HEADER`). Also reported: any success that *started* after the command
returned (must be 0) and the command's own wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Call:
    started: float
    ended: float
    status: int
    code: str | None
    pid: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(env: dict[str, str], companies: int) -> list[str]:
    """Migrate and fill the database in this process; return access tokens of invoice-plus per company."""
    os.environ.update(env)
    from appwarden import wiring
    from appwarden.config import get_settings
    from appwarden.db.migrate import upgrade
    from appwarden.db.session import get_database
    from appwarden.marketplace import service as marketplace
    from appwarden.oauth.models import Connection
    from appwarden.oauth.tokens import issue_token
    from appwarden.platform import service as platform

    wiring.wire()  # customers go in through the platform's write path, blind index included
    get_settings.cache_clear()
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    db = get_database(settings)
    tokens: list[str] = []
    with db.session() as session:
        reg = marketplace.register_app(
            session,
            slug="invoice-plus",
            name="Invoice Plus",
            redirect_uris=["https://invoice-plus.example/cb"],
            scopes=["customers.name:raw", "customers.phone:raw"],
        )
        for c in range(companies):
            company = platform.create_company(session, f"Company {c}", f"co{c}@example.jp")
            store = platform.create_store(session, company, f"Store {c}")
            rows = [{"home_store_id": store.id, "name": f"山田 {c}-{i}", "phone": f"090-{c:04d}-{i:04d}"}
                    for i in range(20)]  # fmt: skip
            platform.add_customers(session, company, rows)
            conn = Connection(company_id=company.id, app_id=reg.app.id, scopes=list(reg.app.approved_scopes))
            session.add(conn)
            session.flush()
            scope = " ".join(reg.app.approved_scopes)
            response = issue_token(session, conn, scope, access_ttl=3600, refresh_ttl=None)
            tokens.append(str(response["access_token"]))
    db.dispose()
    return tokens


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling a starting server, not synchronising with the code under test
    raise SystemExit("server did not become healthy")


def seen(calls: list[Call], lock: threading.Lock) -> set[str]:
    with lock:
        return {c.pid for c in calls if c.status == 200}


def load(
    base: str, tokens: list[str], n: int, stop: threading.Event, calls: list[Call], lock: threading.Lock
) -> None:
    def worker(i: int) -> None:
        # No keep-alive: every request is a fresh connection, so every worker process gets some.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=base, timeout=10, limits=limits) as http:
            k = i
            while not stop.is_set():
                headers = {"Authorization": f"Bearer {tokens[k % len(tokens)]}"}
                k += 1
                started = time.monotonic()
                try:
                    r = http.get("/v1/customers?limit=5", headers=headers)
                except httpx.HTTPError:
                    continue
                ended = time.monotonic()
                code = r.json().get("code") if r.status_code != 200 else None
                call = Call(started, ended, r.status_code, code, r.headers.get("x-worker-pid", "?"))
                with lock:
                    calls.append(call)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--companies", type=int, default=8)
    parser.add_argument("--redis", default=None, help="Redis URL: the kill is also published there.")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (emptied!); SQLite by default.")
    parser.add_argument("--after", type=float, default=3.0, help="Seconds of load after the command.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kill-bench-"))
    env = {
        "APPWARDEN_DATA_DIR": str(tmp),
        "APPWARDEN_DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'appwarden.db'}",
        "APPWARDEN_ADMIN_API_KEY": "bench-admin-key",
        "APPWARDEN_SECRET_KEY": "bench-secret-key",
        "APPWARDEN_WORKER_PID_HEADER": "true",  # off in production; the bench tells workers apart by it
    }
    if args.redis:
        env["APPWARDEN_REDIS_URL"] = args.redis
        import redis

        r = redis.Redis.from_url(args.redis)
        for key in r.scan_iter("appwarden:*"):
            r.delete(key)
    else:
        os.environ.pop("APPWARDEN_REDIS_URL", None)
    if args.database_url:
        from sqlalchemy import create_engine, text

        engine = create_engine(args.database_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    tokens = prepare(env, args.companies)
    exe = shutil.which("appwarden", path=str(Path(sys.executable).parent)) or "appwarden"
    child_env = {**os.environ, **env}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [exe, "serve", "--port", str(port), "--workers", str(args.workers)],
        env=child_env,
        start_new_session=True,
    )
    try:
        wait_healthy(base, server)
        stop, lock = threading.Event(), threading.Lock()
        calls: list[Call] = []
        driver = threading.Thread(target=load, args=(base, tokens, args.threads, stop, calls, lock))
        driver.start()
        # Warm up until every worker has answered (spawned workers start slowly on a busy machine).
        deadline = time.monotonic() + 120
        while len(seen(calls, lock)) < args.workers and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the bench's own observations
        time.sleep(1.0)  # a second of steady load before the kill
        began = time.monotonic()
        done = subprocess.run(
            [exe, "incident", "open", "--app", "invoice-plus", "--reason", "bench", "--json"],
            env=child_env,
            capture_output=True,
            text=True,
        )
        returned = time.monotonic()
        if done.returncode != 0:
            raise SystemExit(f"incident open failed: {done.stderr}")
        time.sleep(args.after)  # keep the load on to observe every worker's refusals
        stop.set()
        driver.join()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    report(calls, began, returned, args)


def report(calls: list[Call], began: float, returned: float, args: argparse.Namespace) -> None:
    by_pid: dict[str, list[Call]] = defaultdict(list)
    for c in sorted(calls, key=lambda c: c.ended):
        by_pid[c.pid].append(c)
    backend = "redis+database" if args.redis else "database"
    db_kind = "postgresql" if args.database_url else "sqlite"
    print(
        f"kill switch bench: {len(by_pid)} workers ({db_kind}, signal via {backend}), {args.threads} threads"
    )
    print(f"incident open: {(returned - began) * 1000:.0f} ms wall (process start included)")
    head = ("worker pid", "calls", "ok before", "first refusal after return", "late ok")
    print(f"{head[0]:>10}  {head[1]:>6}  {head[2]:>9}  {head[3]:>26}  {head[4]:>7}")
    worst = float("-inf")
    for pid, items in sorted(by_pid.items()):
        ok_before = sum(1 for c in items if c.status == 200 and c.ended <= returned)
        refusals = [c for c in items if c.code == "app_delisted"]
        late = sum(1 for c in items if c.status == 200 and c.started > returned)
        if refusals:
            first = refusals[0].ended - returned
            worst = max(worst, first)
            shown = f"{first * 1000:+.1f} ms"
        else:
            shown = "never"
            worst = float("inf")
        print(f"{pid:>10}  {len(items):>6}  {ok_before:>9}  {shown:>26}  {late:>7}")
    others = {(c.status, c.code) for c in calls if c.status != 200 and c.code != "app_delisted"}
    if others:
        print(f"other answers: {sorted(others, key=str)}")
    print(
        f"max over workers: {worst * 1000:+.1f} ms (goal ≤ 1000 ms; negative: refused at the commit, before"
    )
    print("the command had finished exiting; 'late ok' counts successes that started after the return)")


if __name__ == "__main__":
    main()
