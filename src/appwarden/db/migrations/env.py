"""Alembic environment: online migrations against the URL set by ``appwarden.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import appwarden.db.models  # noqa: F401  (registers every table)
from appwarden.db.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
