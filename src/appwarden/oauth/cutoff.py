"""Cutting apps off: every token, refresh token, unused code and active connection they hold, at once.

The kill switch (``incident.killswitch``) calls :func:`cut_off` inside its one transaction, so either all
of this happens with the incident's opening or none of it does. The caller records the security events:
it knows why (the incident) and who.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from appwarden.oauth.models import AuthorizationCode, Connection, Token
from appwarden.oauth.restricted import revoke_for_apps
from appwarden.oauth.vocabulary import ConnectionStatus


@dataclass(frozen=True, slots=True)
class SuspendedConnection:
    """A connection the cut-off suspended: its internal id, app and company."""

    id: int
    app_id: int
    company_id: int


@dataclass(frozen=True, slots=True)
class CutOff:
    """What :func:`cut_off` revoked and suspended."""

    tokens_revoked: int
    refresh_tokens_revoked: int  # of those, the ones whose refresh token was still usable
    restricted_tokens_revoked: int
    codes_invalidated: int
    connections: list[SuspendedConnection]  # in id order


def cut_off(session: Session, app_ids: Collection[int], now: datetime) -> CutOff:
    """Revoke every live token and unused authorisation code of ``app_ids`` and suspend their active
    connections, in the caller's transaction."""
    ids = list(app_ids)
    # Access and refresh token live in one row: revoking the row ends both.
    refreshable = session.scalar(
        select(func.count(Token.id)).where(
            Token.app_id.in_(ids),
            Token.revoked_at.is_(None),
            Token.refresh_token_hash.is_not(None),
            Token.rotated_at.is_(None),
            Token.refresh_expires_at > now,
        )
    )
    revoked = _rowcount(
        session.execute(
            update(Token).where(Token.app_id.in_(ids), Token.revoked_at.is_(None)).values(revoked_at=now)
        )
    )
    # Restricted tokens die with their access tokens already (their lookup reads the parent's
    # revocation); marking them too keeps the rows truthful.
    restricted = revoke_for_apps(session, ids, now)
    codes = _rowcount(
        session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.app_id.in_(ids), AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        )
    )
    connections = [
        SuspendedConnection(*row)
        for row in session.execute(
            select(Connection.id, Connection.app_id, Connection.company_id)
            .where(Connection.app_id.in_(ids), Connection.status == ConnectionStatus.ACTIVE.value)
            .order_by(Connection.id)
        )
    ]
    session.execute(
        update(Connection)
        .where(Connection.id.in_([c.id for c in connections]))
        .values(status=ConnectionStatus.SUSPENDED.value, updated_at=now)
    )
    return CutOff(revoked, refreshable or 0, restricted, codes, connections)


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (a CursorResult; typed loosely by SQLAlchemy)."""
    return int(cast(CursorResult[Any], result).rowcount)
