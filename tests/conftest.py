"""Fixtures: a fresh, migrated database per test (SQLite by default, PostgreSQL when
``APPWARDEN_TEST_DATABASE_URL`` is set), the real ASGI app, and a small platform to test against."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

import appwarden.tables  # noqa: F401
from appwarden import wiring
from appwarden.app import create_app
from appwarden.config import Settings, get_settings
from appwarden.db.base import Base
from appwarden.db.migrate import upgrade
from appwarden.db.session import Database, reset_databases
from appwarden.marketplace import service as marketplace
from appwarden.oauth.models import Connection
from appwarden.oauth.tokens import issue_token
from appwarden.platform import service as platform
from appwarden.platform.models import Company, Customer, Store

PG_URL = os.environ.get("APPWARDEN_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("APPWARDEN_TEST_REDIS_URL")
ADMIN_KEY = "test-admin-key-0123456789"
OWNER_PASSWORD = "owner-password-1"


@pytest.fixture(scope="session", autouse=True)
def wired() -> None:
    """Compose the capabilities as every entry point does: tests write customers through the platform's
    write paths (``build_world``), whose derived indexes are registered by ``wiring.wire``."""
    wiring.wire()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per test session: a template SQLite file, or the PostgreSQL schema."""
    if PG_URL:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def settings(tmp_path: Path, migrated_template: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for one test, also exported to the environment so the CLI sees the same database."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if PG_URL:
        url = PG_URL
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        shutil.copy(migrated_template, data_dir / "appwarden.db")
        url = f"sqlite:///{data_dir / 'appwarden.db'}"
    monkeypatch.setenv("APPWARDEN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("APPWARDEN_DATABASE_URL", url)
    monkeypatch.setenv("APPWARDEN_ADMIN_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("APPWARDEN_SECRET_KEY", "test-secret-key-not-for-production")
    monkeypatch.delenv("APPWARDEN_REDIS_URL", raising=False)
    get_settings.cache_clear()
    reset_databases()
    yield get_settings()
    reset_databases()
    get_settings.cache_clear()


@pytest.fixture
def db(settings: Settings) -> Database:
    from appwarden.db.session import get_database

    return get_database(settings)


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The real ASGI app over httpx (no network)."""
    with TestClient(create_app(settings, db), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class Tenant:
    """A contract company with stores, an owner login and customers."""

    company: Company
    stores: list[Store]
    owner_username: str
    customers: list[Customer] = field(default_factory=list)


@dataclass
class World:
    """A small platform built by :func:`build_world` for tests."""

    db: Database
    tenants: list[Tenant]
    apps: dict[str, tuple[int, str, str]]  # slug -> (app id, client id, client secret)

    def connect(self, slug: str, tenant: Tenant, scopes: list[str] | None = None) -> dict[str, str | int]:
        """Connect ``slug`` to ``tenant`` directly (consenting to ``scopes``, default all) and issue a token.

        Used where a test is about the broker, not the OAuth dance (which ``test_oauth`` covers).
        """
        from sqlalchemy import select

        app_id = self.apps[slug][0]
        with self.db.session() as session:
            from appwarden.marketplace.models import App

            app = session.get(App, app_id)
            assert app is not None
            consented = scopes if scopes is not None else list(app.approved_scopes)
            conn = session.scalar(
                select(Connection).where(
                    Connection.app_id == app_id, Connection.company_id == tenant.company.id
                )
            )
            if conn is None:
                conn = Connection(company_id=tenant.company.id, app_id=app_id, scopes=consented)
                session.add(conn)
                session.flush()
            else:
                conn.scopes = consented
            return issue_token(session, conn, " ".join(consented), access_ttl=900, refresh_ttl=3600)


def build_world(db: Database, *, companies: int = 2, stores: int = 2, customers: int = 12) -> World:
    """Companies with stores and customers (some without phone or email), an owner each, and three apps."""
    tenants: list[Tenant] = []
    with db.session() as session:
        for c in range(companies):
            company = platform.create_company(session, f"Company {c}", f"owner{c}@example.jp")
            store_rows = [platform.create_store(session, company, f"Store {c}-{s}") for s in range(stores)]
            platform.create_user(session, f"owner{c}", OWNER_PASSWORD, role="company_owner", company=company)
            rows = [
                {
                    "home_store_id": store_rows[i % stores].id,
                    "name": f"山田 太郎{c}-{i}",
                    "name_kana": f"ヤマダ タロウ{c}-{i}",
                    "phone": None if i % 5 == 4 else f"090-{c:04d}-{i:04d}",
                    "email": None if i % 4 == 3 else f"taro{c}.{i}@example.jp",
                    "address": f"東京都千代田区{i}-{c}",
                    "gender": "female" if i % 2 else "male",
                    "points": i * 10,
                    "rank": "gold" if i % 3 == 0 else "silver",
                }
                for i in range(customers)
            ]
            platform.add_customers(session, company, rows)
            session.flush()
            from sqlalchemy import select

            tenant = Tenant(company, store_rows, f"owner{c}")
            tenant.customers = list(
                session.scalars(
                    select(Customer).where(Customer.company_id == company.id).order_by(Customer.id)
                )
            )
            tenants.append(tenant)
        apps: dict[str, tuple[int, str, str]] = {}
        for slug, scopes in {
            "invoice-plus": ["customers.name:raw", "customers.phone:raw", "transactions:read"],
            "loyalty-stamp": [
                "customers.name:masked",
                "customers.phone:token",
                "customers.points:raw",
                "customers.rank:raw",
            ],
            "booking-go": ["customers.name:token", "customers.email:masked", "customers.phone:masked"],
        }.items():
            reg = marketplace.register_app(
                session,
                slug=slug,
                name=slug.title(),
                redirect_uris=[f"https://{slug}.example/cb"],
                scopes=scopes,
                grandfathered=False,  # as if screened: raw identifying fields only by restricted token
            )
            apps[slug] = (reg.app.id, reg.app.client_id, reg.client_secret)
    return World(db, tenants, apps)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)
