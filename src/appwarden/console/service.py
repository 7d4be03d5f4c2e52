"""What the console does for a person: sign in (password, then TOTP for a security admin who has it),
sign out, who is signed in, and the store owner's disconnect.

Logins share the platform's failure throttle with every login page (``web.login_throttle``) and are
security events with the person's name, ``via="console"``: ``user:session:login``,
``user:session:login-failed`` (``reason`` ``bad_credentials`` or ``bad_totp``) and
``user:session:login-throttled``. Every change made in the console records its event with the signed-in
person's username as ``actor``, in the transaction of the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.console import sessions
from appwarden.console.sessions import SessionView
from appwarden.events.service import EventTag, record
from appwarden.marketplace.vendor_views import vendor_name
from appwarden.oauth.connections import Disconnected, disconnect
from appwarden.platform import totp
from appwarden.platform.accounts import Account, account, authenticate
from appwarden.platform.directory import company_names
from appwarden.platform.roles import Role
from appwarden.web.login_throttle import LoginThrottle

VIA = "console"


@dataclass(frozen=True, slots=True)
class Visitor:
    """The signed-in person behind a request."""

    session: SessionView
    account: Account
    company_name: str | None  # a store owner's company
    vendor_name: str | None  # a vendor's person's vendor

    @property
    def role(self) -> Role:
        return Role(self.account.role)

    @property
    def username(self) -> str:
        return self.account.username


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """How a sign-in attempt ended; ``cookie`` is the new session's (``ok`` and ``totp``)."""

    status: Literal["ok", "totp", "bad", "locked"]
    cookie: str | None = None
    retry_after: int = 0
    role: Role | None = None


def visitor(
    session: Session, cookie: str | None, settings: Settings, *, stage: str = sessions.FULL
) -> Visitor | None:
    """The person signed in with this cookie at ``stage``, or None."""
    view = sessions.session_for(session, cookie, settings=settings)
    if view is None or view.stage != stage:
        return None
    who = account(session, view.user_id)
    if who is None:
        return None
    company = company_names(session, [who.company_id]).get(who.company_id) if who.company_id else None
    vendor = vendor_name(session, who.vendor) if who.vendor else None
    return Visitor(view, who, company.name if company else None, vendor)


def _locked(session: Session, throttle: LoginThrottle, username: str, address: str) -> int | None:
    """Seconds of the lock-out in force (recorded), or None. Checked before any password or code."""
    lockout = throttle.lockout(username, address)
    if lockout is None:
        return None
    record(
        session,
        EventTag.USER_LOGIN_THROTTLED,
        actor=username,
        address=address,
        scope=lockout.scope,
        retry_after=lockout.retry_after,
        via=VIA,
    )
    return lockout.retry_after


def _failed(session: Session, throttle: LoginThrottle, username: str, address: str, reason: str) -> None:
    throttle.failed(username, address)
    record(session, EventTag.USER_LOGIN_FAILED, actor=username, address=address, reason=reason, via=VIA)


def _succeeded(
    session: Session, throttle: LoginThrottle, who: Account, address: str, settings: Settings, factors: str
) -> LoginOutcome:
    throttle.succeeded(who.username, address)
    record(
        session,
        EventTag.USER_LOGIN,
        actor=who.username,
        company_id=who.company_id,
        address=address,
        role=Role(who.role).console_name,
        factors=factors,
        via=VIA,
    )
    cookie, _ = sessions.open_session(
        session, who.id, stage=sessions.FULL, address=address, settings=settings
    )
    return LoginOutcome("ok", cookie, role=Role(who.role))


def login(
    session: Session,
    throttle: LoginThrottle,
    settings: Settings,
    *,
    username: str,
    password: str,
    address: str,
) -> LoginOutcome:
    """Check the password (argon2) under the throttle; a security admin with TOTP gets a pending
    session that only the TOTP step accepts."""
    username = username.strip()[:100]
    retry = _locked(session, throttle, username, address)
    if retry is not None:
        return LoginOutcome("locked", retry_after=retry)
    who = authenticate(session, username, password)
    if who is None:
        _failed(session, throttle, username, address, "bad_credentials")
        return LoginOutcome("bad")
    if who.role == Role.SECURITY_ADMIN and totp.enabled(session, who.id):
        cookie, _ = sessions.open_session(
            session, who.id, stage=sessions.TOTP, address=address, settings=settings
        )
        return LoginOutcome("totp", cookie, role=Role(who.role))
    return _succeeded(session, throttle, who, address, settings, "password")


def second_factor(
    session: Session,
    throttle: LoginThrottle,
    settings: Settings,
    pending: Visitor,
    *,
    code: str,
    address: str,
) -> LoginOutcome:
    """The TOTP step: a good code replaces the pending session with a full one (a new id); a wrong
    code counts as a failed login; a lock-out ends the pending session."""
    retry = _locked(session, throttle, pending.username, address)
    if retry is not None:
        sessions.close(session, pending.session.id)
        return LoginOutcome("locked", retry_after=retry)
    if not totp.verify(session, pending.account.id, code, key=totp.sealing_key(settings.master_key)):
        _failed(session, throttle, pending.username, address, "bad_totp")
        return LoginOutcome("bad")
    sessions.close(session, pending.session.id)
    return _succeeded(session, throttle, pending.account, address, settings, "password+totp")


def logout(session: Session, who: Visitor) -> None:
    """End the session (recorded)."""
    sessions.close(session, who.session.id)
    record(session, EventTag.USER_LOGOUT, actor=who.username, company_id=who.account.company_id, via=VIA)


def enable_totp(session: Session, settings: Settings, who: Visitor, *, secret: str, code: str) -> None:
    """Turn on the second factor for a security admin (recorded); 400 on a wrong code."""
    totp.enable(session, who.account.id, secret, code, key=totp.sealing_key(settings.master_key))
    record(session, EventTag.USER_TOTP_ENABLED, actor=who.username, via=VIA)


def disconnect_app(session: Session, who: Visitor, connection: str) -> Disconnected:
    """The store owner ends one connection of its own company, at once (``oauth.connections``)."""
    assert who.role == Role.STORE_OWNER and who.account.company_id is not None
    return disconnect(session, who.account.company_id, connection, actor=who.username)
