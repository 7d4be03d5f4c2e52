"""A company's connections as its owner sees and ends them (the console's connected-apps page).

:func:`disconnect` is the per-company counterpart of the kill switch (``incident.killswitch``), which
cuts an app off for every company at once and opens an incident: here one owner withdraws one grant.
It revokes the connection and, in the same transaction, every access and refresh token issued under
it, every unused authorisation code of the pair and every live restricted token; the data API reads
all three on every request (``broker.auth``), so the app's next call is refused, on every worker.

Other packages hold a connection as a :class:`ConnectionRef`: the consent announces one
(``service.connection_granted``), and the canary package issues a connection's canaries from it and finds
the connections that have none yet with :func:`active_connections`. The vendor obligations read which
connections have ended (:func:`ended_company_ids`) and when (:func:`revoked_connections`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, Select, select, update
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.errors import Conflict, NotFound
from appwarden.events.service import EventTag, record
from appwarden.marketplace.clients import client_by_id
from appwarden.marketplace.scopes import effective_scopes
from appwarden.marketplace.service import approved_scopes_of, scopes_on_offer
from appwarden.marketplace.vendors import profile_of
from appwarden.oauth.models import AuthorizationCode, Connection, RestrictedToken, Token
from appwarden.oauth.vocabulary import ConnectionStatus
from appwarden.platform.accounts import account


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """One company's grant to one app, as its owner reads it."""

    public_id: str
    company_id: int
    app_id: int
    app_slug: str
    app_name: str
    status: str  # a ``ConnectionStatus`` value
    consented: tuple[str, ...]  # what the owner ticked
    granted: tuple[str, ...]  # what the broker may deliver: the consented version's approved ∩ consented
    app_version: int | None
    granted_by: str | None  # the owner's username
    created_at: datetime
    updated_at: datetime
    vendor: str | None = None  # the vendor's name
    # Raw identifying fields reach the app only through restricted tokens (every app but one listed
    # before screening, ``broker.auth.ordinary_modes``): an ordinary call gets them masked.
    raw_by_restricted_token_only: bool = True


@dataclass(frozen=True, slots=True)
class Disconnected:
    """What :func:`disconnect` ended."""

    connection: str
    app_slug: str
    tokens_revoked: int
    codes_invalidated: int
    restricted_tokens_revoked: int


def _view(session: Session, conn: Connection) -> ConnectionView:
    app = client_by_id(session, conn.app_id)
    assert app is not None  # a connection's app is never deleted (foreign key)
    approved = approved_scopes_of(session, app.id, conn.app_version)
    if approved is None:
        approved = scopes_on_offer(session, app)[0]
    who = account(session, conn.granted_by_user_id) if conn.granted_by_user_id is not None else None
    vendor = profile_of(session, app.vendor_id) if app.vendor_id is not None else None
    return ConnectionView(
        public_id=conn.public_id,
        company_id=conn.company_id,
        app_id=app.id,
        app_slug=app.slug,
        app_name=app.name,
        status=conn.status,
        consented=tuple(conn.scopes),
        granted=tuple(effective_scopes(approved, conn.scopes)),
        app_version=conn.app_version,
        granted_by=who.username if who else None,
        created_at=conn.created_at,
        updated_at=conn.updated_at,
        vendor=vendor.name if vendor else None,
        raw_by_restricted_token_only=not app.grandfathered,
    )


def company_connections(session: Session, company_id: int) -> list[ConnectionView]:
    """Every connection of the company, live ones first, then by app."""
    rows = session.scalars(select(Connection).where(Connection.company_id == company_id))
    views = [_view(session, c) for c in rows]
    return sorted(views, key=lambda v: (v.status != ConnectionStatus.ACTIVE.value, v.app_slug))


def company_connection(session: Session, company_id: int, public_id: str) -> ConnectionView:
    """The company's connection with this public id; 404 ``connection_not_found`` for any other company's
    (the same answer as for none at all, so ids cannot be probed across tenants)."""
    conn = session.scalar(
        select(Connection).where(Connection.public_id == public_id, Connection.company_id == company_id)
    )
    if conn is None:
        raise NotFound(f"no connection {public_id!r} of this company", code="connection_not_found")
    return _view(session, conn)


def disconnect(
    session: Session, company_id: int, public_id: str, *, actor: str, now: datetime | None = None
) -> Disconnected:
    """Revoke the company's connection and everything issued under it, at once (see the module's text).

    404 for another company's connection; 409 ``connection_already_revoked`` when it already is."""
    now = now or utcnow()
    conn = session.scalar(
        select(Connection).where(Connection.public_id == public_id, Connection.company_id == company_id)
    )
    if conn is None:
        raise NotFound(f"no connection {public_id!r} of this company", code="connection_not_found")
    if conn.status == ConnectionStatus.REVOKED.value:
        raise Conflict("this connection is already disconnected", code="connection_already_revoked")
    app = client_by_id(session, conn.app_id)
    assert app is not None
    conn.status = ConnectionStatus.REVOKED.value
    conn.updated_at = now
    tokens = _rows(
        session.execute(
            update(Token)
            .where(Token.connection_id == conn.id, Token.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    codes = _rows(
        session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.app_id == conn.app_id,
                AuthorizationCode.company_id == company_id,
                AuthorizationCode.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    restricted = _rows(
        session.execute(
            update(RestrictedToken)
            .where(RestrictedToken.connection_id == conn.id, RestrictedToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    facts = {"connection": conn.public_id, "via": "console"}
    record(
        session,
        EventTag.CONNECTION_REVOKED,
        actor=actor,
        app_id=conn.app_id,
        company_id=company_id,
        scopes=list(conn.scopes),
        **facts,
    )
    record(
        session,
        EventTag.TOKEN_REVOKED,
        actor=actor,
        app_id=conn.app_id,
        company_id=company_id,
        tokens_revoked=tokens,
        codes_invalidated=codes,
        restricted_tokens_revoked=restricted,
        **facts,
    )
    return Disconnected(conn.public_id, app.slug, tokens, codes, restricted)


def _rows(result: object) -> int:
    """Rows an UPDATE matched."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


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


@dataclass(frozen=True, slots=True)
class RevokedConnection:
    """A connection its company's owner ended, and when (the time :func:`disconnect` revoked it)."""

    connection: ConnectionRef
    revoked_at: datetime


def revoked_connections(
    session: Session, *, revoked_before: datetime | None = None
) -> list[RevokedConnection]:
    """Every revoked connection (revoked at or before ``revoked_before``), in id order. A revoked row is
    never changed again (:func:`disconnect` refuses a second revocation), so its ``updated_at`` is the
    moment it was revoked."""
    query = select(
        Connection.id, Connection.public_id, Connection.app_id, Connection.company_id, Connection.updated_at
    ).where(Connection.status == ConnectionStatus.REVOKED.value)
    if revoked_before is not None:
        query = query.where(Connection.updated_at <= revoked_before)
    return [
        RevokedConnection(ConnectionRef(*row[:4]), row[4])
        for row in session.execute(query.order_by(Connection.id))
    ]
