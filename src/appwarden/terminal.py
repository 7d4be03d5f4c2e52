"""Terminal output shared by every CLI command: JSON on stdout, people-facing output and progress on stderr
when ``--json`` is given, so stdout carries only the JSON."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

stdout = Console()
stderr = Console(stderr=True)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (and nothing else)."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def progress(*, json_mode: bool = False, disable: bool = False) -> Progress:
    """A Rich progress bar on stderr (stdout stays clean for JSON). A transient bar on a stream that is
    not a terminal is off: it would show nothing and leave a blank line before the next one."""
    if json_mode and not stderr.is_terminal:
        disable = True
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=disable,
        transient=json_mode,
    )


def out(json_mode: bool) -> Console:
    """Where human-readable output goes: stdout normally, stderr under ``--json``."""
    return stderr if json_mode else stdout
