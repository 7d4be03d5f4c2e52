"""The review's check of an app's erasure endpoint: "At review, the vendor's endpoint must answer a signed
test call with 2xx and an unsigned or wrongly signed one with 401, or the app cannot be listed."

:func:`check_endpoint` POSTs three ``endpoint.test`` documents (the same headers as a real request,
``obligations.erasure_delivery``): one signed with the endpoint's secret, one with no signature and one
signed with a random other secret. It passes only when the first answers 2xx and the other two 401; a
timeout, a refused connection or any other answer fails it, with a reason naming the call and the status
(never the URL, which may carry a credential, nor the secret). The outcome is stored on the endpoint
(``check_passed``, ``check_reason``, ``checked_at``); registering a new endpoint voids it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.errors import Conflict
from appwarden.events.service import EventTag, record
from appwarden.marketplace import standing
from appwarden.obligations.erasure import endpoint_of
from appwarden.obligations.erasure_delivery import TOPIC_HEADER
from appwarden.obligations.models import VendorEndpoint
from appwarden.obligations.vocabulary import ErasureTopic
from appwarden.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The outcome of one check of an app's endpoint."""

    app: str
    passed: bool
    reason: str
    checked_at: datetime

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``erasure check --json``)."""
        return {
            "app": self.app,
            "passed": self.passed,
            "reason": self.reason,
            "checked_at": self.checked_at.isoformat(),
        }


def _call(
    client: httpx.Client, settings: Settings, url: str, body: bytes, now: datetime, secret: str | None
) -> str:
    """One test call; the status as text, or the exception type when there was no answer."""
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        TOPIC_HEADER: ErasureTopic.ENDPOINT_TEST.value,
        "User-Agent": "appwarden-obligations",
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    try:
        response = client.post(
            url, content=body, headers=headers, timeout=settings.erasure_webhook_timeout_seconds
        )
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    return str(response.status_code)


def check_endpoint(
    session: Session, settings: Settings, app_ref: str, client: httpx.Client, *, actor: str, now: datetime
) -> CheckOutcome:
    """Run the three test calls against the app's endpoint and record the outcome (module docstring).
    404 ``app_not_found``; 409 ``no_erasure_endpoint`` when the app has none (or it no longer opens)."""
    app = standing.find(session, app_ref)
    found = endpoint_of(session, settings, app.id)
    if found is None:
        raise Conflict(
            f"{app.slug} has no erasure endpoint: the vendor must register one first",
            code="no_erasure_endpoint",
        )
    url, secret = found
    document = {
        "id": "test_" + secrets.token_urlsafe(12),
        "topic": ErasureTopic.ENDPOINT_TEST.value,
        "app": app.slug,
        "created_at": now.isoformat(),
        "data": {},
    }
    body = json.dumps(document, sort_keys=True).encode()
    signed = _call(client, settings, url, body, now, secret)
    unsigned = _call(client, settings, url, body, now, None)
    wrong = _call(client, settings, url, body, now, "whsec_" + secrets.token_urlsafe(32))
    problems = []
    if not (signed.isdigit() and 200 <= int(signed) < 300):
        problems.append(f"the signed call answered {signed}, not 2xx")
    if unsigned != "401":
        problems.append(f"the unsigned call answered {unsigned}, not 401")
    if wrong != "401":
        problems.append(f"the wrongly signed call answered {wrong}, not 401")
    passed = not problems
    reason = "signed 2xx, unsigned 401, wrongly signed 401" if passed else "; ".join(problems)
    endpoint = session.scalar(select(VendorEndpoint).where(VendorEndpoint.app_id == app.id))
    assert endpoint is not None
    endpoint.check_passed, endpoint.check_reason, endpoint.checked_at = passed, reason[:500], now
    record(
        session,
        EventTag.VENDOR_ENDPOINT_CHECKED if passed else EventTag.VENDOR_ENDPOINT_CHECK_FAILED,
        actor=actor,
        app_id=app.id,
        passed=passed,
        reason=reason,
    )
    return CheckOutcome(app.slug, passed, reason, now)


def endpoint_check_of(session: Session, app_id: int) -> tuple[bool, str]:
    """Whether the app's endpoint passed its check, and why not: the listing gate's answer."""
    endpoint = session.scalar(select(VendorEndpoint).where(VendorEndpoint.app_id == app_id))
    if endpoint is None:
        return False, "the vendor has registered no erasure endpoint"
    if endpoint.check_passed is None:
        return False, "the erasure endpoint has not been checked (appwarden erasure check APP)"
    if not endpoint.check_passed:
        return False, f"the erasure endpoint failed its check: {endpoint.check_reason}"
    return True, "the erasure endpoint passed its check"
