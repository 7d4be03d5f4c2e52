"""Storage: declarative base, the one session factory and Alembic migrations."""

from appwarden.db.base import Base
from appwarden.db.session import Database, get_database

__all__ = ["Base", "Database", "get_database"]
