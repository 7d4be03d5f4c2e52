"""The OAuth 2.0 authorisation server: Authlib's server, grant and endpoint classes, bound to our tables.

A thin adapter (``oauth.adapter``) turns a Starlette request into
Authlib's :class:`OAuth2Request` and Authlib's ``(status, body, headers)`` into a response. Authlib does
the protocol: client authentication, redirect URI and response type checks, PKCE, grant dispatch,
error formats. We supply persistence (``oauth.service``) and policy:

- exact redirect URI match and no default redirect URI (the client must name one it registered);
- PKCE with S256 only, required on every authorisation request;
- scope ⊆ the scopes on offer (approved; before listing, what the version in screening asks, for test
  companies only); the code carries what the owner ticked;
- refresh tokens rotate; presenting a rotated one revokes the whole family;
- suspended or delisted apps and inactive connections get no tokens.

A server object is built per request around that request's DB session and clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
    grants,
)
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.errors import InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.marketplace.clients import ClientApp
from appwarden.marketplace.lifecycle import PRE_LISTING, Access, access_in_state
from appwarden.marketplace.scopes import parse_scopes
from appwarden.marketplace.service import check_client_secret, scopes_on_offer
from appwarden.oauth.adapter import HttpRequest, HttpResponse, StarletteOAuth2Request
from appwarden.oauth.models import AuthorizationCode, Token
from appwarden.oauth.service import OAuthStore, TokenMatch, all_scopes, family_for_code
from appwarden.oauth.tokens import new_token, store_token
from appwarden.platform.accounts import Account

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = ["authorization_code", "refresh_token"]


def describable(text: str) -> str:
    """``text`` with what RFC 6749 §5.2 forbids in an error description (outside %x20-21 / %x23-5B /
    %x5D-7E) replaced by ``?``: Authlib refuses such a description with a ValueError, so an error that
    echoes client input would otherwise be a 500."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)


# -- apps, codes and tokens seen through Authlib's mixins ---------------------------------------


