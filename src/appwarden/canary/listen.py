"""The canary mail receiver (``appwarden canary listen``): an SMTP server for the operator's canary domain.

Point the canary domain's MX at it. Mail to an issued canary address becomes a ``CanaryAlert``
(``canary.alerts.record_hit``: channel ``smtp``, kind ``mail``) — evidence that data delivered to the app
the canary was issued to is being used (二次被害).

What it answers at ``RCPT TO`` (decided here, documented in docs/canaries.md):

- another domain: ``550 5.7.1`` — never a relay;
- an issued canary address: ``250``;
- any other address under the canary domain: ``550 5.1.1 user unknown``, exactly like an ordinary
  mailbox provider. A catch-all domain that swallows every address is a known spam-trap tell that a
  list cleaner would use to drop the whole domain (and with it our canaries); rejecting unknown users
  keeps the canary mailboxes indistinguishable from real ones. The answer tells a prober nothing it does
  not already have: the only addresses that exist are the ones it got from the leaked data.

If recording fails the message is refused with ``451`` (a temporary failure: the sender retries, so no
evidence is lost and nothing is half-written).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from appwarden.canary.alerts import EXCERPT_CHARS, find_canary, record_hit
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database

# Canary mail is evidence, not a mailbox: keep the first part of each message.
DATA_SIZE_LIMIT = 1024 * 1024

log = structlog.get_logger()


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")


def _excerpt(message: EmailMessage) -> str:
    """The first characters of the plain-text body (or of the first part that decodes)."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, ValueError):  # unknown charset or broken transfer encoding
        return ""
    return str(text).strip()[:EXCERPT_CHARS]


class CanaryHandler:
    """aiosmtpd handler: accepts RCPT only for issued canary addresses; records each delivery."""

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.domain = settings.canary_domain.lower().rstrip(".")
        # When a message counts as received: the wall clock, or a simulated one (the demo's later weeks).
        self.clock = clock

    def _is_canary(self, address: str) -> bool:
        with self.db.session() as session:
            return find_canary(session, address) is not None

    async def handle_RCPT(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Answer ``RCPT TO`` (see the module docstring for why each answer)."""
        if _domain(address) != self.domain:
            return "550 5.7.1 Relaying denied"
        # The database call runs off the event loop so one slow lookup does not stall other sessions.
        if not await asyncio.to_thread(self._is_canary, address):
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _record(self, envelope: Envelope, peer: Any) -> list[str]:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace")
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        subject = str(message.get("subject", "") or "")[:998] or None
        detail = {
            "message_id": str(message.get("message-id", "") or "")[:200] or None,
            "from_header": str(message.get("from", "") or "")[:320] or None,
            "peer": peer[0] if isinstance(peer, tuple) and peer else None,
            "bytes": len(data),
        }
        excerpt = _excerpt(message)
        ids: list[str] = []
        with self.db.session() as session:  # one transaction: every recipient's alert or none
            for rcpt in envelope.rcpt_tos:
                alert = record_hit(
                    session,
                    address=rcpt,
                    channel="smtp",
                    kind="mail",
                    sender=envelope.mail_from,
                    subject=subject,
                    excerpt=excerpt,
                    detail=detail,
                    received_at=self.clock(),
                )
                ids.append(alert.public_id)
        return ids

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        """Record an alert per canary recipient; 451 (retry later) if that cannot be done."""
        try:
            ids = await asyncio.to_thread(self._record, envelope, session.peer)
        except Exception:
            log.exception("canary mail could not be recorded; asked the sender to retry")
            return "451 4.3.0 Temporary failure, try again later"
        return f"250 2.0.0 Accepted ({len(ids)} canary recipient(s))"


def build_controller(
    db: Database, settings: Settings, *, host: str, port: int, clock: Callable[[], datetime] = utcnow
) -> Controller:
    """An (unstarted) aiosmtpd controller serving :class:`CanaryHandler` on ``host:port``; ``clock``
    stamps each contact (the wall clock unless a simulation passes its own)."""
    return Controller(
        CanaryHandler(db, settings, clock),
        hostname=host,
        port=port,
        data_size_limit=DATA_SIZE_LIMIT,
        ident="appwarden canary receiver",
    )
