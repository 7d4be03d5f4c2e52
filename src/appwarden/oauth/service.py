"""OAuth persistence rules: codes, connections, token lookup, rotation, reuse and revocation.

Everything here works on one SQLAlchemy session (the request's transaction) and a clock, so the
Authlib grant classes in ``oauth.server`` stay thin and tests can pass an explicit time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.digests import token_hash
from appwarden.events.service import EventTag, record
from appwarden.hooks import Hook
from appwarden.marketplace.clients import ClientApp, client_by_client_id, client_by_id
from appwarden.marketplace.lifecycle import Access, access_in_state
from appwarden.marketplace.scopes import CUSTOMER_FIELDS, PII_FIELDS, RESOURCE_SCOPES, Mode, effective_scopes
from appwarden.marketplace.service import approved_scopes_of, scopes_on_offer
from appwarden.oauth.connections import ConnectionRef, ref
from appwarden.oauth.models import AuthorizationCode, Connection, Token
from appwarden.oauth.vocabulary import ConnectionStatus
from appwarden.platform.accounts import Account, account
from appwarden.platform.directory import CompanyName, company_names
from appwarden.platform.staff import is_test_company

TokenKind = Literal["access_token", "refresh_token"]


def all_scopes() -> list[str]:
    """Every scope this server knows: each customer field in each mode it may take, then resources."""
    scopes: list[str] = []
    for field in CUSTOMER_FIELDS:
        modes = list(Mode) if field in PII_FIELDS else [Mode.RAW]
        scopes.extend(f"customers.{field}:{mode.value}" for mode in modes)
    return scopes + sorted(RESOURCE_SCOPES)


def family_for_code(code: AuthorizationCode) -> str:
    """The token family of everything issued from ``code``.

    Derived from the stored code hash (not the code) so that a replayed code can find and revoke
    every token descended from it, refreshes included, without another column.
    """
    return f"code_{code.code_hash[:35]}"


# Announced in the consent's transaction when an owner approves a connection (new or re-approved):
# ``(session, connection, settings, actor)``.
connection_granted: Hook[[Session, ConnectionRef, Settings, str]] = Hook("connection granted")


@dataclass(frozen=True, slots=True)
class TokenReuse:
    """A one-time credential presented again (a rotated refresh token, a used authorization code):
    refused, and its grant family revoked (OAuth 2.0 Security BCP, RFC 9700 §4.14.2 and §4.2.4)."""

    app_id: int
    company_id: int
    kind: str  # "refresh_token" or "authorization_code"
    family: str
    tokens_revoked: int
    at: datetime


# Announced in the token endpoint's transaction after a reuse was refused and its family revoked (the
# monitor raises a ``probing`` alert): ``(session, reuse)``.
token_reused: Hook[[Session, TokenReuse]] = Hook("token reused")


@dataclass(slots=True)
class TokenMatch:
    """A stored token row and which of its two tokens was presented."""

    row: Token
    kind: TokenKind


class OAuthStore:
    """Database operations of the authorisation server for one transaction."""

    def __init__(self, session: Session, *, now: datetime) -> None:
        self.session = session
        self.now = now

    # -- clients and users: the marketplace's and the platform's answers ------------------------

    def app_by_client_id(self, client_id: str) -> ClientApp | None:
        return client_by_client_id(self.session, client_id)

    def user(self, user_id: int) -> Account | None:
        return account(self.session, user_id)

    def company(self, company_id: int) -> CompanyName | None:
        return company_names(self.session, [company_id]).get(company_id)

    # -- connections ---------------------------------------------------------------------------

    def connection(self, app_id: int, company_id: int) -> Connection | None:
        return self.session.scalar(
            select(Connection).where(Connection.app_id == app_id, Connection.company_id == company_id)
        )

    def grant_connection(
        self, app: ClientApp, user: Account, consented: list[str], *, settings: Settings | None = None
    ) -> Connection:
        """Create or update the company's connection to ``app`` with what the owner ticked.

        With ``settings`` (the consent page passes them), :data:`connection_granted` is announced: the
        canary package answers it, so a connection without canaries gets them now if the marketplace
        policy has them on (``canary.service.ensure_canaries``, wired by ``appwarden.wiring``).
        """
        assert user.company_id is not None
        offered, version = scopes_on_offer(self.session, app)
        scopes = effective_scopes(offered, consented)
        conn = self.connection(app.id, user.company_id)
        if conn is None:
            conn = Connection(
                company_id=user.company_id,
                app_id=app.id,
                granted_by_user_id=user.id,
                scopes=scopes,
                app_version=version,
                status=ConnectionStatus.ACTIVE.value,
                created_at=self.now,
                updated_at=self.now,
            )
            self.session.add(conn)
            self.session.flush()
            tag = EventTag.CONNECTION_CREATED
            previous: list[str] = []
        else:
            previous = list(conn.scopes)
            conn.scopes = scopes
            conn.app_version = version
            conn.status = ConnectionStatus.ACTIVE.value
            conn.granted_by_user_id = user.id
            conn.updated_at = self.now
            tag = EventTag.CONNECTION_UPDATED
        record(
            self.session,
            tag,
            actor=user.username,
            app_id=app.id,
            company_id=user.company_id,
            connection=conn.public_id,
            scopes=scopes,
            previous_scopes=previous,
            app_version=version,
        )
        if settings is not None:
            connection_granted(self.session, ref(conn), settings, user.username)
        return conn

    # -- authorisation codes -------------------------------------------------------------------

    def save_code(
        self,
        code: str,
        *,
        app: ClientApp,
        user: Account,
        redirect_uri: str,
        scope: str,
        challenge: str,
        method: str,
        ttl: int,
    ) -> None:
        """Store a new code's hash with its PKCE challenge and exact redirect URI."""
        assert user.company_id is not None
        self.session.add(
            AuthorizationCode(
                code_hash=token_hash(code),
                app_id=app.id,
                company_id=user.company_id,
                user_id=user.id,
                redirect_uri=redirect_uri,
                scope=scope,
                code_challenge=challenge,
                code_challenge_method=method,
                created_at=self.now,
                expires_at=self.now + timedelta(seconds=ttl),
            )
        )

    def consume_code(self, code: str, app: ClientApp) -> AuthorizationCode | None:
        """Claim a code for ``app`` exactly once; None if unknown, expired or already used.

        The claim is a conditional UPDATE, so two concurrent exchanges cannot both win. A second
        use revokes every token issued from the code (RFC 6749 §4.1.2) and is recorded.
        """
        digest = token_hash(code)
        claimed = self.session.execute(
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_hash == digest,
                AuthorizationCode.app_id == app.id,
                AuthorizationCode.used_at.is_(None),
                AuthorizationCode.expires_at > self.now,
            )
            .values(used_at=self.now)
            .execution_options(synchronize_session=False)
        )
        row = self.session.scalar(
            select(AuthorizationCode).where(
                AuthorizationCode.code_hash == digest, AuthorizationCode.app_id == app.id
            )
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            if row is not None:
                self.session.refresh(row)
            return row
        if row is not None and row.used_at is not None:
            family = family_for_code(row)
            revoked = self.revoke_family(family)
            record(
                self.session,
                EventTag.TOKEN_REUSED,
                actor=app.slug,
                app_id=app.id,
                company_id=row.company_id,
                kind="authorization_code",
                family=family,
                tokens_revoked=revoked,
            )
            token_reused(
                self.session,
                TokenReuse(app.id, row.company_id, "authorization_code", family, revoked, self.now),
            )
        return None

    # -- tokens --------------------------------------------------------------------------------

    def find_token(self, token: str, hint: str | None = None) -> TokenMatch | None:
        """The stored row for a presented access or refresh token (the hint only orders the lookups)."""
        digest = token_hash(token)
        kinds: list[TokenKind] = ["access_token", "refresh_token"]
        if hint == "refresh_token":
            kinds.reverse()
        for kind in kinds:
            column = Token.access_token_hash if kind == "access_token" else Token.refresh_token_hash
            row = self.session.scalar(select(Token).where(column == digest))
            if row is not None:
                return TokenMatch(row, kind)
        return None

    def usable_connection(self, app: ClientApp, connection_id: int) -> Connection | None:
        """The connection if both it and the app may still receive tokens, else None."""
        conn = self.session.get(Connection, connection_id)
        if conn is None or conn.status != ConnectionStatus.ACTIVE.value:
            return None
        test = is_test_company(self.session, conn.company_id)
        if access_in_state(app.listing_state, app.restricted_policy, test_company=test) == Access.REFUSED:
            return None
        return conn

    def consented_version_scopes(self, app: ClientApp, conn: Connection) -> list[str]:
        """The approved scopes of the app version ``conn`` consented to (the app's for older rows; for an
        app not yet listed, what its version in screening asks)."""
        approved = approved_scopes_of(self.session, app.id, conn.app_version)
        return scopes_on_offer(self.session, app)[0] if approved is None else approved

    def refresh_candidate(self, refresh_token: str, app: ClientApp) -> Token | None:
        """The token row a refresh token may be exchanged from, or None.

        Presenting a refresh token that was already rotated is reuse: the whole family is revoked.
        """
        match = self.find_token(refresh_token, "refresh_token")
        if match is None or match.kind != "refresh_token" or match.row.app_id != app.id:
            return None
        row = match.row
        if row.rotated_at is not None:
            self.reuse_detected(row, app, kind="refresh_token")
            return None
        if row.revoked_at is not None:
            return None
        if row.refresh_expires_at is None or row.refresh_expires_at <= self.now:
            return None
        return row

    def claim_rotation(self, row: Token, app: ClientApp) -> bool:
        """Mark ``row``'s refresh token used, once; losing a concurrent race counts as reuse."""
        claimed = self.session.execute(
            update(Token)
            .where(Token.id == row.id, Token.rotated_at.is_(None), Token.revoked_at.is_(None))
            .values(rotated_at=self.now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            row.rotated_at = self.now
            return True
        self.reuse_detected(row, app, kind="refresh_token")
        return False

    def reuse_detected(self, row: Token, app: ClientApp, *, kind: str) -> None:
        revoked = self.revoke_family(row.family_id)
        record(
            self.session,
            EventTag.TOKEN_REUSED,
            actor=app.slug,
            app_id=app.id,
            company_id=row.company_id,
            kind=kind,
            family=row.family_id,
            tokens_revoked=revoked,
        )
        token_reused(self.session, TokenReuse(app.id, row.company_id, kind, row.family_id, revoked, self.now))

    def revoke_family(self, family_id: str) -> int:
        """Revoke every access and refresh token of one grant; return how many rows changed."""
        result = self.session.execute(
            update(Token)
            .where(Token.family_id == family_id, Token.revoked_at.is_(None))
            .values(revoked_at=self.now)
            .execution_options(synchronize_session=False)
        )
        self.session.expire_all()
        return int(result.rowcount)  # type: ignore[attr-defined]

    def revoke(self, match: TokenMatch, app: ClientApp) -> int:
        """RFC 7009 revocation: a refresh token takes its whole family with it; an access token
        takes its own row (its paired refresh token too, which §2.1 permits)."""
        if match.kind == "refresh_token":
            revoked = self.revoke_family(match.row.family_id)
        else:
            revoked = 0
            if match.row.revoked_at is None:
                match.row.revoked_at = self.now
                revoked = 1
        record(
            self.session,
            EventTag.TOKEN_REVOKED,
            actor=app.slug,
            app_id=app.id,
            company_id=match.row.company_id,
            kind=match.kind,
            family=match.row.family_id,
            tokens_revoked=revoked,
        )
        return revoked

    def is_active(self, match: TokenMatch) -> bool:
        """Whether the presented token would be accepted right now (the RFC 7662 ``active``)."""
        row = match.row
        if row.revoked_at is not None:
            return False
        if match.kind == "refresh_token":
            if row.rotated_at is not None:
                return False
            expires = row.refresh_expires_at
        else:
            expires = row.access_expires_at
        if expires is None or expires <= self.now:
            return False
        app = client_by_id(self.session, row.app_id)
        return app is not None and self.usable_connection(app, row.connection_id) is not None

    def introspect(self, match: TokenMatch, *, issuer: str) -> dict[str, object]:
        """The RFC 7662 response for an active token: effective scope, owner ids and times."""
        row = match.row
        app = client_by_id(self.session, row.app_id)
        conn = self.session.get(Connection, row.connection_id)
        company = self.company(row.company_id)
        assert app is not None and conn is not None and company is not None
        granted = effective_scopes(self.consented_version_scopes(app, conn), conn.scopes)
        in_token = set(row.scope.split())
        expires = row.access_expires_at if match.kind == "access_token" else row.refresh_expires_at
        assert expires is not None
        return {
            "active": True,
            "scope": " ".join(s for s in granted if s in in_token),
            "client_id": app.client_id,
            # RFC 7662 takes token types from RFC 6749 §5.1; refresh tokens have none there.
            "token_type": "Bearer" if match.kind == "access_token" else "refresh_token",
            "exp": int(expires.timestamp()),
            "iat": int(row.issued_at.timestamp()),
            "sub": conn.public_id,
            "company": company.public_id,
            "iss": issuer,
        }


def connection_public_ids(session: Session, connection_ids: Collection[int]) -> dict[int, str]:
    """``{connection id: public id}`` for callers that hold internal ids (a canary's connection)."""
    if not connection_ids:
        return {}
    query = select(Connection.id, Connection.public_id).where(Connection.id.in_(list(connection_ids)))
    return {cid: public for cid, public in session.execute(query)}


def connected_company_ids(session: Session, app_id: int) -> list[int]:
    """The companies with an active connection to the app (whom an app's restriction concerns)."""
    query = select(Connection.company_id).where(
        Connection.app_id == app_id, Connection.status == ConnectionStatus.ACTIVE.value
    )
    return sorted(set(session.scalars(query)))


def consented_versions(session: Session, app_id: int) -> dict[int, int | None]:
    """``{company id: app version consented to}`` for the app's connections."""
    query = select(Connection.company_id, Connection.app_version).where(Connection.app_id == app_id)
    return {company_id: version for company_id, version in session.execute(query)}


def grant_families(session: Session, token_ids: Collection[int]) -> dict[int, str]:
    """``{token id: family id}``: the grant each access token belongs to (every rotation of one
    authorisation shares it), for the monitor's first sighting of a credential."""
    if not token_ids:
        return {}
    query = select(Token.id, Token.family_id).where(Token.id.in_(list(token_ids)))
    return {tid: family for tid, family in session.execute(query)}
