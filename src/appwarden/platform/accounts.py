"""Console accounts as other packages see them: a frozen view of a user, never the password hash.

The authorisation server (``oauth``) logs company owners in and remembers who approved a connection;
it holds an :class:`Account`, not the ``users`` row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.platform.models import User
from appwarden.platform.service import authenticate_user


@dataclass(frozen=True, slots=True)
class Account:
    """Who a user is: internal id, username, role and (for a company owner) the company."""

    id: int
    username: str
    role: str  # company_owner | security_admin | reviewer | vendor
    company_id: int | None


def _account(user: User) -> Account:
    return Account(user.id, user.username, user.role, user.company_id)


def account(session: Session, user_id: int) -> Account | None:
    """The account with this internal id (e.g. a login session's), or None."""
    row = session.execute(
        select(User.id, User.username, User.role, User.company_id).where(User.id == user_id)
    ).first()
    return None if row is None else Account(*row)


def authenticate(session: Session, username: str, password: str) -> Account | None:
    """The account if the password matches (argon2, ``service.authenticate_user``: the same work for an
    unknown username), else None."""
    user = authenticate_user(session, username, password)
    return None if user is None else _account(user)
