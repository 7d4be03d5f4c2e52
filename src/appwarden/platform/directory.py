"""Directory lookups the platform answers for other packages: companies and stores by their public
names, customers by public id, and customers' home stores. Plain-column reads (tuples, no ORM
objects): the blast radius lists thousands of stores, so rows are fetched at once and kept as named
tuples."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.platform.models import Company, Customer, Store

_CHUNK = 30_000  # ids per IN list (SQLite's bound-parameter limit)


class CompanyName(NamedTuple):
    """A company as the outside world knows it."""

    id: int
    public_id: str
    name: str


class StoreName(NamedTuple):
    """A store as the outside world knows it, with its company's internal id."""

    id: int
    company_id: int
    public_id: str
    name: str


def company_names(session: Session, company_ids: Collection[int]) -> dict[int, CompanyName]:
    """The public id and name of each of ``company_ids`` (plain-column read, no ORM objects)."""
    if not company_ids:
        return {}
    rows = session.connection().execute(
        select(Company.id, Company.public_id, Company.name).where(Company.id.in_(list(company_ids)))
    )
    return {row[0]: CompanyName(*row) for row in rows.all()}


class CustomerRef(NamedTuple):
    """A customer's internal id and company, for callers that hold only its public id."""

    id: int
    company_id: int


def customer_of(session: Session, public_id: str) -> CustomerRef | None:
    """The customer with this public id (internal id and company), or None."""
    row = session.execute(
        select(Customer.id, Customer.company_id).where(Customer.public_id == public_id)
    ).first()
    return None if row is None else CustomerRef(*row)


def company_id_of(session: Session, public_id: str) -> int | None:
    """The internal id of the company with this public id, or None."""
    return session.scalar(select(Company.id).where(Company.public_id == public_id))


def store_names(session: Session, company_ids: Collection[int]) -> list[StoreName]:
    """Every store of ``company_ids``, with its public id and name (plain-column read)."""
    if not company_ids:
        return []
    rows = session.connection().execute(
        select(Store.id, Store.company_id, Store.public_id, Store.name).where(
            Store.company_id.in_(list(company_ids))
        )
    )
    return [StoreName(*row) for row in rows.all()]


def home_stores(session: Session, customer_ids: Collection[int]) -> dict[int, str]:
    """``{customer id: public id of their home store}`` for a few customers (e.g. matched canaries)."""
    ids = sorted(customer_ids)
    found: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(Customer.id, Store.public_id)
            .join(Store, Store.id == Customer.home_store_id)
            .where(Customer.id.in_(ids[start : start + _CHUNK]))
        )
        found.update((cid, public) for cid, public in session.execute(query))
    return found


class Contact(NamedTuple):
    """A company or store as a notice addresses it: ids, name and e-mail address (None when unset)."""

    id: int
    public_id: str
    name: str
    email: str | None


def company_contacts(session: Session, public_ids: Collection[str]) -> dict[str, Contact]:
    """``{public id: contact}`` for those of ``public_ids`` that are companies."""
    if not public_ids:
        return {}
    query = select(Company.id, Company.public_id, Company.name, Company.email).where(
        Company.public_id.in_(list(public_ids))
    )
    return {row[1]: Contact(*row) for row in session.execute(query)}


def store_contacts(session: Session, public_ids: Collection[str]) -> dict[str, Contact]:
    """``{public id: contact}`` for those of ``public_ids`` that are stores."""
    ids = sorted(public_ids)
    found: dict[str, Contact] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(Store.id, Store.public_id, Store.name, Store.email).where(
            Store.public_id.in_(ids[start : start + _CHUNK])
        )
        found.update((row[1], Contact(*row)) for row in session.execute(query))
    return found


def address_sample(session: Session, company_id: int, limit: int = 50) -> list[str]:
    """Up to ``limit`` of the company's members' addresses (e.g. where most of them live)."""
    query = select(Customer.address).where(Customer.company_id == company_id, Customer.address.is_not(None))
    return [str(a) for a in session.scalars(query.limit(limit))]


class CustomerCard(NamedTuple):
    """Who a customer is on screen: public id, name, kana, phone, e-mail and the home store's public id."""

    id: int
    public_id: str
    name: str | None
    name_kana: str | None
    phone: str | None
    email: str | None
    home_store: str


def customer_cards(session: Session, customer_ids: Collection[int]) -> dict[int, CustomerCard]:
    """``{customer id: card}`` for a few customers (canaries, a person a request names)."""
    ids = sorted(customer_ids)
    found: dict[int, CustomerCard] = {}
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(
                Customer.id,
                Customer.public_id,
                Customer.name,
                Customer.name_kana,
                Customer.phone,
                Customer.email,
                Store.public_id,
            )
            .join(Store, Store.id == Customer.home_store_id)
            .where(Customer.id.in_(ids[start : start + _CHUNK]))
        )
        found.update((row[0], CustomerCard(*row)) for row in session.execute(query))
    return found
