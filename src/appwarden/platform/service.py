"""Platform operations: companies, stores, users and customers (the data apps ask for)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from appwarden.attribution.blind_index import refresh_customers
from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.platform.models import Company, Customer, Store, User
from appwarden.platform.store_members import refresh_store_members

ROLES = frozenset({"company_owner", "security_admin", "reviewer", "vendor"})
_hasher = PasswordHasher()


def create_company(session: Session, name: str, email: str | None = None) -> Company:
    company = Company(name=name, email=email)
    session.add(company)
    session.flush()
    return company


def create_store(session: Session, company: Company, name: str, email: str | None = None) -> Store:
    store = Store(company_id=company.id, name=name, email=email)
    session.add(store)
    session.flush()
    return store


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher.hash(password)


def create_user(
    session: Session, username: str, password: str, *, role: str, company: Company | None = None
) -> User:
    """A console user. Company owners belong to exactly one company."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}")
    if role == "company_owner" and company is None:
        raise InvalidInput("a company owner needs a company")
    if len(password) < 8:
        raise InvalidInput("password must be at least 8 characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists", code="user_exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        company_id=company.id if company else None,
    )
    session.add(user)
    session.flush()
    return user


def authenticate_user(session: Session, username: str, password: str) -> User | None:
    """The user if the password matches, else None (same work either way)."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        if user is None:
            # Spend the same time as a real check so usernames cannot be probed by timing.
            _hasher.verify(_DUMMY_HASH, password)
            return None
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


_DUMMY_HASH = _hasher.hash("not-a-real-password")


def add_customers(
    session: Session, company: Company, rows: Iterable[Mapping[str, Any]], *, index: bool = True
) -> int:
    """Bulk-insert customers of ``company`` (each row needs ``home_store_id`` of one of its stores).

    Their attribution blind-index entries are written in the same transaction unless ``index`` is
    False (bulk loaders that call ``attribution.blind_index.rebuild_blind_index`` once at the end). The
    store membership bitmaps (``platform.store_members``) are always updated in the same transaction.
    """
    store_ids = set(session.scalars(select(Store.id).where(Store.company_id == company.id)))
    batch = []
    for row in rows:
        if row.get("home_store_id") not in store_ids:
            raise InvalidInput("home_store_id must be a store of the same company")
        batch.append({**row, "company_id": company.id})
    if batch:
        ids = session.scalars(insert(Customer).returning(Customer.id), batch).all()
        if index:
            refresh_customers(session, ids)
        refresh_store_members(session, ids, [company.id])
    return len(batch)


def get_customer(session: Session, public_id: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.public_id == public_id))
    if customer is None:
        raise NotFound(f"no customer {public_id!r}", code="customer_not_found")
    return customer


def get_company(session: Session, ref: str) -> Company:
    company = session.scalar(select(Company).where((Company.public_id == ref) | (Company.name == ref)))
    if company is None:
        raise NotFound(f"no company {ref!r}", code="company_not_found")
    return company
