"""``POST /v1/restricted-tokens``: raw identifying fields, for named customers, for a stated purpose.

An app's access token delivers identifying fields (name, name_kana, phone, email, address, birthday)
masked even where the app is approved raw (``broker.auth.ordinary_modes``). To read them raw it mints a
restricted token from that access token: at most 5 minutes (never beyond the access token's own
expiry), at most 100 of its ``cus_…`` ids, only fields the access token carries in raw mode, one purpose.
The token is of the access token's company by construction (it is stored with that token's connection
and every use is checked against it) and works only on ``GET /v1/customers/{id}`` for those people.

Minting is recorded in the ledger (kind ``restricted_mint``, no person delivered, the token's id and
purpose in the hashed content) and as a security event, in one transaction with the token itself;
every delivery made with the token is a ledger entry of kind ``restricted`` with the same id and purpose.
A connection may mint ``restricted_token_mints_per_minute`` tokens a minute (then 429).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from appwarden.broker import pseudonym
from appwarden.broker.api import Caller, _caller, _new_request_id, _record
from appwarden.broker.auth import AccessContext
from appwarden.canary.service import served_to
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import Forbidden, InvalidInput, NotFound, TooManyRequests
from appwarden.events.service import EventTag, record
from appwarden.ledger.vocabulary import EntryKind
from appwarden.marketplace.scopes import CUSTOMER_FIELDS, PII_FIELDS
from appwarden.monitor.runtime import Monitor
from appwarden.oauth import restricted as tokens
from appwarden.platform.customer_rows import served_ids
from appwarden.platform.directory import customer_cards
from appwarden.web.deps import DatabaseDep, SettingsDep
from appwarden.web.problems import problem_responses
from appwarden.web.text import Body

MAX_SECONDS = 300
MAX_CUSTOMERS = 100
CAP_WINDOW = timedelta(minutes=1)

router = APIRouter(prefix="/v1", tags=["data API"])


class RestrictedTokenIn(Body):
    model_config = ConfigDict(extra="forbid")

    customers: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1,
        max_length=MAX_CUSTOMERS,
        description="This app's ids of the customers (`cus_…`), 1..100, all of the token's company.",
    )
    fields: list[Annotated[str, Field(max_length=30)]] = Field(
        min_length=1,
        max_length=len(CUSTOMER_FIELDS),
        description="Identifying fields to receive raw; each must be granted to the access token as "
        "`customers.<field>:raw`.",
    )
    purpose: str = Field(min_length=1, max_length=500, description="Why the raw values are needed (audited).")
    expires_in: int = Field(
        default=MAX_SECONDS, ge=1, le=MAX_SECONDS, description="Lifetime, 1..300 seconds."
    )


class RestrictedTokenOut(BaseModel):
    id: str = Field(description="The token's public id (`rdt_…`), as the ledger records it.")
    restricted_token: str = Field(description="The bearer token (`rtk_…`); shown only now.")
    token_type: str = Field(examples=["Bearer"])
    expires_in: int
    expires_at: str
    customers: list[str]
    fields: list[str]
    purpose: str


def mint_restricted(
    session: Session,
    db: Database,
    settings: Settings,
    ctx: AccessContext,
    body: RestrictedTokenIn,
    *,
    monitor: Monitor,
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Check and mint a restricted token for ``ctx``'s access token; committed with its ledger entry.

    ``session`` is the caller's open transaction (it authenticated ``ctx``). Raises 422 for bad fields
    or a blank purpose, 403 ``insufficient_scope`` for a field not granted raw, 404
    ``customer_not_found`` for any id that is not one of this company's customers (of another company,
    of another app, or nobody: the same answer), 429 over the mint cap.
    """
    fields = _fields(ctx, body.fields)
    purpose = body.purpose.strip()
    if not purpose:
        raise InvalidInput("purpose must not be blank", parameter="purpose")
    customer_ids = _customers(session, settings, ctx, body.customers)
    minted_recently = tokens.minted_since(session, ctx.connection_id, now - CAP_WINDOW)
    if minted_recently >= settings.restricted_token_mints_per_minute:
        raise TooManyRequests(
            f"at most {settings.restricted_token_mints_per_minute} restricted tokens a minute per connection",
            code="restricted_token_cap",
            retry_after=int(CAP_WINDOW.total_seconds()),
        )
    expires_at = now + timedelta(seconds=body.expires_in)
    if ctx.expires_at is not None:
        expires_at = min(expires_at, ctx.expires_at)  # never outlives the access token that minted it
    minted = tokens.mint(
        session,
        parent_token_id=ctx.token_id,
        app_id=ctx.app_id,
        connection_id=ctx.connection_id,
        company_id=ctx.company_id,
        customer_ids=customer_ids,
        fields=fields,
        purpose=purpose,
        issued_at=now,
        expires_at=expires_at,
    )
    record(
        session,
        EventTag.RESTRICTED_TOKEN_MINTED,
        actor=ctx.app_slug,
        app_id=ctx.app_id,
        company_id=ctx.company_id,
        request_id=request_id,
        restricted_token=minted.public_id,
        purpose=purpose,
        customers=len(customer_ids),
        named=sorted(card.public_id for card in customer_cards(session, customer_ids).values()),
        fields=fields,
    )
    # The ledger commits the token, the event and the entry together (fail closed: 503, no token).
    _record(
        db,
        ctx,
        monitor,
        request_id=request_id,
        endpoint="POST /v1/restricted-tokens",
        kind=EntryKind.RESTRICTED_MINT,
        deliveries={},
        within=session,
        restricted=(minted.public_id, purpose),
    )
    monitor.restricted_minted(ctx.app_id, ctx.company_id, customer_ids, now)  # restricted_token_volume
    return {
        "id": minted.public_id,
        "restricted_token": minted.token,
        "token_type": "Bearer",
        "expires_in": max(0, int((expires_at - now).total_seconds())),
        "expires_at": expires_at.isoformat(),
        "customers": list(dict.fromkeys(body.customers)),
        "fields": fields,
        "purpose": purpose,
    }


