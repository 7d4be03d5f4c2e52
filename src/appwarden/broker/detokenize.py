"""``POST /v1/detokenize``: this app's ``tok_…`` values back to the real values, for a stated purpose.

Same contract as every data API route (``broker.api``): authenticate (fail closed), check every token
is this app's for this company (all or nothing), record the values as ``raw`` deliveries of kind
``detokenize`` in the ledger (committed) before anything is rendered, and note it as a security event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from appwarden.broker import pseudonym
from appwarden.broker.api import _PROBLEMS, AccessDep, _json, _new_request_id, _record
from appwarden.broker.schemas import DetokenizeIn, DetokenizeOut
from appwarden.errors import Forbidden, InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.ledger.vocabulary import EntryKind
from appwarden.marketplace.scopes import Mode
from appwarden.monitor.runtime import monitor_of
from appwarden.platform.customer_rows import field_values
from appwarden.platform.directory import customer_cards
from appwarden.web.deps import DatabaseDep, SettingsDep
from appwarden.web.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["data API"])


@router.post(
    "/detokenize",
    summary="Reveal the values behind tokens",
    description=(
        "Exchange `tok_…` values this app received for its own company for the real values, stating a "
        "purpose. Only fields granted in `token` mode; 1..100 tokens; all or nothing (any token that is "
        "not this app's for this company is 404 `token_not_found`, a field no longer granted in token "
        "mode is 403 `insufficient_scope`). Recorded in the ledger as `raw` deliveries (kind "
        "`detokenize`) and as a security event."
    ),
    response_model=DetokenizeOut,
    responses=_PROBLEMS | problem_responses({404: "`token_not_found`."}),
)
def detokenize(
    body: DetokenizeIn, ctx: AccessDep, request: Request, db: DatabaseDep, settings: SettingsDep
) -> Response:
    master = settings.master_key
    if len(body.tokens) > settings.detokenize_max:
        raise InvalidInput(f"at most {settings.detokenize_max} tokens per request", parameter="tokens")
    if not body.purpose.strip():
        raise InvalidInput("purpose must not be blank", parameter="purpose")
    key = pseudonym.app_key(master, ctx.app_id)
    decoded = pseudonym.decode_many(key, body.tokens, pseudonym.TOKEN_PREFIX)
    for token, item in zip(body.tokens, decoded, strict=True):
        if item is None or item.company_id != ctx.company_id:
            raise NotFound(f"unknown token {token[:40]!r}", code="token_not_found", token=token[:40])
    found = [d for d in decoded if d is not None]
    granted = ctx.field_modes
    refused = sorted({d.field for d in found if granted.get(d.field) is not Mode.TOKEN})
    if refused:
        raise Forbidden(
            f"detokenizing needs the field granted in token mode: {', '.join(refused)}",
            required_scope=[f"customers.{f}:token" for f in refused],
        )
    with db.session() as session:
        values = _detokenize_values(session, ctx.company_id, found)
        if any(v is _MISSING for v in values):
            raise NotFound("a token refers to a customer that no longer exists", code="token_not_found")
    request_id = _new_request_id()
    by_field: dict[tuple[str, str], set[int]] = {}
    for item, value in zip(found, values, strict=True):
        if value is not None:
            by_field.setdefault((item.field, Mode.RAW.value), set()).add(item.customer_id)
    deliveries = {k: sorted(v) for k, v in by_field.items()}
    _record(
        db,
        ctx,
        monitor_of(request.app),
        request_id=request_id,
        endpoint="POST /v1/detokenize",
        kind=EntryKind.DETOKENIZE,
        deliveries=deliveries,
    )
    with db.session() as session:
        record(
            session,
            EventTag.DETOKENIZE,
            actor=ctx.app_slug,
            app_id=ctx.app_id,
            company_id=ctx.company_id,
            request_id=request_id,
            purpose=body.purpose.strip(),
            tokens=len(body.tokens),
            fields=sorted({f for f, _ in deliveries}),
            named=sorted(
                card.public_id for card in customer_cards(session, {d.customer_id for d in found}).values()
            ),
        )
    data = [
        {"token": token, "field": item.field, "value": value}
        for token, item, value in zip(body.tokens, found, values, strict=True)
    ]
    return _json({"data": data}, request_id)


_MISSING = object()


def _detokenize_values(session: Session, company_id: int, items: Sequence[pseudonym.Decoded]) -> list[Any]:
    """Each token's current value (one query per field), ``_MISSING`` where the customer is gone."""
    wanted: dict[str, set[int]] = {}
    for item in items:
        wanted.setdefault(item.field, set()).add(item.customer_id)
    found: dict[tuple[str, int], Any] = {}
    for field, people in wanted.items():
        for cid, value in field_values(session, company_id, field, people).items():
            found[(field, cid)] = value
    return [found.get((i.field, i.customer_id), _MISSING) for i in items]
