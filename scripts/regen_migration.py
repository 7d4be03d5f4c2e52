"""Regenerate an unreleased migration from the models.

    uv run python scripts/regen_migration.py 0002 "incidents"

Upgrades an empty database to the revision before ``REV``, then autogenerates ``REV`` from the
difference. Only for revisions that have never been applied anywhere that matters.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from appwarden.db.migrate import MIGRATIONS, alembic_config

rev = sys.argv[1] if len(sys.argv) > 1 else "0001"
message = sys.argv[2] if len(sys.argv) > 2 else "initial schema"
versions = MIGRATIONS / "versions"
for old in versions.glob(f"{rev}_*.py"):
    old.unlink()
previous = f"{int(rev) - 1:04d}"
with tempfile.TemporaryDirectory() as tmp:
    config = alembic_config(f"sqlite:///{Path(tmp) / 'scratch.db'}")
    if int(rev) > 1:
        command.upgrade(config, previous)
    command.revision(config, message=message, autogenerate=True, rev_id=rev)
target = next(versions.glob(f"{rev}_*.py"))
text = target.read_text()
target.write_text("\n".join(line for line in text.splitlines() if not line.startswith("Create Date")) + "\n")
print(f"wrote {target}")
