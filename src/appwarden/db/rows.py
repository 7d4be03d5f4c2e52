"""Reading rows that carry serialised bitmaps, fast on every backend.

The owners of bitmap tables (the ledger index, the store membership bitmaps) read them through
:func:`blob_rows`: plain-column selects on the session's connection, so rows come back as tuples without
the ORM's per-row loading work, and on PostgreSQL in binary result format.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Select

from appwarden.db.session import driver_connection


def blob_rows(conn: Connection, query: Select) -> Sequence[Any]:
    """All rows of a select that returns bitmaps. On PostgreSQL in binary result format: in text format
    every bitmap byte would arrive as two hex digits to parse (megabytes at 10M customers)."""
    if conn.dialect.name != "postgresql":
        return conn.execute(query).all()
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    with driver_connection(conn).cursor(binary=True) as cur:
        cur.execute(str(compiled), compiled.params)
        return cur.fetchall()


def blob_stream(conn: Connection, query: Select) -> Iterator[Any]:
    """The rows of :func:`blob_rows` one at a time, for callers that keep little of each row: on SQLite
    they come from the cursor as it goes, so the serialised bitmaps are never all in memory at once."""
    if conn.dialect.name != "postgresql":
        yield from conn.execute(query)
        return
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    with driver_connection(conn).cursor(binary=True) as cur:
        cur.execute(str(compiled), compiled.params)
        yield from cur
