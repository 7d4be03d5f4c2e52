"""Platform tables. The tenant is the contract company; customers are shared by its stores."""

from __future__ import annotations

from datetime import date, datetime
from functools import partial

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow


class Company(Base):
    """A contract company (契約): the tenant that owns stores and customers."""

    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "co"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    # A test company (the platform's or a vendor's sandbox): the only kind an app not yet listed may join.
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Store(Base):
    """A store of a contract company; email is None for stores that gave none."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "st"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))


class User(Base):
    """Someone who logs in to the console: a company owner, a security admin, a reviewer or a vendor."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "usr"))
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))  # a platform.roles.Role value
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    # Staff (reviewer, security admin) API key for /admin/reviews: SHA-256 only, shown once.
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The vendor (public id) a staff member works for or declared a conflict with: never its reviewer.
    # For a vendor's person (role vendor), the vendor it works for: the console shows it only that one.
    vendor_affiliation: Mapped[str | None] = mapped_column(String(40))
    # A security admin's TOTP secret (RFC 6238), sealed with a key derived from the master key
    # (``platform.totp``); None while the second factor is off. Set only once a code has confirmed it.
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    # The 30 s step of the last code accepted: a code is good once (RFC 6238 §5.2), never replayed.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Customer(Base):
    """A member (会員) of a company. ``id`` is dense (bitmaps); ``public_id`` is what apps see."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "cus"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    home_store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(String(400))
    birthday: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(Integer, default=0)
    rank: Mapped[str | None] = mapped_column(String(20))
    is_canary: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # Rows are fetched by (company_id, id): one index serves every tenant-scoped read.
    __table_args__ = (Index("ix_customers_company_id_id", "company_id", "id"),)


class Transaction(Base):
    """A sale at a store, optionally by a member."""

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "txn"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_transactions_company_id_id", "company_id", "id"),)


class Product(Base):
    """An item a company sells: at every one of its stores (``store_id`` None) or at one store only."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "prd"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(Integer)  # yen, tax included
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_products_company_id_id", "company_id", "id"),)


class StoreMembers(Base):
    """The customers whose home store a store is, as roaring bitmaps of internal ids (portable format).

    ``canaries`` is the subset of ``bitmap`` that are canary customers. Kept in step with ``customers`` by
    ``platform.store_members``, which the platform's customer write paths (``platform.service``) call.
    """

    __tablename__ = "store_members"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    bitmap: Mapped[bytes] = mapped_column(LargeBinary)
    canaries: Mapped[bytes] = mapped_column(LargeBinary)
    cardinality: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
