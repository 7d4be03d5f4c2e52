"""Data-API authentication: from a bearer token to the caller's :class:`AccessContext`, or a refusal.

The whole decision lives here, in the order a request meets it; it leaves the broker only to ask the
owners: ``oauth.tokens`` for the stored grant behind the token (one query, no cache: the kill switch's
commit is seen by the very next request on every worker), ``marketplace`` for what the app's listing
state and approved scopes mean, ``incident.revocation`` for the published kill signal. A known token of
an app that may not call is refused with a 403 and recorded as evidence (``broker.refusals``).

A bearer token is either an access token or a restricted token (``oauth.restricted``, told apart by
its prefix); both go through the same checks. An access token gets raw identifying fields **masked**
(:func:`ordinary_modes`, the one downgrade rule); a restricted token gets exactly its minted fields raw,
and only on the route that accepts it (``allow_restricted``), every other route refusing it with 403
``restricted_token_not_accepted``.

``check_access_token`` is the same check without the evidence, run by ``web.auth_first`` before a
``/v1`` request's body is read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from fastapi import Request
from sqlalchemy.orm import Session

from appwarden.broker.refusals import Refusal, refusal_log
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import Forbidden, Unauthenticated
from appwarden.incident.revocation import worker_signal
from appwarden.marketplace.lifecycle import Access, access_in_state, refusal_code, scopes_for_access
from appwarden.marketplace.scopes import PII_FIELDS, Mode, effective_scopes, field_modes
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.monitor.runtime import monitor_of
from appwarden.monitor.tally import LateCall
from appwarden.oauth.restricted import Restriction, is_restricted, lookup_restricted_token
from appwarden.oauth.tokens import lookup_access_token
from appwarden.oauth.vocabulary import ConnectionStatus
from appwarden.web.deps import bearer_token

KILLED_CODE = refusal_code(LifecycleState.DELISTED)  # what the kill switch leaves an app refused with


class AppRefused(Forbidden):
    """403 ``app_restricted`` / ``app_delisted`` (…) for a known token of an app that may not call."""

    def __init__(self, detail: str, *, code: str, refused: Refusal) -> None:
        super().__init__(detail, code=code)
        self.refused = refused


class TokenRefused(Unauthenticated):
    """401 for a known token that no longer works (revoked, expired): the app is known, so the monitor
    counts it (probing); unknown tokens name no app."""

    def __init__(
        self, detail: str, *, refused: Refusal, code: str | None = None, revoked: bool = False
    ) -> None:
        super().__init__(detail, code=code)
        self.refused = refused
        self.revoked = revoked  # revoked (a call after revocation), not merely expired


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Who is calling the data API, for which company, with which effective grant."""

    token_id: int
    app_id: int
    app_slug: str
    company_id: int
    connection_id: int
    scopes: tuple[str, ...]  # approved ∩ consented ∩ token scope
    expires_at: datetime | None = None  # when the bearer token expires
    restriction: Restriction | None = None  # set for a restricted token
    # Listed before screening (``App.grandfathered``): until its first audit, its access tokens still
    # carry raw identifying fields, as they did when the company consented (an audit lapse restricts it).
    grandfathered: bool = False
    client: str | None = None  # the caller's address, for the monitor's client network (set per request)

    @property
    def field_modes(self) -> dict[str, Mode]:
        """The mode each customer field goes out in for this bearer token (see :func:`ordinary_modes`)."""
        modes = field_modes(self.scopes)
        if self.restriction is None:
            return modes if self.grandfathered else ordinary_modes(modes)
        # Only the minted fields, and only while still granted raw (approval or consent may have been
        # withdrawn since the minting): raw.
        return {f: Mode.RAW for f in self.restriction.fields if modes.get(f) is Mode.RAW}

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the scope {scope!r}", required_scope=scope)


def ordinary_modes(modes: dict[str, Mode]) -> dict[str, Mode]:
    """The one downgrade rule: through an access token, a raw identifying field goes out **masked**.

    Raw identifying fields (``marketplace.scopes.PII_FIELDS``) leave only through a restricted token,
    minted for named people and a stated purpose; everything else keeps its granted mode.
    """
    if not any(mode is Mode.RAW and f in PII_FIELDS for f, mode in modes.items()):
        return modes
    return {f: Mode.MASKED if mode is Mode.RAW and f in PII_FIELDS else mode for f, mode in modes.items()}


