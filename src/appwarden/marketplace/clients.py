"""Apps as OAuth clients: what the authorisation server reads about an app, as a frozen view.

``oauth`` authenticates clients, checks redirect URIs and decides what a consent may grant; it holds a
:class:`ClientApp` (never the ``apps`` row) and hands it back to the marketplace functions that take
one: ``service.scopes_on_offer``, ``service.consent_disclosure`` and ``service.check_client_secret``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from appwarden.marketplace.models import App


@dataclass(frozen=True, slots=True)
class ClientApp:
    """An app as an OAuth client sees the marketplace: a copy of its row taken when it was looked up."""

    id: int
    slug: str
    name: str
    client_id: str
    redirect_uris: tuple[str, ...]
    approved_scopes: tuple[str, ...]  # those of the version in force
    approved_version: int | None
    listing_state: str  # a ``LifecycleState``
    restricted_policy: str  # a ``RestrictedPolicy``
    grandfathered: bool
    vendor_id: int | None
    # Read by ``service.check_client_secret`` only (so a secret check costs no second query); a hash,
    # never the secret, and left out of the repr so it does not end up in a log line.
    client_secret_hash: str = field(repr=False)


_COLUMNS = (
    App.id,
    App.slug,
    App.name,
    App.client_id,
    App.redirect_uris,
    App.approved_scopes,
    App.approved_version,
    App.listing_state,
    App.restricted_policy,
    App.grandfathered,
    App.vendor_id,
    App.client_secret_hash,
)


def _view(row: Sequence[Any]) -> ClientApp:
    app_id, slug, name, client_id, uris, approved, *rest = row
    version, state, policy, grandfathered, vendor, secret = rest
    return ClientApp(
        app_id,
        slug,
        name,
        client_id,
        tuple(uris),
        tuple(approved),
        version,
        state,
        policy,
        bool(grandfathered),
        vendor,
        secret,
    )


def _one(session: Session, where: ColumnElement[bool]) -> ClientApp | None:
    row = session.execute(select(*_COLUMNS).where(where)).first()
    return None if row is None else _view(row)


def client_by_client_id(session: Session, client_id: str) -> ClientApp | None:
    """The app whose OAuth ``client_id`` this is, or None."""
    return _one(session, App.client_id == client_id)


def client_by_id(session: Session, app_id: int) -> ClientApp | None:
    """The app with this internal id (e.g. a stored token's), or None."""
    return _one(session, App.id == app_id)
