"""Sending mail over SMTP: the one SMTP primitive every capability uses (store notices, audit mail).

The target comes from ``APPWARDEN_SMTP_URL``; a missing one is ``smtp_not_configured`` (503): a mail
that must go out fails closed rather than silently.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from appwarden.errors import InvalidInput, Unavailable

SMTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: str  # plain | starttls | tls
    username: str | None
    password: str | None


def parse_smtp_url(url: str | None) -> SmtpTarget:
    """``smtp://[user:pass@]host[:port]`` (``?starttls=1`` to upgrade), ``smtp+starttls://`` or ``smtps://``."""
    if not url:
        raise Unavailable("no SMTP server configured: set APPWARDEN_SMTP_URL", code="smtp_not_configured")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
        raise InvalidInput(f"APPWARDEN_SMTP_URL must look like smtp://host:port, not {parts.scheme}://…")
    starttls = parse_qs(parts.query).get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
    security = (
        "tls" if scheme == "smtps" else "starttls" if scheme == "smtp+starttls" or starttls else "plain"
    )
    try:
        port = parts.port or (465 if security == "tls" else 587 if security == "starttls" else 25)
    except ValueError as exc:
        raise InvalidInput(f"APPWARDEN_SMTP_URL has a bad port: {exc}") from exc
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def connect(target: SmtpTarget) -> smtplib.SMTP:
    """An SMTP connection per ``target``, logged in when it carries credentials."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if target.security == "tls":
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=SMTP_TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT)
        if target.security == "starttls":
            smtp.starttls(context=context)
    if target.username:
        smtp.login(target.username, target.password or "")
    return smtp


def plain_message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A UTF-8 text message."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def send_messages(
    smtp_url: str | None,
    messages: Iterable[EmailMessage],
    *,
    connector: Callable[[SmtpTarget], smtplib.SMTP] = connect,
) -> int:
    """Send ``messages`` over one SMTP connection; return how many were sent.

    An SMTP failure is raised as 503 ``smtp_failed`` (the caller has not marked anything as sent yet).
    """
    target = parse_smtp_url(smtp_url)
    batch = list(messages)
    if not batch:
        return 0
    try:
        smtp = connector(target)
        try:
            for message in batch:
                smtp.send_message(message)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
    except (smtplib.SMTPException, OSError) as exc:
        raise Unavailable(f"mail could not be sent: {type(exc).__name__}", code="smtp_failed") from None
    return len(batch)
