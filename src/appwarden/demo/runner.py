"""The whole demo run: fresh database → platform → apps and owners → live server → OAuth installs →
app traffic → summary read back from the ledger."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from rich.progress import Progress

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.demo import replay
from appwarden.demo import summary as summaries
from appwarden.demo.catalog import APPS, APPS_BY_SLUG, INVOICE_PLUS, Connect, Plan
from appwarden.demo.console_logins import console_logins
from appwarden.demo.fresh import fresh_database
from appwarden.demo.generator import build_platform
from appwarden.demo.leak import write_leak
from appwarden.demo.obligations import run_story
from appwarden.demo.screening import (
    EXTRAS,
    INVOICING_VOLUME,
    Screening,
    lapse_one_audit,
    marketplace_states,
)
from appwarden.demo.traffic import (
    PAGE,
    AppSession,
    Credentials,
    DemoError,
    LiveServer,
    client,
    drive,
    install,
    run_parallel,
)
from appwarden.marketplace import service as marketplace
from appwarden.marketplace import standing
from appwarden.monitor.policy import Mode, MonitorPolicy
from appwarden.monitor.runtime import Monitor, monitor_of
from appwarden.platform import census
from appwarden.platform import service as platform
from appwarden.screening import audits
from appwarden.terminal import stderr

# Its audit lapses at the end of the demo run (a tier-3 app that holds raw e-mail and birthdays).
LAPSING_APP = "smile-crm"
WORKERS = 4  # client threads: the server overlaps one request's SQL with another's Python


def run_demo(settings: Settings, plan: Plan, *, progress: Progress, workers: int = WORKERS) -> dict[str, Any]:
    """Build ``plan`` into a fresh database and drive its traffic through a live server; return the
    summary (the ``--json`` document)."""
    started = time.perf_counter()
    db, wiped = fresh_database(settings)
    if wiped:
        stderr.print(f"demo: {wiped} (a demo run always starts from a fresh database)")
    try:
        result = _build_and_drive(settings, db, plan, progress=progress, workers=workers)
    except BaseException as exc:
        # Never leave a half-built platform behind: back to an empty, migrated database.
        fresh_database(settings)
        if isinstance(exc, Exception) and not isinstance(exc, DemoError):
            raise DemoError(f"demo failed ({type(exc).__name__}: {exc}); the database was reset") from exc
        raise
    result["elapsed_seconds"] = round(time.perf_counter() - started, 2)
    return result


def _build_and_drive(
    settings: Settings, db: Database, plan: Plan, *, progress: Progress, workers: int
) -> dict[str, Any]:
    step = progress.add_task("generating the platform", total=1)
    # The generator rebuilds the blind index in its transaction; the task shows once that rebuild starts.
    indexing = progress.add_task("blind index (keyed HMACs for leak matching)", total=None, visible=False)
    built = build_platform(
        db,
        plan,
        indexing=lambda done, total: progress.update(indexing, completed=done, total=total, visible=True),
    )
    progress.advance(step)

    credentials: dict[str, Credentials] = {}
    logins: list[dict[str, str]] = []
    with db.session() as session:
        if not plan.guarded:
            # Listed before screening existed (grandfathered): the app of the January 2026 incident.
            legacy = APPS_BY_SLUG[INVOICE_PLUS]
            reg = marketplace.register_app(
                session,
                slug=legacy.slug,
                name=legacy.name,
                redirect_uris=[legacy.redirect_uri],
                scopes=list(legacy.scopes),
                vendor_name=legacy.vendor,
                actor="demo",
            )
            credentials[legacy.slug] = Credentials(reg.app.client_id, reg.client_secret)
            # Its first audit is due at once, as for every app listed before screening (migration 0007).
            audits.schedule(
                session, standing.standing_of(session, reg.app.id), None, actor="demo", now=utcnow()
            )
        for i, company_public_id in enumerate(built.company_public_ids):
            company = platform.get_company(session, company_public_id)
            username, password = f"owner{i + 1:02d}", secrets.token_urlsafe(12)
            platform.create_user(session, username, password, role="company_owner", company=company)
            logins.append(
                {
                    "role": "company_owner",
                    "company": company.name,
                    "company_id": company.public_id,
                    "username": username,
                    "password": password,
                }
            )
        customers_of = census.customers_per_company(session)
        sales_of = census.transactions_per_company(session)

    def expected_rows(company: int, slug: str, untick: tuple[str, ...]) -> int:
        spec, company_id = APPS_BY_SLUG[slug], built.company_ids[company]
        # Each connection is also served its own canaries, issued when the owner consents.
        canaries = settings.canaries_per_connection if settings.canary_enabled else 0
        members = customers_of.get(company_id, 0) + canaries
        rows = members if set(spec.customer_scopes) - set(untick) else 0
        sales = sales_of.get(company_id, 0)
        if spec.transaction_pages:
            rows += sales if spec.transaction_pages < 0 else min(sales, spec.transaction_pages * PAGE)
        return rows

    # The biggest syncs first, so the threads finish together.
    order = sorted(plan.connections, key=lambda c: -expected_rows(c.company, c.slug, c.untick))
    installing = progress.add_task("installing apps (owner login + consent)", total=len(order))
    traffic = progress.add_task(
        "app traffic (rows received)", total=sum(expected_rows(c.company, c.slug, c.untick) for c in order)
    )
    app = create_app(settings, db)
    if plan.scenario is not None:
        # The replay: the default policy (active in the guarded one), on the simulated clock.
        policy = MonitorPolicy(mode=Mode.ACTIVE) if plan.guarded else MonitorPolicy()
        # Its quotas stay in this process: the replay resets their windows each simulated day, which
        # must never touch counters a configured Redis shares with real workers.
        app.state.monitor = Monitor(settings.model_copy(update={"redis_url": None}), db, policy)
    with LiveServer(app) as server:
        # Every other app comes through the vendor API and the review, as on a screened marketplace.
        screening = Screening(server.base_url, db, settings)
        try:
            listing = progress.add_task("screening (vendor API + review)", total=len(APPS) - 1 + len(EXTRAS))
            for spec in APPS:
                if spec.slug != INVOICE_PLUS:
                    credentials[spec.slug] = screening.list_app(spec)
                    progress.advance(listing)
                elif plan.guarded:  # screened like the rest, declaring an invoicing app's volume
                    credentials[spec.slug] = screening.list_app(spec, volume=INVOICING_VOLUME)
            for extra in EXTRAS:
                screening.stop_short(extra)
                progress.advance(listing)
        finally:
            screening.close()

        def install_one(i: int) -> dict[str, Any]:
            c = order[i]
            token = install(
                server.base_url,
                APPS_BY_SLUG[c.slug],
                credentials[c.slug],
                username=logins[c.company]["username"],
                password=logins[c.company]["password"],
                untick=c.untick,
            )
            progress.advance(installing)
            return token

        tokens = run_parallel([partial(install_one, i) for i in range(len(order))], workers)

        def drive_one(i: int) -> int:
            c = order[i]
            return drive(
                server.base_url,
                APPS_BY_SLUG[c.slug],
                credentials[c.slug],
                tokens[i],
                seed=plan.seed * 1000 + i,
                advance=lambda n: progress.advance(traffic, n),
                keep=partial(tokens.__setitem__, i),
            )

        if plan.scenario is None:
            requests = sum(run_parallel([partial(drive_one, i) for i in range(len(order))], workers))
        else:
            replayed = _replay(
                db,
                monitor_of(app),
                plan,
                server.base_url,
                order,
                tokens,
                credentials,
                drive_one,
                advance=lambda n: progress.advance(traffic, n),
                workers=workers,
            )
            requests = replayed.pop("requests")

    # One listed app's audit lapses after the traffic: the periodic check restricts it.
    restricted = lapse_one_audit(db, settings, LAPSING_APP, now=utcnow())
    with db.session() as session:
        result: dict[str, Any] = {
            "scenario": plan.scenario,
            "apps": summaries.app_summaries(session),
            "logins": logins,
            **summaries.platform_counts(session),
            "transactions": built.transactions,
            "requests": requests,
            "ledger": summaries.ledger_state(session),
        }
    result["marketplace"] = marketplace_states(db, now=utcnow())
    result["restricted_by_audit"] = restricted
    # Then the weeks after: owners disconnect, vendors are asked to erase, attest, or do not.
    owners = [login["username"] for login in logins]
    result["obligations"] = run_story(
        db, settings, monitor_of(app), plan, built.company_ids, owners, t0=utcnow()
    )
    with db.session() as session:
        leak = write_leak(session, settings.data_dir)
    result["leak"] = None if leak is None else str(leak)
    if plan.scenario is not None:
        result["monitor"] = replayed
        if plan.guarded:
            with db.session() as session:
                result["guarded"] = summaries.guarded_report(session, replayed)
    result["base_url"] = settings.base_url
    result["admin_api_key"] = settings.admin_key
    result["console_logins"] = console_logins(db, logins[0], f"{settings.base_url}/console")
    return result


def _replay(
    db: Database,
    monitor: Monitor,
    plan: Plan,
    base_url: str,
    order: list[Connect],
    tokens: list[dict[str, Any]],
    credentials: dict[str, Credentials],
    drive_one: Callable[[int], int],
    *,
    advance: Callable[[int], None],
    workers: int,
) -> dict[str, Any]:
    """The scenario's month on the simulated clock (``demo.replay``); what the monitor did in it."""
    clock = replay.SimClock(replay.replay_start(utcnow(), monitor.policy.new_app_days))
    monitor.use_clock(clock)
    with db.session() as session:
        pull_app_id = marketplace.get_app(session, INVOICE_PLUS).id
    onboarding = [i for i, c in enumerate(order) if c.slug != INVOICE_PLUS]
    counted = {"requests": 0}

    def onboard() -> None:  # day 0: the screened apps' full syncs, as the plain demo makes them
        counted["requests"] += sum(run_parallel([partial(drive_one, i) for i in onboarding], workers))

    watch = replay.Watch()
    before_first: dict[str, Any] = {}

    def on_first(at: datetime) -> None:  # what invoice-plus held when the first alert on it was raised
        with db.session() as session:
            before_first.update(summaries.received(session, pull_app_id))

    watch.on_first = on_first
    with client(base_url) as http:
        links = [
            replay.Link(c.slug, AppSession(http, credentials[c.slug], tokens[i]), c.company)
            for i, c in enumerate(order)
        ]
        replay.schedule(links, plan.seed)
        start = clock.now
        try:
            scraper = replay.month(
                monitor,
                clock,
                links,
                pull_slug=INVOICE_PLUS,
                pull_app_id=pull_app_id,
                guarded=plan.guarded,
                onboard=onboard,
                watch=watch,
                advance=advance,
            )
        finally:
            monitor.use_clock(None)
        counted["requests"] += sum(link.session.requests for link in links)
    pull_at = start + timedelta(days=replay.PULL_DAY, hours=replay.PULL_HOUR_UTC)
    return {
        "requests": counted["requests"],
        "mode": monitor.policy.mode.value,
        "replay_start": _iso(start),
        "replay_end": _iso(clock.now),
        "pull_started_at": _iso(pull_at),
        # The dump appeared on the forum after the month the replay covers.
        "leaked_at": _iso(clock.now),
        "first_alert_at": None if watch.first_at is None else _iso(watch.first_at),
        "before_first_alert": before_first or None,
        "alerts_raised": len(watch.raised),
        "scraper_refusals": None if scraper is None else dict(sorted(scraper.refusals.items())),
        "alerts": summaries.alerts_by_app(db),
    }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
