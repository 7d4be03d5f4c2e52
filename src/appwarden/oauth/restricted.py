"""Restricted tokens: short-lived bearer tokens for raw identifying fields of named customers.

An app approved (and consented) for a raw identifying field mints one from its access token
(``broker.restricted`` decides whether it may); this module stores it — as a SHA-256 hash, like access
tokens — resolves a presented one to the grant behind it, and revokes them. A restricted token is bound
to the access token that minted it: it is refused as soon as that token is revoked, its connection
suspended or its app no longer listed, because the lookup reads them in the same query.

The plaintext starts with :data:`PREFIX`; access tokens come from Authlib's generator (letters and digits
only), so the broker tells the two apart by the prefix without a second query.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from appwarden.digests import token_hash
from appwarden.oauth.models import Connection, RestrictedToken, Token
from appwarden.oauth.tokens import GRANT_COLUMNS, AccessGrant, join_grant, new_token

PREFIX = "rtk_"


def is_restricted(bearer: str) -> bool:
    """Whether a presented bearer token is a restricted token (by its prefix)."""
    return bearer.startswith(PREFIX)


@dataclass(frozen=True, slots=True)
class Restriction:
    """What a restricted token allows: raw ``fields`` of the named people, for a stated purpose."""

    public_id: str
    customer_ids: frozenset[int]
    fields: tuple[str, ...]
    purpose: str


@dataclass(frozen=True, slots=True)
class Minted:
    """A freshly minted restricted token: the plaintext (shown once) and its stored row's facts."""

    token: str
    public_id: str
    issued_at: datetime
    expires_at: datetime


def mint(
    session: Session,
    *,
    parent_token_id: int,
    app_id: int,
    connection_id: int,
    company_id: int,
    customer_ids: Sequence[int],
    fields: Sequence[str],
    purpose: str,
    issued_at: datetime,
    expires_at: datetime,
) -> Minted:
    """Store a restricted token derived from access token ``parent_token_id`` (of its one company)."""
    plaintext = PREFIX + new_token()
    row = RestrictedToken(
        token_hash=token_hash(plaintext),
        parent_token_id=parent_token_id,
        app_id=app_id,
        connection_id=connection_id,
        company_id=company_id,
        customer_ids=list(customer_ids),
        fields=list(fields),
        purpose=purpose,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return Minted(plaintext, row.public_id, issued_at, expires_at)


def minted_since(session: Session, connection_id: int, since: datetime) -> int:
    """How many restricted tokens the connection minted at or after ``since`` (the mint cap's count)."""
    query = select(func.count(RestrictedToken.id)).where(
        RestrictedToken.connection_id == connection_id, RestrictedToken.issued_at >= since
    )
    return int(session.scalar(query) or 0)


# The restricted token, the access token that minted it, its connection and app, in one query. Shaped
# as an ``AccessGrant`` so ``broker.auth`` runs the very same checks on it: revoked if either token is,
# expired at the restricted token's own expiry (never later than its parent's, see ``broker.restricted``).
_LOOKUP = join_grant(
    select(
        Token.id,
        func.coalesce(RestrictedToken.revoked_at, Token.revoked_at),
        RestrictedToken.expires_at,
        *GRANT_COLUMNS,
        RestrictedToken.public_id,
        RestrictedToken.customer_ids,
        RestrictedToken.fields,
        RestrictedToken.purpose,
    )
    .join(Token, RestrictedToken.parent_token_id == Token.id)
    .join(Connection, RestrictedToken.connection_id == Connection.id),
    app_id=RestrictedToken.app_id,
).where(RestrictedToken.token_hash == bindparam("token_hash"))


def lookup_restricted_token(session: Session, bearer: str) -> tuple[AccessGrant, Restriction] | None:
    """The grant behind a presented restricted token and what it is restricted to, or None if unknown."""
    row = session.execute(_LOOKUP, {"token_hash": token_hash(bearer)}).first()
    if row is None:
        return None
    width = len(AccessGrant._fields)
    grant = AccessGrant._make(row[:width])
    public_id, customer_ids, fields, purpose = row[width:]
    return grant, Restriction(public_id, frozenset(customer_ids), tuple(fields), purpose)


def revoke_for_apps(session: Session, app_ids: Collection[int], now: datetime) -> int:
    """Revoke every live restricted token of the apps (the kill switch); return how many."""
    result = session.execute(
        update(RestrictedToken)
        .where(
            RestrictedToken.app_id.in_(list(app_ids)),
            RestrictedToken.revoked_at.is_(None),
            RestrictedToken.expires_at > now,
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
