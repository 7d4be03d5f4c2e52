"""Request dependencies shared by every router: settings, database, admin authentication."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import Unauthenticated


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer …``, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def check_admin_key(request: Request) -> None:
    """401 ``invalid_admin_key`` unless the request carries the admin API key as a bearer token (the one
    check: the route dependency and ``web.auth_first``, which runs it before any body is read, share it)."""
    settings: Settings = request.app.state.settings
    token = bearer_token(request)
    if token is None or not hmac.compare_digest(token.encode(), settings.admin_key.encode()):
        raise Unauthenticated("admin API key required", code="invalid_admin_key")


async def require_admin(request: Request) -> str:
    """Admin API authentication: the admin API key as a bearer token. Returns the actor name."""
    check_admin_key(request)
    return "admin-api"


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_db)]
AdminDep = Annotated[str, Depends(require_admin)]
