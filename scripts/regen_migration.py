"""Regenerate the initial migration from the models (only while nothing has been released).

uv run python scripts/regen_migration.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from appwarden.db.migrate import MIGRATIONS, alembic_config

target = MIGRATIONS / "versions" / "0001_initial_schema.py"
target.unlink(missing_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    command.revision(
        alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}"),
        message="initial schema",
        autogenerate=True,
        rev_id="0001",
    )
text = target.read_text()
target.write_text("\n".join(line for line in text.splitlines() if not line.startswith("Create Date")) + "\n")
print(f"wrote {target}")
