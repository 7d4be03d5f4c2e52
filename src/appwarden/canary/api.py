"""Canary HTTP endpoints: the hit webhook for phone/SMS/mail providers, and the admin views.

- ``POST /canary/hits`` — a provider reports a call, SMS or mail to a canary number/address (bearer
  ``canary_webhook_key``, a key of its own so the provider never holds the admin key);
- ``GET /admin/canaries`` — every canary with its (synthetic) values and whose it is;
- ``GET /admin/canary/alerts`` — secondary-damage alerts, newest first.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ConfigDict, Field

from appwarden.canary import alerts, service
from appwarden.config import Settings
from appwarden.errors import Unauthenticated
from appwarden.web.deps import AdminDep, DatabaseDep, bearer_token
from appwarden.web.problems import ADMIN_AUTH, problem_responses
from appwarden.web.text import Body

router = APIRouter(tags=["canaries"])


def check_webhook_key(request: Request) -> None:
    """401 ``invalid_webhook_key`` unless ``Authorization: Bearer <canary_webhook_key>`` (shared by the
    route dependency and ``web.auth_first``, which runs it before the body is read)."""
    settings: Settings = request.app.state.settings
    token = bearer_token(request)
    if token is None or not hmac.compare_digest(token.encode(), settings.canary_webhook_secret.encode()):
        raise Unauthenticated("canary webhook key required", code="invalid_webhook_key")


async def require_webhook_key(request: Request) -> str:
    """The webhook's authentication: ``Authorization: Bearer <canary_webhook_key>``."""
    check_webhook_key(request)
    return "canary-webhook"


WebhookDep = Annotated[str, Depends(require_webhook_key)]


class HitIn(Body):
    """One contact with a canary, as a telephony or mail provider reports it."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(
        min_length=3, max_length=320, description="The canary number (any spelling) or mail address."
    )
    kind: Literal["sms", "call", "mail", "other"]
    sender: str | None = Field(default=None, max_length=320, description="Caller id or sender address.")
    excerpt: str | None = Field(default=None, max_length=5000, description="Message text (first 500 kept).")
    received_at: datetime | None = Field(default=None, description="When the provider received it (ISO).")


@router.post(
    "/canary/hits",
    status_code=201,
    summary="Report contact with a canary",
    responses=problem_responses(
        {
            401: "`invalid_webhook_key`.",
            404: "`canary_not_found`: no canary has this number or address.",
            422: "`invalid_parameter`: malformed body.",
        }
    ),
)
def report_hit(body: HitIn, actor: WebhookDep, db: DatabaseDep) -> dict[str, Any]:
    """Record the contact as a secondary-damage alert naming the app and connection it was issued to."""
    with db.session() as session:
        alert = alerts.record_hit(
            session,
            address=body.address,
            channel="webhook",
            kind=body.kind,
            sender=body.sender,
            excerpt=body.excerpt,
            received_at=body.received_at,
        )
        return alerts.list_alerts(session, alert_id=alert.id)[0]


@router.get(
    "/admin/canaries",
    tags=["admin: canaries"],
    summary="List canaries",
    responses=problem_responses(ADMIN_AUTH | {404: "`app_not_found`: the `app` filter names no app."}),
)
def list_canaries(
    actor: AdminDep, db: DatabaseDep, app: Annotated[str | None, Query(description="App slug.")] = None
) -> dict[str, Any]:
    """Every canary: values (synthetic), app, company, connection, store, alerts raised."""
    with db.session() as session:
        return {"data": service.list_canaries(session, app_ref=app)}


@router.get(
    "/admin/canary/alerts",
    tags=["admin: canaries"],
    summary="List canary alerts",
    responses=problem_responses(ADMIN_AUTH | {404: "`app_not_found`: the `app` filter names no app."}),
)
def list_alerts(
    actor: AdminDep,
    db: DatabaseDep,
    app: Annotated[str | None, Query(description="App slug.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Secondary-damage alerts, newest first."""
    with db.session() as session:
        return {"data": alerts.list_alerts(session, app_ref=app, limit=limit)}
