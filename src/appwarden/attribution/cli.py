"""``appwarden attribute DUMP``: which app a leaked dump came from, or that it did not come from one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from appwarden.db.session import get_database
from appwarden.terminal import out, print_json, progress


def attribute(
    dump: Annotated[Path, typer.Argument(help="The leaked file: CSV, TSV, JSON, JSON Lines or XLSX.")],
    json_mode: Annotated[bool, typer.Option("--json", help="Print only the verdict JSON on stdout.")] = False,
    incident: Annotated[
        str | None, typer.Option("--incident", help="Add the result to this incident's timeline (inc_…).")
    ] = None,
) -> None:
    """Match a leaked dump's rows to customers; say which app's deliveries explain them, or that none do."""
    from appwarden.attribution.service import attribute_dump

    # Transient either way: the bar goes once reading ends, leaving the summary (or one error line).
    with progress(json_mode=True) as bar:
        task = bar.add_task(f"reading {dump.name}", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = attribute_dump(get_database(), dump, incident=incident, on_progress=on_progress)
    data = result.to_dict()
    if json_mode:
        print_json(data)
        return
    _summary(data)


def _summary(data: dict[str, Any]) -> None:
    """A people-facing summary: the verdict first, then its evidence."""
    console = out(False)
    v = data["verdict"]
    source = {"app": "an app's vendor", "platform": "NOT the marketplace", "unknown": "unknown"}[v["source"]]
    rows, matched, several = data["rows"], data["rows_matched"], data["rows_ambiguous"]
    columns = ", ".join(f"{h} → {f}" for h, f in data["columns"].items())
    console.print(
        f"[bold]{data['dump']['name']}[/]: {rows:,} rows — {matched:,} matched to platform customers "
        f"({data['persons_matched']:,} people), {several:,} fit several customers (a shared name and "
        f"nothing else), {rows - matched - several:,} match nobody; columns {columns}"
    )
    apps = f": [bold]{', '.join(v['apps'])}[/]" if v["apps"] else ""
    console.print(f"source: [bold]{source}[/]{apps} (confidence {v['confidence']:.3f})")
    for reason in v["reasons"]:
        console.print(f"  · {reason}")
    for hit in v["canary_hits"]:
        console.print(
            f"  [bold red]canary[/] issued to {hit['app']} for company {hit['company']} "
            f"(store {hit['store']}, connection {hit['connection']}) is in the dump: proof"
        )
    if data["candidates"]:
        table = Table("app", "coverage", "people explained", "stores", title="candidates")
        for c in data["candidates"]:
            table.add_row(c["app"], f"{c['coverage']:.1%}", f"{c['persons']:,}", str(c["stores"]))
        console.print(table)
    unexplained = data["unexplained"]
    if unexplained["persons"]:
        console.print(f"{unexplained['persons']:,} matched people were never delivered so by any app")
    for item in unexplained["detail"]:
        console.print(f"field {item['field']}: {item['reason']} ({item['persons']:,} people)")
    snap = data["snapshot"]
    if snap["after"] or snap["before"]:
        console.print(f"copied after {snap['after'] or '?'} and before {snap['before'] or '?'}")
        for line in snap["evidence"]:
            console.print(f"  · {line}")
    if data["incident"]:
        console.print(f"added to the timeline of {data['incident']}")
