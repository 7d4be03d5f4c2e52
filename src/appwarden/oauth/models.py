"""OAuth tables: connections (a company's grant to an app), authorisation codes, tokens and restricted
tokens.

Codes and tokens are stored as SHA-256 hashes only; the plaintext exists once, in the response.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow
from appwarden.oauth.vocabulary import ConnectionStatus


class Connection(Base):
    """A contract company's grant to an app (連携設定): the fields and modes its owner consented to."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("company_id", "app_id", name="uq_connections_company_app"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "con"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    granted_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    scopes: Mapped[list] = mapped_column(default=list)
    # The app version the owner consented to: the broker serves that version's approved scopes, so a
    # scope increase reaches a company only once its owner consents again.
    app_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=ConnectionStatus.ACTIVE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AuthorizationCode(Base):
    """A one-time authorisation code bound to its PKCE challenge and exact redirect URI."""

    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(2000))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Token(Base):
    """An access token and its refresh token. ``family_id`` ties every rotation of one grant together,
    so reuse of a rotated refresh token revokes the whole family."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    scope: Mapped[str] = mapped_column(String(2000))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # refresh token used once
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RestrictedToken(Base):
    """A short-lived token for raw identifying fields of named customers (minted by ``/v1/restricted-
    tokens`` from an access token). Stored as a hash only; bound to the access token that minted it, so
    it dies with that token, its connection and its app, and it is of that token's one company."""

    __tablename__ = "restricted_tokens"
    __table_args__ = (Index("ix_restricted_tokens_connection_id_issued_at", "connection_id", "issued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "rdt"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    parent_token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_ids: Mapped[list] = mapped_column(default=list)  # internal ids, the named customers
    fields: Mapped[list] = mapped_column(default=list)  # identifying fields, delivered raw
    purpose: Mapped[str] = mapped_column(String(500))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
