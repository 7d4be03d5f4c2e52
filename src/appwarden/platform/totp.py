"""Optional TOTP (RFC 6238) second factor for security admins' console logins.

The secret must be read back to check a code, so it cannot be hashed: it is sealed with AES-GCM under a
key the caller derives from the master key (:func:`sealing_key`), bound to the user's id, so a row
copied to another user or a database dump alone opens nothing. A secret is stored only once a code
from the authenticator has confirmed it (:func:`enable`); until then it lives in the caller's session.
"""

from __future__ import annotations

import binascii
import hmac
import time
from datetime import UTC, datetime

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import InvalidInput, NotFound
from appwarden.platform.models import User
from appwarden.platform.roles import Role
from appwarden.sealing import derive_key, seal, unseal

ISSUER = "appwarden"
# One step either side: an authenticator's clock a little off still works, a code lives at most 90 s.
VALID_WINDOW = 1


def sealing_key(master_key: bytes) -> bytes:
    """The AES-256 key for TOTP secrets, derived from the master key (never the master key itself)."""
    return derive_key(master_key, b"appwarden totp secret sealing v1")


def _seal(key: bytes, user_id: int, secret: str) -> str:
    return seal(key, f"user:{user_id}", secret)


def _open(key: bytes, user_id: int, stored: str) -> str | None:
    # None under another key or another user's row: no second factor can pass
    return unseal(key, f"user:{user_id}", stored)


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app takes (typed in or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The 30 s time step (± one) whose code ``code`` is, or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6) or not 16 <= len(secret) <= 64:
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    try:
        for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
            moment = now + offset * totp.interval
            if hmac.compare_digest(totp.at(moment), code):
                return int(totp.timecode(datetime.fromtimestamp(moment, UTC)))
    except (ValueError, binascii.Error):  # not base32: a tampered form, never a match
        return None
    return None


def code_matches(secret: str, code: str) -> bool:
    """Whether ``code`` is the secret's current code (± one 30 s step)."""
    return matching_step(secret, code) is not None


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


def enabled(session: Session, user_id: int) -> bool:
    """Whether the user logs in with a TOTP code as well."""
    return session.scalar(select(User.totp_secret).where(User.id == user_id)) is not None


def enable(session: Session, user_id: int, secret: str, code: str, *, key: bytes) -> None:
    """Turn the second factor on with ``secret``, once ``code`` proves the authenticator holds it.

    Only security admins have it (the issue's scope); 400 ``totp_code_invalid`` on a wrong code."""
    user = _user(session, user_id)
    if user.role != Role.SECURITY_ADMIN:
        raise InvalidInput("only security admins can turn on TOTP", code="totp_not_available")
    step = matching_step(secret, code)
    if step is None:
        raise InvalidInput("the code does not match the secret", code="totp_code_invalid")
    user.totp_secret = _seal(key, user.id, secret)
    user.totp_last_step = step  # the enrolling code does not also sign in


def verify(session: Session, user_id: int, code: str, *, key: bytes) -> bool:
    """Whether ``code`` is the user's current TOTP code and was not accepted before (a code seen once
    is refused after, so one read over a shoulder or from a log does not sign in twice). False when TOTP
    is off or the seal is wrong."""
    user = session.get(User, user_id)
    if user is None or user.totp_secret is None:
        return False
    secret = _open(key, user_id, user.totp_secret)
    step = None if secret is None else matching_step(secret, code)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True