class AppClient(ClientMixin):
    """A marketplace app as an OAuth client (the marketplace's view of it, ``ClientApp``)."""

    def __init__(self, app: ClientApp, offered: list[str]) -> None:
        self.app = app
        # What a new consent may grant (``marketplace.service.scopes_on_offer``).
        self.offered = offered
        # On a refresh: the approved scopes of the version the company consented to (not the newest).
        self.grant_scopes: list[str] | None = None

    @property
    def listed(self) -> bool:
        """Whether the app may receive tokens at all: listed, restricted with token access, or not yet
        listed (its codes exist only for test companies; ``usable_connection`` checks per company)."""
        state = self.app.listing_state
        if state in PRE_LISTING:
            return True
        return access_in_state(state, self.app.restricted_policy, test_company=False) != Access.REFUSED

    def get_client_id(self) -> str:
        return self.app.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # the request must name a registered redirect URI

    def get_allowed_scope(self, scope: str | None) -> str:
        approved = list(self.offered if self.grant_scopes is None else self.grant_scopes)
        if not scope:
            return str(list_to_scope(approved))  # RFC 6749 §3.3: default to what review approved
        return str(list_to_scope([s for s in scope_to_list(scope) if s in approved]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.app.redirect_uris  # exact string match, nothing looser

    def check_client_secret(self, client_secret: str) -> bool:
        return check_client_secret(self.app, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


@dataclass(slots=True)
class CodeRecord:
    """A claimed authorisation code as Authlib's grant and PKCE extension read it."""

    row: AuthorizationCode

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


@dataclass(slots=True)
class TokenRecord:
    """A stored token as Authlib's refresh grant and RFC 7009/7662 endpoints read it."""

    match: TokenMatch
    active: bool = True

    def check_client(self, client: AppClient) -> bool:
        return self.match.row.app_id == client.app.id

    def get_scope(self) -> str:
        return self.match.row.scope

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        return not self.active


# -- grants and endpoints ---------------------------------------------------------------------


def _server(grant: Any) -> AppwardenServer:
    server: AppwardenServer = grant.server
    return server


class _ListedClientOnly:
    """Token-endpoint grants: the authenticated client must be a listed app."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def authenticate_token_endpoint_client(self) -> AppClient:
        client: AppClient = super().authenticate_token_endpoint_client()  # type: ignore[misc]
        if not client.listed:
            raise UnauthorizedClientError(f"the app is {client.app.listing_state}; no tokens are issued")
        return client


class S256CodeChallenge(CodeChallenge):
    """PKCE, required, with S256 only: ``plain`` and a missing challenge are ``invalid_request``."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    CODE_CHALLENGE_METHODS: ClassVar[dict[str, Callable[[str, str], bool]]] = {
        "S256": compare_s256_code_challenge
    }

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(_ListedClientOnly, grants.AuthorizationCodeGrant):
    """Authorisation code grant: codes hashed, 120 s, single use; replay revokes what they issued."""

    def validate_requested_scope(self) -> None:
        scope = self.request.payload.scope
        if not scope:
            return
        try:
            parse_scopes(scope)
        except InvalidInput as exc:
            raise InvalidScopeError(describable(exc.detail)) from None
        approved = set(self.request.client.offered)
        extra = [s for s in scope_to_list(scope) if s not in approved]
        if extra:
            raise InvalidScopeError(describable(f"scope not approved for this app: {' '.join(extra)}"))

    def save_authorization_code(self, code: str, request: StarletteOAuth2Request) -> None:
        server = _server(self)
        data = request.payload.data
        server.store.save_code(
            code,
            app=request.client.app,
            user=request.user,
            redirect_uri=data["redirect_uri"],
            scope=request.consented_scope or request.scope,
            challenge=data["code_challenge"],
            method=data["code_challenge_method"],
            ttl=server.settings.authorization_code_ttl,
        )

    def query_authorization_code(self, code: str, client: AppClient) -> CodeRecord | None:
        row = _server(self).store.consume_code(code, client.app)
        return CodeRecord(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        """Nothing to do: the code was claimed atomically in :meth:`query_authorization_code`."""

    def authenticate_user(self, authorization_code: CodeRecord) -> Account:
        store = _server(self).store
        row = authorization_code.row
        user = store.user(row.user_id)
        app = self.request.client.app
        conn = store.connection(app.id, row.company_id)
        if user is None or conn is None or store.usable_connection(app, conn.id) is None:
            raise InvalidGrantError("the connection for this code is not active")
        self.request.connection = conn
        self.request.family_id = family_for_code(row)
        return user


class RotatingRefreshGrant(_ListedClientOnly, grants.RefreshTokenGrant):
    """Refresh grant with rotation: each refresh gives a new pair in the same family."""

    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self) -> None:
        # Authlib's order, with the one-time claim last so a refused scope does not burn the token.
        client = self._validate_request_client()
        self.request.client = client
        record_ = self._validate_request_token(client)
        self._validate_token_scope(record_)
        if not _server(self).store.claim_rotation(record_.match.row, client.app):
            raise InvalidGrantError("refresh token reuse detected; the grant is revoked")
        self.request.refresh_token = record_

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        store = _server(self).store
        app = self.request.client.app
        row = store.refresh_candidate(refresh_token, app)
        if row is None:
            return None
        conn = store.usable_connection(app, row.connection_id)
        if conn is None:
            return None
        self.request.connection = conn
        self.request.family_id = row.family_id
        self.request.client.grant_scopes = store.consented_version_scopes(app, conn)
        return TokenRecord(TokenMatch(row, "refresh_token"))

    def authenticate_user(self, refresh_token: TokenRecord) -> TokenRecord:
        # The grant is the company's, not a person's; the token row stands in for the "user".
        return refresh_token

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        """Nothing to do: the old refresh token was marked rotated when it was claimed."""


class _TokenEndpointBase:
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        store = _server(self).store
        match = store.find_token(token_string, token_type_hint)
        return TokenRecord(match, store.is_active(match)) if match is not None else None


class Revocation(_TokenEndpointBase, RevocationEndpoint):
    """RFC 7009. Unknown tokens get 200, as §2.2 says."""

    def revoke_token(self, token: TokenRecord, request: StarletteOAuth2Request) -> None:
        _server(self).store.revoke(token.match, request.client.app)


class Introspection(_TokenEndpointBase, IntrospectionEndpoint):
    """RFC 7662. A client may introspect only its own tokens; others' read as inactive."""

    def check_permission(self, token: TokenRecord, client: AppClient, request: OAuth2Request) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: TokenRecord) -> dict[str, object]:
        server = _server(self)
        return server.store.introspect(token.match, issuer=server.settings.base_url)


# -- the server ---------------------------------------------------------------------------------


def _client_secret_basic(query_client: Callable[[str], AppClient | None], request: OAuth2Request) -> Any:
    """Authlib's ``client_secret_basic``, with credentials that are not UTF-8 refused as 401
    ``invalid_client`` (Authlib's own decode raises ``UnicodeDecodeError``, which would be a 500)."""
    try:
        return authenticate_client_secret_basic(query_client, request)
    except UnicodeDecodeError:
        raise InvalidClientError(
            status_code=401, description="the Basic credentials are not valid UTF-8"
        ) from None


class AppwardenServer(AuthorizationServer):
    """Authlib's authorisation server over one transaction."""

    def __init__(self, session: Session, settings: Settings, *, now: datetime) -> None:
        super().__init__(scopes_supported=all_scopes())
        self.session = session
        self.settings = settings
        self.now = now
        self.store = OAuthStore(session, now=now)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: new_token(),
                refresh_token_generator=lambda **_: new_token(),
                expires_generator=lambda client, grant_type: settings.access_token_ttl,
            ),
        )
        self.register_client_auth_method("client_secret_basic", _client_secret_basic)
        self.register_grant(CodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def get_authorization_grant(self, request: OAuth2Request) -> Any:
        response_type = request.payload.response_type or ""
        if describable(response_type) == response_type:
            return super().get_authorization_grant(request)
        # Authlib would put this response_type into the error description, which then refuses it (a
        # 500). It is not "code" anyway: refuse it here, redirecting only as Authlib does (RFC 6749
        # §4.1.2.1: to a redirect URI validated against a known client).
        client = self.query_client(request.payload.client_id or "")
        redirect_uri = request.payload.redirect_uri
        valid = client is not None and bool(redirect_uri) and client.check_redirect_uri(redirect_uri)
        raise UnsupportedResponseTypeError(
            describable(response_type),
            "the response_type is not supported",
            redirect_uri=redirect_uri if valid else None,
        )

    def query_client(self, client_id: str) -> AppClient | None:
        app = self.store.app_by_client_id(client_id) if client_id else None
        if app is None:
            return None
        return AppClient(app, scopes_on_offer(self.store.session, app)[0])

    def save_token(self, token: dict[str, Any], request: StarletteOAuth2Request) -> Token:
        assert request.connection is not None and request.family_id is not None
        user_id = request.user.id if isinstance(request.user, Account) else None
        row = store_token(
            self.session,
            request.connection,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            scope=token.get("scope", ""),
            access_ttl=int(token["expires_in"]),
            refresh_ttl=self.settings.refresh_token_ttl,
            family_id=request.family_id,
            user_id=user_id,
            now=self.now,
        )
        tag = (
            EventTag.TOKEN_REFRESHED
            if request.payload.grant_type == "refresh_token"
            else EventTag.TOKEN_ISSUED
        )
        record(
            self.session,
            tag,
            actor=request.client.app.slug,
            app_id=request.client.app.id,
            company_id=request.connection.company_id,
            family=request.family_id,
            scope=row.scope,
        )
        return row

    def create_oauth2_request(self, request: HttpRequest | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request, self.settings.base_url)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> HttpResponse:
        return HttpResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signal hook; events are recorded where the change happens instead."""


def metadata(settings: Settings) -> AuthorizationServerMetadata:
    """RFC 8414 authorisation server metadata."""
    base = settings.base_url.rstrip("/")
    return AuthorizationServerMetadata(
        {
            "issuer": settings.base_url,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "scopes_supported": all_scopes(),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GRANT_TYPES,
            "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "ui_locales_supported": ["ja", "en"],
            "service_documentation": f"{base}/docs",
        }
    )


def build_server(session: Session, settings: Settings, *, now: Callable[[], datetime]) -> AppwardenServer:
    """The server for one request's transaction."""
    return AppwardenServer(session, settings, now=now())


__all__ = ["AppClient", "AppwardenServer", "HttpRequest", "HttpResponse", "build_server", "metadata"]
