"""The skeleton: migrations match the models, the app starts, errors are problems."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

import appwarden.tables  # noqa: F401
from appwarden.db.base import Base
from appwarden.db.session import Database


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_openapi_is_served(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "appwarden"
