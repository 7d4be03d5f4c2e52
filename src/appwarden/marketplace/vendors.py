"""Vendor accounts: an argon2id password and per-vendor API keys (``vk_…``, stored as SHA-256, shown once).

``/vendor`` routes authenticate with ``Authorization: Bearer vk_…`` (:func:`check_vendor_key`, also run
by ``web.auth_first`` before a body is read). The password is for one thing: a vendor that lost or
revoked its keys gets a new one with it (``POST /vendor/keys``), so no key is ever mailed or re-shown.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.digests import token_hash
from appwarden.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from appwarden.events.service import EventTag, record
from appwarden.marketplace.models import Vendor, VendorApiKey
from appwarden.platform.service import hash_password, password_matches
from appwarden.web.deps import bearer_token

KEY_PREFIX = "vk_"


def key_prefix(key: str) -> str:
    """The first characters of a key, kept and listed to tell a vendor's keys apart."""
    return key[:10]


@dataclass(frozen=True, slots=True)
class VendorProfile:
    """A vendor as other packages see it: who it is and where to write to it (never its password or
    keys). Screening reminds it of audits and keeps its people from reviewing its apps."""

    id: int
    public_id: str
    name: str
    contact_email: str | None


def profile_of(session: Session, vendor_id: int) -> VendorProfile | None:
    """The vendor with this internal id (an app's ``vendor_id``, the ``/vendor`` caller's), or None."""
    vendor = session.get(Vendor, vendor_id)
    if vendor is None:
        return None
    return VendorProfile(vendor.id, vendor.public_id, vendor.name, vendor.contact_email)


@dataclass(frozen=True, slots=True)
class VendorAccount:
    """A new vendor and its first API key (shown once)."""

    vendor: Vendor
    api_key: str


def create_vendor(
    session: Session, name: str, *, email: str, password: str, actor: str = "cli"
) -> VendorAccount:
    """A vendor account (or an account for a vendor the operator recorded without one) with a key."""
    name = name.strip()
    if not name:
        raise InvalidInput("vendor name must not be empty")
    if "@" not in email:
        raise InvalidInput(f"{email!r} is not an email address")
    if len(password) < 12:
        raise InvalidInput("a vendor password must be at least 12 characters")
    vendor = session.scalar(select(Vendor).where(Vendor.name == name))
    if vendor is not None and vendor.password_hash is not None:
        raise Conflict(f"vendor {name!r} already has an account", code="vendor_exists")
    if vendor is None:
        vendor = Vendor(name=name)
        session.add(vendor)
    vendor.contact_email = email
    vendor.password_hash = hash_password(password)
    session.flush()
    record(session, EventTag.VENDOR_CREATED, actor=actor, vendor=vendor.public_id)
    return VendorAccount(vendor, issue_key(session, vendor, actor=actor))


def issue_key(session: Session, vendor: Vendor, *, actor: str) -> str:
    """A new API key for ``vendor`` (returned once; only its hash is kept)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = key_prefix(key)
    session.add(VendorApiKey(vendor_id=vendor.id, key_hash=token_hash(key), prefix=prefix))
    record(session, EventTag.VENDOR_KEY_ISSUED, actor=actor, vendor=vendor.public_id, prefix=prefix)
    return key


def vendor_by_password(session: Session, email: str, password: str) -> Vendor | None:
    """The vendor with this contact address and password, or None (the same work either way)."""
    vendor = session.scalar(select(Vendor).where(Vendor.contact_email == email.strip()))
    stored = vendor.password_hash if vendor is not None else None
    return vendor if password_matches(stored, password) else None


def keys_of(session: Session, vendor: Vendor) -> list[dict[str, object]]:
    """The vendor's keys (prefix, created, revoked), newest first: never the key itself."""
    rows = session.scalars(
        select(VendorApiKey)
        .where(VendorApiKey.vendor_id == vendor.id)
        .order_by(VendorApiKey.created_at.desc(), VendorApiKey.id.desc())
    )
    return [_key_view(k) for k in rows]


def revoke_key(
    session: Session, vendor: Vendor, prefix: str, *, actor: str, now: datetime | None = None
) -> dict[str, object]:
    """Revoke the vendor's live key starting with ``prefix`` (as listed); 404 if it has none such."""
    live = list(
        session.scalars(
            select(VendorApiKey).where(
                VendorApiKey.vendor_id == vendor.id,
                VendorApiKey.prefix == prefix,
                VendorApiKey.revoked_at.is_(None),
            )
        )
    )
    if not live:
        raise NotFound(f"no live key {prefix!r} of this vendor", code="key_not_found")
    if len(live) > 1:  # 10 characters of a random key: practically never; refuse rather than guess
        raise Conflict(f"{len(live)} live keys start with {prefix!r}", code="key_ambiguous")
    key = live[0]
    key.revoked_at = now or utcnow()
    record(session, EventTag.VENDOR_KEY_REVOKED, actor=actor, vendor=vendor.public_id, prefix=prefix)
    return _key_view(key)


def _key_view(key: VendorApiKey) -> dict[str, object]:
    return {
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def vendor_by_key(session: Session, key: str | None) -> Vendor | None:
    """The vendor holding the unrevoked ``key``, or None."""
    if not key or not key.startswith(KEY_PREFIX):
        return None
    query = (
        select(Vendor)
        .join(VendorApiKey, VendorApiKey.vendor_id == Vendor.id)
        .where(VendorApiKey.key_hash == token_hash(key), VendorApiKey.revoked_at.is_(None))
    )
    return session.scalar(query)


def get_vendor(session: Session, ref: str) -> Vendor:
    """A vendor by name or public id."""
    vendor = session.scalar(select(Vendor).where((Vendor.name == ref) | (Vendor.public_id == ref)))
    if vendor is None:
        raise NotFound(f"no vendor {ref!r}", code="vendor_not_found")
    return vendor


def check_password_login(request: Request) -> None:
    """``POST /vendor/keys`` authenticates by the password in its (small, size-capped) body: there is
    no header to check first."""


def check_vendor_key(request: Request) -> None:
    """401 ``invalid_vendor_key`` unless the request carries a live vendor API key."""
    db: Database = request.app.state.db
    with db.sessionmaker() as session:
        if vendor_by_key(session, bearer_token(request)) is None:
            raise Unauthenticated(
                "vendor API key required (Authorization: Bearer vk_...)", code="invalid_vendor_key"
            )
