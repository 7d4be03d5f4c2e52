"""Platform operations: companies, stores, users and customers (the data apps ask for)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.platform.customer_changes import CustomerChange, Progress, notify
from appwarden.platform.models import Company, Customer, Store, User
from appwarden.platform.roles import Role
from appwarden.platform.store_members import MEMBERSHIP_FIELDS, rebuild_store_members, refresh_store_members

ROLES = frozenset(Role)
_hasher = PasswordHasher()


def create_company(
    session: Session, name: str, email: str | None = None, *, is_test: bool = False
) -> Company:
    """A contract company; ``is_test`` marks a test company (apps not yet listed may connect to it)."""
    company = Company(name=name, email=email, is_test=is_test)
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
    if role == Role.STORE_OWNER and company is None:
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
    if not password_matches(user.password_hash if user else None, password):
        return None
    return user


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches the argon2 ``stored_hash``; with no hash (no such account), the same
    work is spent on a dummy hash so that accounts cannot be probed by timing."""
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


_DUMMY_HASH = _hasher.hash("not-a-real-password")


# Customer columns a write path may set: every column but the identities (``id``, ``public_id``) and
# the stamp (``updated_at``), read from the table so a new column cannot be forgotten here.
CUSTOMER_FIELDS = frozenset(
    column.key for column in Customer.__table__.columns if column.key not in {"id", "public_id", "updated_at"}
)


def _insert_customers(session: Session, company: Company, rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """Insert customers of ``company`` and bring every derived index in step; returns their ids."""
    store_ids = set(session.scalars(select(Store.id).where(Store.company_id == company.id)))
    batch = []
    for row in rows:
        if row.get("home_store_id") not in store_ids:
            raise InvalidInput("home_store_id must be a store of the same company")
        batch.append({**row, "company_id": company.id})
    if not batch:
        return []
    ids = list(session.scalars(insert(Customer).returning(Customer.id), batch).all())
    refresh_store_members(session, ids, [company.id])
    notify(session, CustomerChange(added=tuple(ids), companies=frozenset({company.id})))
    return ids


def add_customers(session: Session, company: Company, rows: Iterable[Mapping[str, Any]]) -> int:
    """Bulk-insert customers of ``company`` (each row needs ``home_store_id`` of one of its stores).

    The store membership bitmaps and every registered derived index (the attribution blind index)
    are written in the same transaction. Returns how many were inserted.
    """
    return len(_insert_customers(session, company, rows))


def add_customer_to(session: Session, company_id: int, values: Mapping[str, Any]) -> int:
    """One customer of the company with this id, inserted as :func:`add_customers` does; returns its
    internal id (404 ``company_not_found`` for no such company)."""
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound(f"no company {company_id}", code="company_not_found")
    (customer_id,) = _insert_customers(session, company, [values])
    return customer_id


def add_customer(session: Session, company: Company, values: Mapping[str, Any]) -> Customer:
    """One customer of ``company``, inserted as :func:`add_customers` does; returns it."""
    (customer_id,) = _insert_customers(session, company, [values])
    return session.get_one(Customer, customer_id)


def update_customer(session: Session, customer_id: int, values: Mapping[str, Any]) -> Customer:
    """Set ``values`` on one customer and bring every derived index in step, in the caller's transaction.

    A home store must be a store of the customer's company; moving to another company means giving
    ``company_id`` and a ``home_store_id`` of that company together. Values equal to the current ones
    change nothing (no hook sees them, so a rewrite of the same phone leaves no history).
    """
    unknown = set(values) - CUSTOMER_FIELDS
    if unknown:
        raise InvalidInput(f"unknown customer field(s) {sorted(unknown)}")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}", code="customer_not_found")
    changed = frozenset(f for f, v in values.items() if getattr(customer, f) != v)
    if not changed:
        return customer
    before = customer.company_id
    if changed & {"company_id", "home_store_id"}:
        company_id = values.get("company_id", customer.company_id)
        store = session.get(Store, values.get("home_store_id", customer.home_store_id))
        if store is None or store.company_id != company_id:
            raise InvalidInput("home_store_id must be a store of the same company")
    for field in changed:
        setattr(customer, field, values[field])
    session.flush()
    companies = frozenset({before, customer.company_id})
    if changed & MEMBERSHIP_FIELDS:
        refresh_store_members(session, [customer.id], companies)
    notify(session, CustomerChange(updated=(customer.id,), companies=companies, fields=changed))
    return customer


def delete_customer(session: Session, customer_id: int) -> None:
    """Delete one customer and their derived index entries, in the caller's transaction."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}", code="customer_not_found")
    company_id, public_id = customer.company_id, customer.public_id
    session.delete(customer)
    session.flush()
    refresh_store_members(session, [customer_id], [company_id])
    notify(
        session,
        CustomerChange(
            deleted=(customer_id,), companies=frozenset({company_id}), deleted_public_ids=(public_id,)
        ),
    )


def customers_loaded(
    session: Session, company_ids: Iterable[int], *, progress: Progress | None = None
) -> None:
    """After a bulk loader inserted customers of ``company_ids`` with Core (the demo generator, millions
    of rows in executemany batches): rebuild every derived index in the loader's transaction.

    A rebuild, not a refresh per id: it is far cheaper than incremental refreshes at that size.
    ``progress(done, total)`` follows the slowest part, the blind-index rebuild.
    """
    companies = frozenset(int(c) for c in company_ids)
    rebuild_store_members(session, companies)
    notify(session, CustomerChange(companies=companies, loaded=True, progress=progress))


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
