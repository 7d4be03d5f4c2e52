"""Opaque bearer tokens: issued by Authlib's generator, stored as SHA-256 only, resolved to a grant.

The OAuth endpoints (``oauth.server``) issue through these functions, and the data API looks a presented
token up with :func:`lookup_access_token` (the decision whether it may call is ``broker.auth``'s).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from authlib.common.security import generate_token
from sqlalchemy import ColumnExpressionArgument, Select, bindparam, select
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.digests import token_hash
from appwarden.marketplace.grant_sql import APP_GRANT, join_app_grant
from appwarden.marketplace.lifecycle import PRE_LISTING
from appwarden.oauth.models import Connection, Token
from appwarden.platform.company_sql import IS_TEST_COMPANY, join_company

TOKEN_BYTES = 48


def new_token() -> str:
    """A fresh opaque token (Authlib's CSPRNG generator)."""
    return generate_token(TOKEN_BYTES)


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


# The rows behind a token, only the columns the decision needs, in one query: loading the ORM
# entities cost more than the SQL on the data API's hot path (every request authenticates). The app's
# columns and the join to the app version the company consented to are the marketplace's
# (``marketplace.grant_sql``), whether the company is a test company the platform's
# (``platform.company_sql``); this package writes only the SQL over its own tables.
# The columns of an ``AccessGrant`` after the bearer token's own three (id, revoked, expiry), and how a
# token's connection reaches them (:func:`join_grant`); ``oauth.restricted`` shapes its lookup the same way.
GRANT_COLUMNS = (
    Token.scope,
    Connection.id,
    Connection.company_id,
    Connection.status,
    Connection.scopes,
    APP_GRANT.id,
    APP_GRANT.slug,
    APP_GRANT.listing_state,
    APP_GRANT.approved_scopes,
    APP_GRANT.restricted_policy,
    APP_GRANT.version_approved,
    IS_TEST_COMPANY,
    APP_GRANT.grandfathered,
)


def join_grant(query: Select[Any], *, app_id: ColumnExpressionArgument[int]) -> Select[Any]:
    """``query``, already joined to ``connections``, joined to what :data:`GRANT_COLUMNS` reads beyond
    them: the connection's company, and the app ``app_id`` names with the version the company consented
    to (outer: a connection made before versions were recorded names none)."""
    query = join_company(query, company_id=Connection.company_id)
    return join_app_grant(query, app_id=app_id, version=Connection.app_version)


_AUTH_QUERY = join_grant(
    select(Token.id, Token.revoked_at, Token.access_expires_at, *GRANT_COLUMNS).join(
        Connection, Token.connection_id == Connection.id
    ),
    app_id=Token.app_id,
).where(Token.access_token_hash == bindparam("token_hash"))


class AccessGrant(NamedTuple):
    """What a presented access token resolves to: the token, its connection and the app, as stored.

    Only the columns the data API's decision needs (``broker.auth.authenticate`` makes that decision).
    """

    token_id: int
    revoked_at: datetime | None
    access_expires_at: datetime
    token_scope: str
    connection_id: int
    company_id: int
    connection_status: str
    consented: list[str]
    app_id: int
    app_slug: str
    listing_state: str
    app_approved: list[str]
    restricted_policy: str
    version_approved: list[str] | None
    test_company: bool
    grandfathered: bool  # listed before screening: its access tokens still carry raw identifying fields

    @property
    def approved(self) -> list[str]:
        """The approved scopes of the version the company consented to (the app's, for a connection
        made before versions were recorded). An app not yet listed has none approved: a test company
        (the only kind it may connect) grants what it ticked of the version in screening's request."""
        if self.version_approved is not None:
            return list(self.version_approved)
        if self.listing_state in PRE_LISTING and self.test_company:
            return list(self.consented)
        return self.app_approved


def lookup_access_token(session: Session, bearer: str) -> AccessGrant | None:
    """The stored grant behind ``bearer`` (by its hash), or None for an unknown token."""
    # Through the session (not its bare connection) so pending changes are flushed first, as before.
    row = session.execute(_AUTH_QUERY, {"token_hash": token_hash(bearer)}).first()
    return None if row is None else AccessGrant._make(row)
