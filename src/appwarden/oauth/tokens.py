"""Opaque bearer tokens: issued by Authlib's generator, stored as SHA-256 only, resolved to a grant.

The OAuth endpoints (``oauth.server``) and the broker both go through these functions, so there is
exactly one place that decides whether a presented token is good.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.common.security import generate_token
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.errors import Forbidden, Unauthenticated
from appwarden.marketplace.models import App, ListingState
from appwarden.marketplace.scopes import Mode, effective_scopes, field_modes
from appwarden.oauth.models import Connection, ConnectionStatus, Token

TOKEN_BYTES = 48


@dataclass(frozen=True, slots=True)
class Refusal:
    """Whose call was refused: kept off the problem body, recorded as evidence by the caller."""

    app_id: int
    company_id: int
    token_id: int


class AppRefused(Forbidden):
    """403 ``app_suspended`` / ``app_delisted`` for a known token of an app that may not call."""

    def __init__(self, detail: str, *, code: str, refused: Refusal) -> None:
        super().__init__(detail, code=code)
        self.refused = refused


def token_hash(token: str) -> str:
    """The stored form of a token or code."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh opaque token (Authlib's CSPRNG generator)."""
    return generate_token(TOKEN_BYTES)


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Who is calling the data API, for which company, with which effective grant."""

    token_id: int
    app_id: int
    app_slug: str
    company_id: int
    connection_id: int
    scopes: tuple[str, ...]  # approved ∩ consented ∩ token scope

    @property
    def field_modes(self) -> dict[str, Mode]:
        return field_modes(self.scopes)

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the scope {scope!r}", required_scope=scope)


def store_token(
    session: Session,
    connection: Connection,
    *,
    access_token: str,
    refresh_token: str | None,
    scope: str,
    access_ttl: int,
    refresh_ttl: int | None,
    family_id: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> Token:
    """Store the hashes of freshly generated tokens for ``connection`` (the plaintext is never kept)."""
    now = now or utcnow()
    row = Token(
        access_token_hash=token_hash(access_token),
        refresh_token_hash=token_hash(refresh_token) if refresh_token else None,
        family_id=family_id or generate_token(24),
        app_id=connection.app_id,
        connection_id=connection.id,
        company_id=connection.company_id,
        user_id=user_id,
        scope=scope,
        issued_at=now,
        access_expires_at=now + timedelta(seconds=access_ttl),
        refresh_expires_at=now + timedelta(seconds=refresh_ttl) if refresh_token and refresh_ttl else None,
    )
    session.add(row)
    return row


def issue_token(
    session: Session,
    connection: Connection,
    scope: str,
    *,
    access_ttl: int,
    refresh_ttl: int | None,
    family_id: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> dict[str, str | int]:
    """Create an access (and refresh) token for ``connection``; return the RFC 6749 token response."""
    access = new_token()
    refresh = new_token() if refresh_ttl else None
    store_token(
        session,
        connection,
        access_token=access,
        refresh_token=refresh,
        scope=scope,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        family_id=family_id,
        user_id=user_id,
        now=now,
    )
    response: dict[str, str | int] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": access_ttl,
        "scope": scope,
    }
    if refresh:
        response["refresh_token"] = refresh
    return response


# The three rows behind a token, only the columns the decision needs, in one query: loading the ORM
# entities cost more than the SQL on the data API's hot path (every request authenticates).
_AUTH_QUERY = (
    select(
        Token.id,
        Token.revoked_at,
        Token.access_expires_at,
        Token.scope,
        Connection.id,
        Connection.company_id,
        Connection.status,
        Connection.scopes,
        App.id,
        App.slug,
        App.listing_state,
        App.approved_scopes,
    )
    .join(Connection, Token.connection_id == Connection.id)
    .join(App, Token.app_id == App.id)
    .where(Token.access_token_hash == bindparam("token_hash"))
)


def authenticate(session: Session, bearer: str | None, *, now: datetime | None = None) -> AccessContext:
    """Resolve a presented bearer token to its :class:`AccessContext`, or fail closed.

    401 for a missing, unknown, expired or revoked token; 403 ``app_delisted`` / ``connection_inactive``
    when the token is fine but the app or the company's connection is not.
    """
    if not bearer:
        raise Unauthenticated("missing bearer token")
    now = now or utcnow()
    # Through the session (not its bare connection) so pending changes are flushed first, as before.
    row = session.execute(_AUTH_QUERY, {"token_hash": token_hash(bearer)}).first()
    if row is None:
        raise Unauthenticated("unknown access token")
    (
        token_id,
        revoked_at,
        access_expires_at,
        token_scope,
        connection_id,
        company_id,
        connection_status,
        consented,
        app_id,
        app_slug,
        listing_state,
        approved,
    ) = row
    if listing_state != ListingState.LISTED.value:
        # Checked before revocation and expiry: a killed app's tokens are all revoked too, and the app
        # must be told (and the call recorded as) what it is — refused — on every route.
        raise AppRefused(
            f"app {app_slug!r} is {listing_state}",
            code=f"app_{listing_state}",
            refused=Refusal(app_id=app_id, company_id=company_id, token_id=token_id),
        )
    if revoked_at is not None:
        raise Unauthenticated("access token has been revoked")
    if access_expires_at <= now:
        raise Unauthenticated("access token has expired", code="token_expired")
    if connection_status != ConnectionStatus.ACTIVE.value:
        raise Forbidden(f"the connection is {connection_status}", code="connection_inactive")
    granted = effective_scopes(approved, consented)
    in_token = set(token_scope.split())
    scopes = tuple(s for s in granted if s in in_token)
    return AccessContext(
        token_id=token_id,
        app_id=app_id,
        app_slug=app_slug,
        company_id=company_id,
        connection_id=connection_id,
        scopes=scopes,
    )
