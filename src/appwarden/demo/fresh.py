"""A demo run starts from a fresh database: wipe whatever is there, then run the migrations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from appwarden.config import Settings
from appwarden.db.migrate import upgrade
from appwarden.db.session import Database, get_database, reset_databases


def fresh_database(settings: Settings) -> tuple[Database, str | None]:
    """Wipe the configured database (delete the SQLite file, or drop and recreate PostgreSQL's public
    schema), migrate it to head, and return it with a sentence saying what was wiped (None: nothing)."""
    if settings.database_url is None:
        settings.ensure_data_dir()
    url = settings.resolved_database_url
    reset_databases()  # no pooled connection may hold the old file or schema open
    parsed = make_url(url)
    wiped: str | None = None
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("the demo needs a file or server database")
        files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))]
        if path.exists():
            wiped = f"wiped the existing database at {path}"
        for f in files:
            f.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                if inspect(conn).get_table_names(schema="public"):
                    wiped = f"wiped the existing schema of {parsed.render_as_string(hide_password=True)}"
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
    upgrade(url)
    return get_database(settings), wiped
