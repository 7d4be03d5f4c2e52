"""Alert delivery: each raised alert to the security team's webhook (HMAC signed) and by mail.

The rows are the alert's ``webhook`` and ``mail`` outbox rows (``monitor.outbox``), claimed before
sending so no two workers send one twice, done or backed off after. A channel not configured
(``APPWARDEN_ALERT_WEBHOOK_URL``, ``APPWARDEN_SMTP_URL``) completes its row as skipped.

The webhook (the design's receiver contract):

    POST <alert_webhook_url>
    Content-Type: application/json
    X-Appwarden-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the webhook secret>
    X-Appwarden-Timestamp: <the same unix seconds>
    Idempotency-Key: <alert id>          (the same on every retry: a receiver keeps the first)
    {"type": "monitor.alert", "alert": {<the alert JSON>}}

A receiver recomputes the HMAC over the raw body and rejects a timestamp older than 5 minutes (a
replayed request). Any 2xx is delivered; anything else, or no answer within 10 s, is retried. Neither
the URL (it may hold a credential) nor the secret is logged or stored: errors say what failed, not where.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import AppwardenError
from appwarden.events.service import EventTag, record
from appwarden.mail import plain_message, send_messages
from appwarden.monitor import outbox
from appwarden.monitor.models import Alert, OutboxItem
from appwarden.monitor.outbox import Channel
from appwarden.monitor.policy import MonitorPolicy
from appwarden.monitor.service import describe
from appwarden.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

log = structlog.get_logger()
WEBHOOK_TIMEOUT = 10.0
__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "DeliveryFailed", "deliver_due", "sign", "verify"]


class DeliveryFailed(Exception):
    """A delivery did not go through; the message names no URL and no secret."""


def post_webhook(settings: Settings, document: dict[str, Any]) -> str:
    """POST the alert document to the webhook; the outcome, or :class:`DeliveryFailed`."""
    url = settings.alert_webhook_url
    assert url
    body = json.dumps({"type": "monitor.alert", "alert": document}, ensure_ascii=False).encode()
    # The signing time is the wall clock, not the run's clock: it is about this transmission (a
    # receiver compares it with its own clock), not about when the alert was raised.
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(settings.alert_webhook_signing_secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        "Idempotency-Key": document["id"],
        "User-Agent": "appwarden-monitor",
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook unreachable: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"webhook answered HTTP {response.status_code}")
    return f"webhook: HTTP {response.status_code} from {urlsplit(url).hostname}"


def send_mail(settings: Settings, document: dict[str, Any]) -> str:
    """Mail the alert to ``alert_mail_to`` (else the security contact); the outcome or DeliveryFailed."""
    to = settings.alert_mail_to or settings.security_contact
    a = document
    subject = f"[appwarden] {a['severity']} alert: {a['detector']} on {a['app']} ({a['action']})"
    lines = [
        f"Alert {a['id']} raised {a['raised_at']}",
        f"Detector: {a['detector']} ({a['severity']})",
        f"App: {a['app']}; company: {a['company'] or '(all)'}",
        f"Window: {a['window']['start']} – {a['window']['end']}",
        f"Observed: {json.dumps(a['observed'], ensure_ascii=False)}",
        f"Baseline: {json.dumps(a['baseline'], ensure_ascii=False)}",
        f"Action: {a['action']}",
        f"Ledger entries: {', '.join(map(str, a['ledger_entries'])) or '(none)'}",
        "",
        f"appwarden alerts show {a['id']}",
        "",
        json.dumps(a, ensure_ascii=False, indent=2),
    ]
    message = plain_message(sender=settings.security_contact, to=to, subject=subject, body="\n".join(lines))
    try:
        send_messages(settings.smtp_target, [message])
    except AppwardenError as exc:  # smtp_failed: names the error type only (the URL may hold a password)
        raise DeliveryFailed(exc.detail) from None
    return f"mail to {to}"


def deliver_due(
    db: Database, settings: Settings, policy: MonitorPolicy, *, worker: str, now: datetime
) -> tuple[int, int]:
    """Claim and send every due webhook and mail row; return (delivered, failed)."""
    delivered = failed = 0
    for item_id in outbox.claim(db, [Channel.WEBHOOK, Channel.MAIL], worker=worker, now=now):
        with db.session() as session:
            item = session.get(OutboxItem, item_id)
            assert item is not None
            alert = session.get(Alert, item.alert_id)
            assert alert is not None
            document = describe(session, [alert])[0]["alert"]
            channel = Channel(item.channel)
        try:
            if channel is Channel.WEBHOOK and not settings.alert_webhook_url:
                outcome = "skipped: no alert webhook configured"
            elif channel is Channel.MAIL and not settings.smtp_target:
                outcome = "skipped: no SMTP server configured"
            elif channel is Channel.WEBHOOK:
                outcome = post_webhook(settings, document)
            else:
                outcome = send_mail(settings, document)
        except Exception as exc:  # anything at all: the row is retried, the run goes on
            failed += 1
            error = str(exc) if isinstance(exc, DeliveryFailed) else f"{channel} failed: {type(exc).__name__}"
            log.warning("alert delivery failed; retried by a later run", alert=document["id"], error=error)
            with db.session() as session:
                item = session.get(OutboxItem, item_id)
                assert item is not None
                outbox.fail(
                    session,
                    item,
                    now=now,
                    error=error,
                    interval=policy.run_interval_seconds,
                    cap=policy.delivery_backoff_max_seconds,
                )
                record(
                    session,
                    EventTag.MONITOR_ALERT_DELIVERY_FAILED,
                    actor="monitor",
                    app_id=alert.app_id,
                    company_id=alert.company_id,
                    alert=document["id"],
                    channel=channel.value,
                    attempts=item.attempts,
                    error=error,
                )
            continue
        with db.session() as session:
            item = session.get(OutboxItem, item_id)
            assert item is not None
            outbox.finish(session, item, now=now, outcome=outcome)
            if not outcome.startswith("skipped"):
                delivered += 1
                record(
                    session,
                    EventTag.MONITOR_ALERT_DELIVERED,
                    actor="monitor",
                    app_id=alert.app_id,
                    company_id=alert.company_id,
                    alert=document["id"],
                    channel=channel.value,
                )
    return delivered, failed
