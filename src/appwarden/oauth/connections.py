"""Connections as other packages see them: which app a company connected, never the row.

The consent announces a :class:`ConnectionRef` (``service.connection_granted``); the canary package
issues a connection's canaries from it and finds the connections that still have none with
:func:`active_connections`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from appwarden.oauth.models import Connection
from appwarden.oauth.vocabulary import ConnectionStatus


@dataclass(frozen=True, slots=True)
class ConnectionRef:
    """A company's connection of an app: internal and public id, the app and the company."""

    id: int
    public_id: str
    app_id: int
    company_id: int


def ref(connection: Connection) -> ConnectionRef:
    """The reference of a connection row this package holds."""
    return ConnectionRef(connection.id, connection.public_id, connection.app_id, connection.company_id)


def active_connections(
    session: Session,
    *,
    app_id: int | None = None,
    company_id: int | None = None,
    excluding: Select[Any] | None = None,
) -> list[ConnectionRef]:
    """Active connections (of one app, of one company), in id order; ``excluding`` is a subquery of
    connection ids to leave out (e.g. those that already have canaries)."""
    query = select(Connection.id, Connection.public_id, Connection.app_id, Connection.company_id).where(
        Connection.status == ConnectionStatus.ACTIVE.value
    )
    if app_id is not None:
        query = query.where(Connection.app_id == app_id)
    if company_id is not None:
        query = query.where(Connection.company_id == company_id)
    if excluding is not None:
        query = query.where(Connection.id.not_in(excluding))
    return [ConnectionRef(*row) for row in session.execute(query.order_by(Connection.id))]


def ended_company_ids(session: Session, app_id: int) -> set[int]:
    """The companies whose connection to the app has ended (revoked by the owner or the platform). A
    suspended connection (the kill switch's) has not ended: it may be approved again."""
    query = select(Connection.company_id).where(
        Connection.app_id == app_id, Connection.status == ConnectionStatus.REVOKED.value
    )
    return set(session.scalars(query))
