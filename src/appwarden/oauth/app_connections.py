"""An app's connections as the platform's security team reads them (the console's app page): which
companies granted it what, in which state, since when. Read only; the owner's side of a connection is
``oauth.connections``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.marketplace.clients import client_by_id
from appwarden.marketplace.scopes import effective_scopes
from appwarden.marketplace.service import approved_scopes_of, scopes_on_offer
from appwarden.oauth.models import Connection
from appwarden.platform.directory import company_names


@dataclass(frozen=True, slots=True)
class AppConnection:
    """One company's grant to the app: the company, the grant's status, what the broker may deliver
    (the consented version's approved scopes ∩ what the owner ticked), and since when."""

    public_id: str
    company_public_id: str
    company_name: str
    status: str  # a ``ConnectionStatus`` value
    scopes: tuple[str, ...]
    since: datetime  # when the company first connected the app
    updated_at: datetime


def app_connections(session: Session, app_id: int) -> list[AppConnection]:
    """Every company's connection to the app, by company public id (every status: a revoked one is
    history the team reads too)."""
    rows = list(session.scalars(select(Connection).where(Connection.app_id == app_id)))
    if not rows:
        return []
    names = company_names(session, {c.company_id for c in rows})
    app = client_by_id(session, app_id)
    assert app is not None  # a connection's app is never deleted (foreign key)
    on_offer = scopes_on_offer(session, app)[0]
    views = []
    for conn in rows:
        # As the owner's view reads it (``oauth.connections``): a grant without a consented version
        # is of the scopes on offer.
        approved = approved_scopes_of(session, app_id, conn.app_version)
        granted = effective_scopes(on_offer if approved is None else approved, conn.scopes)
        name = names[conn.company_id]
        views.append(
            AppConnection(
                public_id=conn.public_id,
                company_public_id=name.public_id,
                company_name=name.name,
                status=conn.status,
                scopes=tuple(granted),
                since=conn.created_at,
                updated_at=conn.updated_at,
            )
        )
    return sorted(views, key=lambda v: v.company_public_id)
