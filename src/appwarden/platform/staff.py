"""Platform staff (reviewers, security admins) and their API keys, and company owners' addresses.

A staff key (``sk_…``) identifies one person on ``/admin/reviews``: the admin key alone cannot tell two
reviewers apart, so review decisions over HTTP need one. Keys are stored as SHA-256 only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import InvalidInput, NotFound
from appwarden.platform.models import Company, User
from appwarden.platform.roles import STAFF_ROLES, Role
from appwarden.platform.service import create_user

KEY_PREFIX = "sk_"


@dataclass(frozen=True, slots=True)
class StaffMember:
    """What screening needs to know about a staff member."""

    id: int
    username: str
    role: str
    email: str | None
    vendor_affiliation: str | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _member(user: User) -> StaffMember:
    return StaffMember(user.id, user.username, user.role, user.email, user.vendor_affiliation)


def create_staff(
    session: Session,
    username: str,
    *,
    role: str,
    email: str | None = None,
    vendor_affiliation: str | None = None,
) -> tuple[StaffMember, str]:
    """A reviewer or security admin with a fresh API key (returned once)."""
    if role not in STAFF_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(sorted(STAFF_ROLES))}, not {role!r}")
    if not username.strip():
        raise InvalidInput("username must not be empty")
    user = create_user(session, username.strip(), secrets.token_urlsafe(24), role=role)
    user.email = email
    user.vendor_affiliation = vendor_affiliation
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    user.api_key_hash = _hash(key)
    session.flush()
    return _member(user), key


def staff_by_key(session: Session, key: str) -> StaffMember | None:
    """The staff member holding ``key``, or None."""
    if not key.startswith(KEY_PREFIX):
        return None
    user = session.scalar(select(User).where(User.api_key_hash == _hash(key)))
    if user is None or user.role not in STAFF_ROLES:
        return None
    return _member(user)


def staff_by_name(session: Session, username: str) -> StaffMember:
    """A staff member by username (the CLI's ``--reviewer``); 404 ``reviewer_not_found`` otherwise."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.role not in STAFF_ROLES:
        raise NotFound(f"no reviewer or security admin {username!r}", code="reviewer_not_found")
    return _member(user)


def staff_by_ids(session: Session, ids: Collection[int]) -> dict[int, StaffMember]:
    """``{user id: staff member}`` for ``ids``."""
    if not ids:
        return {}
    return {u.id: _member(u) for u in session.scalars(select(User).where(User.id.in_(list(ids))))}


def set_test_company(session: Session, company_public_id: str, is_test: bool) -> Company:
    """Mark a company as a test company (or not)."""
    company = session.scalar(select(Company).where(Company.public_id == company_public_id))
    if company is None:
        raise NotFound(f"no company {company_public_id!r}", code="company_not_found")
    company.is_test = is_test
    return company


def is_test_company(session: Session, company_id: int) -> bool:
    """Whether the company is marked as a test company."""
    return bool(session.scalar(select(Company.is_test).where(Company.id == company_id)))


def owner_addresses(session: Session, company_ids: Collection[int]) -> dict[int, tuple[str, list[str]]]:
    """``{company id: (name, [addresses])}``: the company's own address and its owners' (deduplicated)."""
    if not company_ids:
        return {}
    out: dict[int, tuple[str, list[str]]] = {}
    for company in session.scalars(select(Company).where(Company.id.in_(list(company_ids)))):
        out[company.id] = (company.name, [company.email] if company.email else [])
    owners = select(User.company_id, User.email).where(
        User.company_id.in_(list(company_ids)), User.role == Role.STORE_OWNER.value, User.email.is_not(None)
    )
    for company_id, email in session.execute(owners):
        if company_id in out and email and email not in out[company_id][1]:
            out[company_id][1].append(email)
    return out