def authenticate(
    session: Session, bearer: str | None, *, now: datetime | None = None, allow_restricted: bool = False
) -> AccessContext:
    """Resolve a presented bearer token to its :class:`AccessContext`, or fail closed.

    401 for a missing, unknown, expired or revoked token (a restricted token is revoked with the access
    token that minted it); 403 ``app_delisted`` / ``connection_inactive`` when the token is fine but the
    app or the company's connection is not; 403 ``restricted_token_not_accepted`` for a valid restricted
    token where ``allow_restricted`` is false.
    """
    if not bearer:
        raise Unauthenticated("missing bearer token")
    now = now or utcnow()
    restriction: Restriction | None = None
    if is_restricted(bearer):
        found = lookup_restricted_token(session, bearer)
        if found is None:
            raise Unauthenticated("unknown restricted token")
        grant, restriction = found
    else:
        looked_up = lookup_access_token(session, bearer)
        if looked_up is None:
            raise Unauthenticated("unknown access token")
        grant = looked_up
    access = access_in_state(grant.listing_state, grant.restricted_policy, test_company=grant.test_company)
    if access == Access.REFUSED:
        # Checked before revocation and expiry: a killed app's tokens are all revoked too, and the app
        # must be told (and the call recorded as) what it is — refused — on every route.
        raise AppRefused(
            f"app {grant.app_slug!r} is {grant.listing_state}",
            code=refusal_code(grant.listing_state),
            refused=Refusal(app_id=grant.app_id, company_id=grant.company_id, token_id=grant.token_id),
        )
    whose = Refusal(app_id=grant.app_id, company_id=grant.company_id, token_id=grant.token_id)
    if grant.revoked_at is not None:
        raise TokenRefused("access token has been revoked", refused=whose, revoked=True)
    if grant.access_expires_at <= now:
        raise TokenRefused("access token has expired", code="token_expired", refused=whose)
    if grant.connection_status != ConnectionStatus.ACTIVE:
        raise Forbidden(f"the connection is {grant.connection_status}", code="connection_inactive")
    if restriction is not None and not allow_restricted:
        raise Forbidden(
            "a restricted token is accepted only by GET /v1/customers/{id}",
            code="restricted_token_not_accepted",
        )
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
        expires_at=grant.access_expires_at,
        restriction=restriction,
        grandfathered=grant.grandfathered and restriction is None,
    )


def authenticate_request(
    request: Request, session: Session, *, allow_restricted: bool = False
) -> AccessContext:
    """``authenticate``, the published kill signal and the request quota (``monitor``, 429); a refused
    call is recorded, then re-raised.

    ``session`` must be in a transaction the caller began by hand: it is rolled back before the evidence
    is written (on SQLite the request's transaction holds the write lock).
    """
    monitor = monitor_of(request.app)
    try:
        ctx = authenticate(session, bearer_token(request), allow_restricted=allow_restricted)
        if worker_signal(request.app).killed(ctx.app_id):
            refused = Refusal(app_id=ctx.app_id, company_id=ctx.company_id, token_id=ctx.token_id)
            raise AppRefused(f"app {ctx.app_slug!r} is delisted", code=KILLED_CODE, refused=refused)
    except TokenRefused as exc:
        late = LateCall.AFTER_REVOCATION if exc.revoked else None
        monitor.refused(exc.refused.app_id, exc.refused.company_id, 401, late=late)
        raise
    except AppRefused as exc:
        # The kill switch delists (and the published signal says so): a delisted app calling at all
        # is a call after a kill; a suspended or paused one is an ordinary 403.
        late = LateCall.AFTER_KILL if exc.code == KILLED_CODE else None
        monitor.refused(exc.refused.app_id, exc.refused.company_id, 403, late=late)
        session.rollback()
        refusal_log(request.app).note(
            exc.refused,
            code=exc.code,
            method=request.method,
            path=request.url.path,
            remote=request.client.host if request.client else None,
        )
        raise
    monitor.admit_request(session, ctx.app_id, ctx.company_id)
    return replace(ctx, client=request.client.host) if request.client else ctx


def check_access_token(request: Request) -> None:
    """Raise the route's 401 for a missing, unknown, expired or revoked token (``web.auth_first`` runs it
    before a ``/v1`` body is read). Read in a transaction of its own; a 403 (suspended or killed app,
    inactive connection, a restricted token on a route that refuses it) is left to the route, which
    refuses it again and records it as evidence."""
    db: Database = request.app.state.db
    with db.sessionmaker() as session:
        try:
            authenticate(session, bearer_token(request))
        except Forbidden:
            return
