"""Incident commands: the kill switch and the incident record.

``incident open --app APP --reason TEXT`` (kill switch), ``show``, ``list``, ``note``, ``fact``, ``close``.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from appwarden.terminal import out, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
IncidentArg = Annotated[str, typer.Argument(help="The incident's id (inc_…).")]


def _actor() -> str:
    """Who ran the command, for the timeline."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def open_cmd(
    app: Annotated[list[str], typer.Option("--app", help="The app to cut off (slug or client id); repeat.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (goes on the record and to the companies).")],
    title: Annotated[str | None, typer.Option("--title", help="A title; default from the apps.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Kill switch: delist the app(s), revoke tokens, suspend connections, open an incident.

    All in one transaction; then every API worker is signalled (Redis, or the database)."""
    from appwarden.config import get_settings
    from appwarden.db.session import get_database
    from appwarden.incident.killswitch import kill_switch
    from appwarden.incident.revocation import RevocationSignal

    settings = get_settings()
    result = kill_switch(
        get_database(settings),
        apps=app,
        reason=reason,
        actor=_actor(),
        signal=RevocationSignal(settings),
        title=title,
    )
    data = result.to_dict()
    if json_mode:
        print_json(data)
        return
    console = out(False)
    console.print(
        f"[bold red]kill switch[/] {', '.join(result.apps)}: incident [bold]{result.incident}[/] opened"
    )
    console.print(
        f"  delisted; {result.tokens_revoked} access tokens ({result.refresh_tokens_revoked} live refresh) "
        f"revoked; {result.codes_invalidated} authorisation codes voided; "
        f"{result.connections_suspended} connections of {len(result.companies)} companies suspended"
    )
    console.print(f"  signal: {data['signal'].get('via')}" + _redis_note(data["signal"]))
    console.print(f"next: appwarden incident blast-radius {result.incident}")


def _redis_note(signal: dict[str, Any]) -> str:
    return f" (redis failed: {signal['redis_error']})" if "redis_error" in signal else ""


def show_cmd(incident: IncidentArg, json_mode: JsonOpt = False) -> None:
    """The incident record: apps, status, times, known / not yet known, timeline, refused calls."""
    from appwarden.db.session import get_database
    from appwarden.incident.service import describe, get_incident

    with get_database().session() as session:
        data = describe(session, get_incident(session, incident))
    if json_mode:
        print_json(data)
    else:
        render(out(False), data)


def render(console: Console, data: dict[str, Any]) -> None:
    """The record for people."""
    from appwarden.incident.vocabulary import IncidentStatus

    status = "[green]closed[/]" if data["status"] == IncidentStatus.CLOSED else "[bold red]open[/]"
    console.print(f"[bold]{data['id']}[/] {data['title']} — {status}")
    console.print(f"apps: {', '.join(data['apps'])}   reason: {data['reason']}")
    console.print(
        f"opened {data['opened_at']} by {data['opened_by']}; aware {data['aware_at']}"
        + (f"; closed {data['closed_at']}" if data["closed_at"] else "")
        + f"; unauthorised access suspected: {'yes' if data['unauthorized_access'] else 'no'}"
    )
    for key, label in (
        ("known", "known (わかっていること)"),
        ("unknown", "not yet known (わかっていないこと)"),
    ):
        console.print(f"[bold]{label}[/]")
        for n, fact in enumerate(data[key], 1):
            console.print(f"  {n}. {fact['text']}")
        if not data[key]:
            console.print("  (none)")
    table = Table("at", "who", "what", "", title="timeline")
    for e in data["timeline"]:
        table.add_row(e["at"][:19], e["actor"], e["kind"], e["text"])
    refused = data["refused_calls"]
    if refused["count"]:
        table.add_row(
            (refused["last_at"] or "")[:19],
            "broker",
            "refused",
            f"{refused['count']} calls refused since the kill ({refused['first_at'][:19]} … "
            f"{refused['last_at'][:19]}), from {len(refused['by_company'])} companies",
        )
    console.print(table)
    console.print(f"refused calls: {refused['count']}")


def list_cmd(
    status: Annotated[str | None, typer.Option("--status", help="open or closed.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Incidents, newest first."""
    from appwarden.db.session import get_database
    from appwarden.incident.service import list_incidents, summary

    with get_database().session() as session:
        rows = [summary(session, i) for i in list_incidents(session, status=status)]
    if json_mode:
        print_json(rows)
        return
    table = Table(title="incidents")
    table.add_column("id", no_wrap=True)  # ids are copied into the next command: never folded
    for name in ("status", "apps", "opened", "closed", "open questions"):
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(
            r["id"], r["status"], ", ".join(r["apps"]), r["opened_at"][:16], (r["closed_at"] or "")[:16],
            str(r["unknown"]),
        )  # fmt: skip
    out(False).print(table if rows else "no incidents")


def note_cmd(
    incident: IncidentArg,
    text: Annotated[str, typer.Argument(help="What happened / was decided.")],
    json_mode: JsonOpt = False,
) -> None:
    """Add a free-text entry to the timeline."""
    from appwarden.db.session import get_database
    from appwarden.incident.service import add_note, get_incident

    with get_database().session() as session:
        entry = add_note(session, get_incident(session, incident), actor=_actor(), text=text)
        data = {"incident": incident, "at": entry.at.isoformat(), "actor": entry.actor, "text": entry.text}
    if json_mode:
        print_json(data)
    else:
        out(False).print(f"noted on {incident} at {data['at'][:19]}")


def fact_cmd(
    incident: IncidentArg,
    known: Annotated[str | None, typer.Option("--known", help="Add a known fact (or the answer).")] = None,
    unknown: Annotated[str | None, typer.Option("--unknown", help="Add an open question.")] = None,
    resolve: Annotated[
        int | None, typer.Option("--resolve", help="Move open question N to known, answered by --known.")
    ] = None,
    remove_known: Annotated[int | None, typer.Option("--remove-known", help="Drop known fact N.")] = None,
    remove_unknown: Annotated[
        int | None, typer.Option("--remove-unknown", help="Drop open question N.")
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Edit the "known" and "not yet known" lists (numbers as shown by ``incident show``)."""
    from appwarden.db.session import get_database
    from appwarden.incident.service import edit_facts, get_incident

    with get_database().session() as session:
        row = edit_facts(
            session,
            get_incident(session, incident),
            actor=_actor(),
            known=known,
            unknown=unknown,
            resolve=resolve,
            remove_known=remove_known,
            remove_unknown=remove_unknown,
        )
        data = {"incident": incident, "known": list(row.known), "unknown": list(row.unknown)}
    if json_mode:
        print_json(data)
        return
    console = out(False)
    for key, label in (("known", "known"), ("unknown", "not yet known")):
        console.print(f"[bold]{label}[/]")
        for n, fact in enumerate(data[key], 1):
            console.print(f"  {n}. {fact['text'] if isinstance(fact, dict) else fact}")


def close_cmd(
    incident: IncidentArg,
    note: Annotated[str, typer.Option("--note", help="Why it is closed.")] = "",
    json_mode: JsonOpt = False,
) -> None:
    """Close the incident (the apps stay delisted)."""
    from appwarden.db.session import get_database
    from appwarden.incident.service import close_incident, get_incident

    with get_database().session() as session:
        row = close_incident(session, get_incident(session, incident), actor=_actor(), text=note)
        data = {"incident": row.public_id, "status": row.status, "closed_at": row.closed_at.isoformat()}  # type: ignore[union-attr]
    if json_mode:
        print_json(data)
    else:
        out(False).print(f"{incident} closed at {data['closed_at'][:19]}")


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``appwarden incident``."""
    app.command("open")(open_cmd)
    app.command("show")(show_cmd)
    app.command("list")(list_cmd)
    app.command("note")(note_cmd)
    app.command("fact")(fact_cmd)
    app.command("close")(close_cmd)
