"""Data-API authentication: from a bearer token to the caller's :class:`AccessContext`, or a refusal.

The whole decision lives here, in the order a request meets it; it leaves the broker only to ask the
owners: ``oauth.tokens`` for the stored grant behind the token (one query, no cache: the kill switch's
commit is seen by the very next request on every worker), ``marketplace`` for what the app's listing
state and approved scopes mean, ``incident.revocation`` for the published kill signal. A known token of
an app that may not call is refused with a 403 and recorded as evidence (``broker.refusals``).

``check_access_token`` is the same check without the evidence, run by ``web.auth_first`` before a
``/v1`` request's body is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from sqlalchemy.orm import Session

from appwarden.broker.refusals import Refusal, refusal_log
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import Forbidden, Unauthenticated
from appwarden.incident.revocation import worker_signal
from appwarden.marketplace.lifecycle import Access, access_in_state, refusal_code, scopes_for_access
from appwarden.marketplace.scopes import Mode, effective_scopes, field_modes
from appwarden.oauth.models import ConnectionStatus
from appwarden.oauth.tokens import lookup_access_token
from appwarden.web.deps import bearer_token


class AppRefused(Forbidden):
    """403 ``app_restricted`` / ``app_delisted`` (…) for a known token of an app that may not call."""

    def __init__(self, detail: str, *, code: str, refused: Refusal) -> None:
        super().__init__(detail, code=code)
        self.refused = refused


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


def authenticate(session: Session, bearer: str | None, *, now: datetime | None = None) -> AccessContext:
    """Resolve a presented bearer token to its :class:`AccessContext`, or fail closed.

    401 for a missing, unknown, expired or revoked token; 403 ``app_delisted`` / ``connection_inactive``
    when the token is fine but the app or the company's connection is not.
    """
    if not bearer:
        raise Unauthenticated("missing bearer token")
    now = now or utcnow()
    grant = lookup_access_token(session, bearer)
    if grant is None:
        raise Unauthenticated("unknown access token")
    access = access_in_state(grant.listing_state, grant.restricted_policy, test_company=grant.test_company)
    if access == Access.REFUSED:
        # Checked before revocation and expiry: a killed app's tokens are all revoked too, and the app
        # must be told (and the call recorded as) what it is — refused — on every route.
        raise AppRefused(
            f"app {grant.app_slug!r} is {grant.listing_state}",
            code=refusal_code(grant.listing_state),
            refused=Refusal(app_id=grant.app_id, company_id=grant.company_id, token_id=grant.token_id),
        )
    if grant.revoked_at is not None:
        raise Unauthenticated("access token has been revoked")
    if grant.access_expires_at <= now:
        raise Unauthenticated("access token has expired", code="token_expired")
    if grant.connection_status != ConnectionStatus.ACTIVE:
        raise Forbidden(f"the connection is {grant.connection_status}", code="connection_inactive")
    granted = effective_scopes(grant.approved, grant.consented)
    in_token = set(grant.token_scope.split())
    # A restricted app (token policy) receives raw identifying fields as tokens, nothing more.
    in_force = scopes_for_access([s for s in granted if s in in_token], access, grant.restricted_policy)
    return AccessContext(
        token_id=grant.token_id,
        app_id=grant.app_id,
        app_slug=grant.app_slug,
        company_id=grant.company_id,
        connection_id=grant.connection_id,
        scopes=tuple(in_force),
    )


def authenticate_request(request: Request, session: Session) -> AccessContext:
    """``authenticate`` plus the published kill signal; a refused call is recorded, then re-raised.

    ``session`` must be in a transaction the caller began by hand: it is rolled back before the evidence
    is written (on SQLite the request's transaction holds the write lock).
    """
    try:
        ctx = authenticate(session, bearer_token(request))
        if worker_signal(request.app).killed(ctx.app_id):
            refused = Refusal(app_id=ctx.app_id, company_id=ctx.company_id, token_id=ctx.token_id)
            raise AppRefused(f"app {ctx.app_slug!r} is delisted", code="app_delisted", refused=refused)
    except AppRefused as exc:
        session.rollback()
        refusal_log(request.app).note(
            exc.refused,
            code=exc.code,
            method=request.method,
            path=request.url.path,
            remote=request.client.host if request.client else None,
        )
        raise
    return ctx


def check_access_token(request: Request) -> None:
    """Raise the route's 401 for a missing, unknown, expired or revoked token (``web.auth_first`` runs it
    before a ``/v1`` body is read). Read in a transaction of its own; a 403 (suspended or killed app,
    inactive connection) is left to the route, which refuses it again and records it as evidence."""
    db: Database = request.app.state.db
    with db.sessionmaker() as session:
        try:
            authenticate(session, bearer_token(request))
        except Forbidden:
            return
