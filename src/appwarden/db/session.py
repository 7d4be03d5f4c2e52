"""The single session factory.

SQLite is opened in WAL mode and every transaction starts ``BEGIN IMMEDIATE`` so
that the ledger's read-then-append never fails half way with SQLITE_BUSY; on
PostgreSQL the ledger serialises on a row lock instead (see ``ledger.service``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from appwarden.config import Settings, get_settings


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_databases: dict[str, Database] = {}


def get_database(settings: Settings | None = None) -> Database:
    """The process-wide :class:`Database` for the given (or global) settings."""
    settings = settings or get_settings()
    if settings.database_url is None:
        settings.ensure_data_dir()
    url = settings.resolved_database_url
    if url not in _databases:
        if settings.database_url is None:
            # The embedded default upgrades itself so the first command just works; PostgreSQL is
            # migrated explicitly by the operator (`appwarden db upgrade`).
            from appwarden.db.migrate import upgrade

            upgrade(url)
        _databases[url] = Database(url)
    return _databases[url]


def driver_connection(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (psycopg or sqlite3), for the few paths that need the driver
    itself: COPY, binary result format, or thousands of binds without per-parameter overhead."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


def reset_databases() -> None:
    """Dispose and forget every engine (tests switch databases between cases)."""
    for db in _databases.values():
        db.dispose()
    _databases.clear()
