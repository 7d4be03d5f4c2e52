"""Migrations are frozen: none imports appwarden, and the one data step (0004) works on its own."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from pyroaring import BitMap

from appwarden.db.migrate import MIGRATIONS, upgrade

VERSIONS = sorted((MIGRATIONS / "versions").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-local imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_migration_imports_appwarden() -> None:
    assert len(VERSIONS) >= 5
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] == "appwarden")
        for path in VERSIONS
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_new_migrations_start_without_appwarden() -> None:
    """The template autogenerate fills in imports nothing of appwarden (env.py renders UTCDateTime as
    the plain column type it emits)."""
    template = (MIGRATIONS / "script.py.mako").read_text()
    assert re.search(r"^\s*(import|from)\s+appwarden", template, re.MULTILINE) is None


def test_0004_fills_store_members_from_existing_customers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it on SQLite
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO companies (id, public_id, name, created_at)"
            " VALUES (1, 'co_a', 'A', ?), (2, 'co_b', 'B', ?)",
            (now, now),
        )
        conn.exec_driver_sql(
            "INSERT INTO stores (id, public_id, company_id, name) VALUES"
            " (1, 'st_1', 1, 's1'), (2, 'st_2', 1, 's2'), (3, 'st_3', 2, 's3')"
        )
        homes = {1: 1, 2: 1, 3: 2, 4: 1, 5: 2}  # customer -> store; store 3 is nobody's home
        canaries = {4}
        conn.exec_driver_sql(
            "INSERT INTO customers (id, public_id, company_id, home_store_id, name, points, is_canary,"
            " updated_at) VALUES (?, ?, 1, ?, 'n', 0, ?, ?)",
            [(cid, f"cus_{cid}", store, cid in canaries, now) for cid, store in homes.items()],
        )
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT store_id, company_id, bitmap, canaries, cardinality FROM store_members ORDER BY store_id"
        ).all()
    engine.dispose()
    got = [(s, c, set(BitMap.deserialize(b)), set(BitMap.deserialize(k)), n) for s, c, b, k, n in rows]
    assert got == [
        (1, 1, {1, 2, 4}, {4}, 3),
        (2, 1, {3, 5}, set(), 2),
        (3, 2, set(), set(), 0),  # every store gets a row, empty or not
    ]
