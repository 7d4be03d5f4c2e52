"""Incident commands: ``incident notices`` (store notices, written and sent) and ``incident report`` (APPI
report drafts for the Personal Information Protection Commission)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from appwarden.errors import InvalidInput
from appwarden.terminal import out, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
IncidentArg = Annotated[str, typer.Argument(help="The incident's id (inc_…).")]


def notices_cmd(
    incident: IncidentArg,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write notice-co_….eml and .md per company here.")
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Deliver over SMTP (APPWARDEN_SMTP_URL); never twice.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Notices to every affected company (and no other), in Japanese and English, with the report drafts."""
    from appwarden.config import get_settings
    from appwarden.db.session import get_database
    from appwarden.incident.context import load_facts
    from appwarden.incident.delivery import delivery_log, send_notices
    from appwarden.incident.notices import draft_notices, write_notices
    from appwarden.incident.vocabulary import NoticeStatus

    settings = get_settings()
    db = get_database(settings)
    facts = load_facts(db, incident)
    drafts = draft_notices(facts, contact=settings.security_contact)
    files = write_notices(drafts, out_dir, sender=settings.security_contact) if out_dir else []
    summary: dict[str, Any] = {
        "incident": facts.id,
        "companies": [
            {
                "id": d.company.id,
                "name": d.company.name,
                "recipient": d.recipient,
                "persons_exposed": d.company.persons,
                "stores": len(d.company.stores),
            }
            for d in drafts
        ],
        "files": [str(p) for p in files],
    }
    if send:
        report = send_notices(
            db,
            drafts,
            incident=facts.id,
            smtp_url=settings.smtp_target,
            sender=settings.security_contact,
            actor="cli",
        )
        summary["delivery"] = report.to_dict()
        summary["log"] = delivery_log(db, facts.id)
    failed = len(summary.get("delivery", {}).get("failed", []))
    if json_mode:
        print_json(summary)
        _exit_if_failed(failed)
        return
    console = out(False)
    status = {row["company"]: row for row in summary.get("log", [])}
    table = Table("company", "recipient", "persons", "stores", "delivery", title=f"notices for {facts.id}")
    for c in summary["companies"]:
        row = status.get(c["id"])
        delivery = "-" if row is None else f"{row['status']} ({row['attempts']})"
        if row and row["status"] == NoticeStatus.FAILED:
            delivery += f": {row['last_error']}"
        table.add_row(
            f"{c['name']} ({c['id']})", c["recipient"] or "[red]no email[/]", f"{c['persons_exposed']:,}",
            str(c["stores"]), delivery,
        )  # fmt: skip
    console.print(table)
    if files:
        console.print(f"wrote {len(files)} files to {out_dir}")
    if not drafts:
        console.print("no company had exposed customers: no notices")
    _exit_if_failed(failed)


def _exit_if_failed(failed: int) -> None:
    """Exit 1 when some notice could not be delivered (re-running retries exactly those)."""
    if failed:
        sys.stderr.write(f"error: {failed} notice(s) not delivered; fix the cause and re-run to retry them\n")
        raise typer.Exit(1)


def report_cmd(
    incident: IncidentArg,
    kind: Annotated[str, typer.Option("--kind", help="preliminary (速報) or final (確報).")],
    company: Annotated[
        str | None, typer.Option("--company", help="One affected company (co_… or name); default all.")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="ja or en.")] = "ja",
    fmt: Annotated[str, typer.Option("--format", help="md, json or pdf.")] = "md",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="A file (with --company) or a directory; pdf needs it."),
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Draft the APPI report to the Personal Information Protection Commission for each affected company."""
    from appwarden.config import get_settings
    from appwarden.db.session import get_database
    from appwarden.incident.context import load_facts
    from appwarden.incident.reports import FORMATS, check_kind_lang, draft_reports, write_reports

    check_kind_lang(kind=kind, lang=lang)  # before the blast radius is computed
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (choose one of {', '.join(FORMATS)})")
    if fmt == "pdf" and out_path is None:
        raise InvalidInput("--format pdf needs --out FILE or DIR (a PDF is not printed to the terminal)")
    settings = get_settings()
    db = get_database(settings)
    facts = load_facts(db, incident)
    drafts = draft_reports(facts, kind=kind, lang=lang, contact=settings.security_contact, company=company)
    if not drafts:
        raise InvalidInput(f"incident {facts.id} has no affected company: nothing to report")
    paths = write_reports(
        db, facts, drafts, fmt=fmt, out=out_path, single_file=company is not None, actor="cli"
    )
    if out_path is not None:
        if json_mode:
            print_json({"incident": facts.id, "kind": kind, "lang": lang, "files": [str(p) for p in paths]})
        else:
            for path in paths:
                out(False).print(f"wrote {path}")
        return
    if fmt == "json" or json_mode:
        data = [d.data for d in drafts]
        print_json(data[0] if company is not None else data)
        return
    sys.stdout.write("\n\n".join(d.markdown for d in drafts))
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add this part's commands to ``appwarden incident``."""
    app.command("notices")(notices_cmd)
    app.command("report")(report_cmd)
