"""``appwarden review …``, ``appwarden audits …`` and ``appwarden reviewers create``.

The CLI runs on the trusted server: ``--reviewer NAME`` names the staff member deciding (the API needs
that person's own key instead).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from appwarden.config import get_settings
from appwarden.db.base import utcnow
from appwarden.db.session import get_database
from appwarden.errors import InvalidInput
from appwarden.marketplace import standing
from appwarden.platform.staff import create_staff, set_test_company, staff_by_name
from appwarden.screening import audits, review
from appwarden.screening.vocabulary import Outcome
from appwarden.terminal import out, print_json

review_app = typer.Typer(help="App review: queue, sheets, decisions.", no_args_is_help=True)
audits_app = typer.Typer(help="Re-audits: due dates, reminders, lapses.", no_args_is_help=True)
reviewers_app = typer.Typer(
    help="Reviewers and security admins (staff with their own API keys).", no_args_is_help=True
)
companies_app = typer.Typer(help="Companies: mark test companies.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
AppArg = Annotated[str, typer.Argument(metavar="APP", help="Slug or client id.")]
VersionOpt = Annotated[int | None, typer.Option(min=1, help="Version (default: the one under review).")]
NowOpt = Annotated[str | None, typer.Option(help="The time to act as of (ISO 8601; default now).")]


def _when(text: str | None, *, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{option} must be an ISO 8601 date or time, not {text!r}", code="invalid_date"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _emit(data: Any, json_mode: bool) -> None:
    if json_mode:
        print_json(data)
    else:
        out(False).print_json(json.dumps(data, ensure_ascii=False, default=str))


@review_app.command("queue")
def queue(json_mode: JsonOpt = False) -> None:
    """Versions waiting for a decision, oldest first."""
    with get_database().session() as session:
        rows = review.queue(session)
    if json_mode:
        print_json(rows)
        return
    table = Table("app", "version", "status", "tier", "approvals", "submitted")
    for r in rows:
        table.add_row(
            r["app"],
            str(r["version"]),
            r["status"],
            str(r["tier"]),
            f"{r['approvals']}/{r['reviewers_required']}",
            str(r["submitted_at"]),
        )
    out(False).print(table)


@review_app.command("show")
def show(app_ref: AppArg, version: VersionOpt = None, json_mode: JsonOpt = False) -> None:
    """The review sheet: tier and reasons, scopes with justifications, answers, evidence, decisions."""
    with get_database().session() as session:
        app = standing.find(session, app_ref)
        _emit(review.sheet(session, app, review.review_version(session, app, version)), json_mode)


def _decide(
    app_ref: str,
    reviewer: str,
    outcome: Outcome,
    version: int | None,
    weaken: list[str],
    refuse: list[str],
    not_ok: list[str],
    reason: str,
    json_mode: bool,
) -> None:
    with get_database().session() as session:
        app = standing.find(session, app_ref)
        row = review.review_version(session, app, version)
        scopes, answers = review.default_checklist(session, row)
        by_scope = {s["scope"]: s for s in scopes}
        for item in weaken:
            scope, _, rest = item.partition("=")
            mode, _, why = rest.partition(":")
            if scope not in by_scope or not mode:
                raise InvalidInput(f"--weaken {item!r}: use SCOPE=MODE:REASON for a requested scope")
            by_scope[scope].update(verdict="weakened", mode=mode, reason=why)
        for item in refuse:
            scope, _, why = item.rpartition("@")
            if scope not in by_scope:
                raise InvalidInput(f"--refuse {item!r}: use SCOPE@REASON for a requested scope")
            by_scope[scope].update(verdict="refused", reason=why)
        for key in not_ok:
            matches = [a for a in answers if a["question"] == key]
            if not matches:
                raise InvalidInput(f"--not-ok {key!r}: not a required question of this version")
            matches[0]["ok"] = False
        sheet = review.decide(
            session,
            app,
            row,
            reviewer=staff_by_name(session, reviewer),
            outcome=outcome,
            scopes=scopes,
            answers=answers,
            reason=reason,
            now=utcnow(),
        )
    if json_mode:
        print_json(sheet)
        return
    out(False).print(
        f"{app_ref} v{sheet['version']['version']}: {sheet['version']['status']}; "
        f"app {sheet['app']['listing_state']}; approved {sheet['version']['approved_scopes']}"
    )


ReviewerOpt = Annotated[str, typer.Option(help="The reviewer deciding (a staff username).")]
WeakenOpt = Annotated[list[str], typer.Option(help="SCOPE=MODE:REASON, e.g. customers.phone:raw=masked:why.")]
RefuseOpt = Annotated[list[str], typer.Option(help="SCOPE@REASON: the scope is not approved.")]


@review_app.command("approve")
def approve(
    app_ref: AppArg,
    reviewer: ReviewerOpt,
    version: VersionOpt = None,
    weaken: WeakenOpt = [],  # noqa: B006 (Typer reads the default)
    refuse: RefuseOpt = [],  # noqa: B006
    reason: Annotated[str, typer.Option(help="Notes (recorded).")] = "",
    json_mode: JsonOpt = False,
) -> None:
    """Approve: every scope as asked unless weakened or refused, every required answer accepted."""
    _decide(app_ref, reviewer, Outcome.APPROVE, version, weaken, refuse, [], reason, json_mode)


@review_app.command("reject")
def reject(
    app_ref: AppArg,
    reviewer: ReviewerOpt,
    reason: Annotated[str, typer.Option(help="Why (sent back to the vendor).")],
    version: VersionOpt = None,
    not_ok: Annotated[
        list[str], typer.Option("--not-ok", help="A question whose answer is not accepted.")
    ] = [],  # noqa: B006
    json_mode: JsonOpt = False,
) -> None:
    """Reject the version (frozen as rejected; the vendor opens a new one)."""
    _decide(app_ref, reviewer, Outcome.REJECT, version, [], [], not_ok, reason, json_mode)


@audits_app.command("due")
def due(now: NowOpt = None, json_mode: JsonOpt = False) -> None:
    """Open audits, overdue and unscheduled (grandfathered: due at once) first."""
    at = _when(now, option="--now") or utcnow()
    with get_database().session() as session:
        rows = audits.due(session, at)
    if json_mode:
        print_json(rows)
        return
    table = Table("app", "tier", "state", "due", "days left", "grandfathered")
    for r in rows:
        table.add_row(
            r["app"],
            str(r["tier"]),
            r["state"],
            r["due_at"] or "at once (no date set)",
            "—" if r["days_left"] is None else str(r["days_left"]),
            "yes" if r["grandfathered"] else "",
        )
    out(False).print(table)


@audits_app.command("schedule")
def schedule(
    app_ref: AppArg,
    due_at: Annotated[
        str | None, typer.Option("--due", help="Due date (ISO 8601); omit: due at once.")
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Set when an app's audit is due (e.g. a grandfathered app's first audit)."""
    when = _when(due_at, option="--due")
    with get_database().session() as session:
        app = standing.find(session, app_ref)
        audit = audits.schedule(session, app, when, actor="cli", now=utcnow())
        data = {
            "app": app.slug,
            "tier": audit.tier,
            "due_at": audit.due_at.isoformat() if audit.due_at else None,
        }
    _emit(data, json_mode) if json_mode else out(False).print(
        f"{data['app']}: audit due {data['due_at'] or 'at once'}"
    )


