"""Console accounts as other packages see them: a frozen view of a user, never the password hash.

The authorisation server (``oauth``) logs company owners in and remembers who approved a connection;
it holds an :class:`Account`, not the ``users`` row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import InvalidInput, NotFound
from appwarden.platform.models import User
from appwarden.platform.roles import Role
from appwarden.platform.service import authenticate_user, create_user, hash_password


@dataclass(frozen=True, slots=True)
class Account:
    """Who a user is: internal id, username, role, (for a company owner) the company and (for a
    vendor's person) the vendor's public id."""

    id: int
    username: str
    role: str  # a ``platform.roles.Role`` value
    company_id: int | None
    vendor: str | None = None


def _account(user: User) -> Account:
    vendor = user.vendor_affiliation if user.role == Role.VENDOR else None
    return Account(user.id, user.username, user.role, user.company_id, vendor)


def account(session: Session, user_id: int) -> Account | None:
    """The account with this internal id (e.g. a login session's), or None."""
    user = session.get(User, user_id)
    return None if user is None else _account(user)


def authenticate(session: Session, username: str, password: str) -> Account | None:
    """The account if the password matches (argon2, ``service.authenticate_user``: the same work for an
    unknown username), else None."""
    user = authenticate_user(session, username, password)
    return None if user is None else _account(user)


def create_vendor_member(session: Session, username: str, password: str, *, vendor: str) -> Account:
    """A console account for a person of the vendor with public id ``vendor`` (the console shows it that
    vendor's apps only; the vendor's shared password and API keys stay for ``/vendor``)."""
    user = create_user(session, username, password, role=Role.VENDOR)
    user.vendor_affiliation = vendor
    session.flush()
    return _account(user)


def set_password(session: Session, username: str, password: str) -> Account:
    """Give an existing account a new password (argon2id); 404 ``user_not_found`` for no such user."""
    if len(password) < 8:
        raise InvalidInput("password must be at least 8 characters")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}", code="user_not_found")
    user.password_hash = hash_password(password)
    return _account(user)
