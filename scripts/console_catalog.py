"""Refresh the console's catalogues from its sources: extract every marked string, merge into
``locales/{ja,en}/LC_MESSAGES/messages.po`` (keeping translations), and list what ja still lacks.

    uv run python scripts/console_catalog.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po, write_po

CONSOLE = Path(__file__).resolve().parents[1] / "src" / "appwarden" / "console"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "babel.messages.frontend",
                "extract",
                "-F",
                str(CONSOLE / "babel.cfg"),
                "-k",
                "N_",
                "-k",
                "gettext:2",
                "--no-location",
                "--sort-output",
                "-o",
                str(pot),
                str(CONSOLE),
            ],
            check=True,
            capture_output=True,
        )
        template = read_po(pot.open("rb"))
    missing = 0
    for lang in ("ja", "en"):
        path = CONSOLE / "locales" / lang / "LC_MESSAGES" / "messages.po"
        if path.exists():
            catalog = read_po(path.open("rb"), locale=lang)
            catalog.update(template, no_fuzzy_matching=True)
            catalog.obsolete.clear()
        else:
            catalog = template.__class__(locale=lang, project="appwarden console")
            for message in template:
                if message.id:
                    catalog.add(message.id)
        catalog.project, catalog.version = "appwarden console", "1"
        catalog.fuzzy = False
        catalog.header_comment = (
            f"# The appwarden console's {lang} catalogue (scripts/console_catalog.py refreshes it)."
        )
        with path.open("wb") as fh:
            write_po(fh, catalog, width=110, sort_output=True, omit_header=False, no_location=True)
        if lang == "ja":
            for message in catalog:
                if message.id and not message.string:
                    missing += 1
                    print(f"ja: untranslated: {message.id!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