@audits_app.command("run")
def run_check(now: NowOpt = None, json_mode: JsonOpt = False) -> None:
    """The periodic check (cron): reminders 30 and 7 days before, lapses restrict and tell the companies."""
    at = _when(now, option="--now") or utcnow()
    report = audits.run(get_database(), get_settings(), now=at).to_dict()
    if json_mode:
        print_json(report)
        return
    out(False).print(
        f"reminded {len(report['reminded'])}, restricted {len(report['restricted'])}, "
        f"companies told for {len(report['companies_told'])} apps, {len(report['failed'])} failed"
    )


@audits_app.command("pass")
def pass_(
    app_ref: AppArg,
    reviewer: ReviewerOpt,
    notes: Annotated[str, typer.Option(help="What was checked (recorded).")],
    json_mode: JsonOpt = False,
) -> None:
    """Record a passed audit: the next is scheduled by tier; a restricted app is relisted."""
    with get_database().session() as session:
        member = staff_by_name(session, reviewer)
        app = standing.find(session, app_ref)
        nxt = audits.pass_audit(session, app, actor=member.username, notes=notes, now=utcnow())
        data = standing.summary(session, app.id) | {
            "next_audit_due_at": nxt.due_at.isoformat() if nxt and nxt.due_at else None
        }
    _emit(data, json_mode) if json_mode else out(False).print(
        f"{data['slug']} {data['listing_state']}; next audit due {data['next_audit_due_at']}"
    )


@reviewers_app.command("create")
def create_reviewer(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="reviewer or security_admin.")] = "reviewer",
    email: Annotated[str | None, typer.Option(help="Address.")] = None,
    vendor: Annotated[
        str | None, typer.Option(help="A vendor (public id) this person works for: never reviews it.")
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Create a reviewer or security admin and print their API key (shown only now)."""
    with get_database().session() as session:
        member, key = create_staff(session, username, role=role, email=email, vendor_affiliation=vendor)
        data = {"username": member.username, "role": member.role, "api_key": key}
    _emit(data, json_mode) if json_mode else out(False).print(
        f"{data['username']} ({data['role']})\napi_key: {key}"
    )


@companies_app.command("set-test")
def set_test(
    company: Annotated[str, typer.Argument(help="Company public id (co_…).")],
    off: Annotated[bool, typer.Option("--off", help="Unmark it.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Mark a company as a test company: apps not yet listed may connect to it."""
    with get_database().session() as session:
        row = set_test_company(session, company, not off)
        data = {"company": row.public_id, "is_test": row.is_test}
    _emit(data, json_mode) if json_mode else out(False).print(
        f"{data['company']}: test company {data['is_test']}"
    )