def _fields(ctx: AccessContext, requested: Sequence[str]) -> list[str]:
    """The requested fields in canonical order: known (422), identifying (422), granted raw (403)."""
    wanted = set(requested)
    unknown = sorted(wanted - set(CUSTOMER_FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown field(s): {', '.join(unknown)}", parameter="fields", allowed=sorted(PII_FIELDS)
        )
    plain = sorted(wanted - PII_FIELDS)
    if plain:
        raise InvalidInput(
            f"not identifying, delivered by the access token itself: {', '.join(plain)}",
            parameter="fields",
            allowed=sorted(PII_FIELDS),
        )
    ungranted = sorted(f for f in wanted if f"customers.{f}:raw" not in ctx.scopes)
    if ungranted:
        raise Forbidden(
            f"this access token is not granted raw: {', '.join(ungranted)}",
            required_scope=[f"customers.{f}:raw" for f in ungranted],
        )
    return [f for f in CUSTOMER_FIELDS if f in wanted]


def _customers(session: Session, settings: Settings, ctx: AccessContext, ids: Sequence[str]) -> list[int]:
    """Internal ids of the named customers; all must be this company's, served to this connection."""
    key = pseudonym.app_key(settings.master_key, ctx.app_id)
    unique = list(dict.fromkeys(ids))
    decoded = pseudonym.decode_many(key, unique, pseudonym.ID_PREFIX)
    wanted: dict[int, str] = {}
    for text, item in zip(unique, decoded, strict=True):
        if item is None or item.company_id != ctx.company_id:
            raise _not_found(text)
        wanted[item.customer_id] = text
    found = served_ids(
        session, ctx.company_id, wanted, served=served_to(ctx.connection_id, enabled=settings.canary_enabled)
    )
    missing = [text for cid, text in wanted.items() if cid not in found]
    if missing:
        raise _not_found(missing[0])
    return sorted(wanted)


def _not_found(text: str) -> NotFound:
    # One answer for another company's id, another app's id and nobody at all: existence is not revealed.
    return NotFound(f"no such customer {text[:40]!r}", code="customer_not_found", customer=text[:40])


@router.post(
    "/restricted-tokens",
    status_code=201,
    summary="Mint a restricted token for raw identifying fields",
    description=(
        "Exchange this access token for a short-lived **restricted token** that reads raw identifying "
        "fields (`name`, `name_kana`, `phone`, `email`, `address`, `birthday`) of up to 100 named "
        "customers on `GET /v1/customers/{id}` — the only way they leave raw: an access token gets them "
        "masked. Each field must be granted to the access token as `customers.<field>:raw`. At most 300 "
        "seconds (never beyond the access token's expiry); one company (the access token's); the "
        "purpose is recorded in the access ledger with the minting and with every delivery made with "
        "the token. All or nothing. A restricted token is refused by every other route (403 "
        "`restricted_token_not_accepted`), when expired (401 `token_expired`) and with its app."
    ),
    response_model=RestrictedTokenOut,
    responses=problem_responses(
        {
            401: "`invalid_token` (missing, unknown, revoked) or `token_expired`.",
            403: "`insufficient_scope` (a field not granted raw), `restricted_token_not_accepted` (a "
            "restricted token cannot mint), `app_suspended`, `app_delisted` or `connection_inactive`.",
            404: "`customer_not_found`: an id that is not one of this company's customers for this app.",
            413: "`payload_too_large`.",
            422: "`invalid_parameter`: malformed JSON, more than 100 customers, more than 300 seconds, "
            "an unknown or non-identifying field, a missing or blank purpose, text that is not Unicode.",
            429: "`restricted_token_cap`: too many restricted tokens minted this minute (`Retry-After`).",
            503: "`ledger_unavailable`: the minting could not be recorded, so no token was issued.",
        }
    ),
)
def create_restricted_token(
    body: RestrictedTokenIn,
    caller: Annotated[Caller, Depends(_caller)],
    db: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    request_id = _new_request_id()
    data = mint_restricted(
        caller.session,
        db,
        settings,
        caller.ctx,
        body,
        monitor=caller.monitor,
        request_id=request_id,
        now=utcnow(),
    )
    caller.done()
    return Response(
        orjson.dumps(data),
        status_code=201,
        media_type="application/json",
        headers={"X-Request-Id": request_id, "Cache-Control": "no-store"},
    )
