"""Canary issuance: synthetic members issued to exactly one (app, company) connection each.

A canary is an ordinary ``customers`` row with ``is_canary`` set, inserted through the platform's write
path (``platform.service.add_customer``) so the attribution blind index and the per-store member bitmaps
(``store_members.canaries``) keep up in the same transaction, plus a ``canaries`` row naming the one
connection it was issued to. The broker serves it to that connection only (:func:`served_to`); the
blast radius and the demo summary leave it out of every count. Its phone comes from the operator's pool
and its email is under the operator's canary domain; both are unique and never equal to any customer's
(checked against the blind index), so a call or a mail to either names the connection at once
(``canary.alerts``).
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appwarden.blind_index.service import digest_raw, lookup
from appwarden.canary.models import Canary, CanaryAlert
from appwarden.canary.synth import format_phone, member, parse_pool, prefecture_of, to_e164
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.errors import Conflict, InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.marketplace.models import App
from appwarden.marketplace.service import get_app
from appwarden.oauth.models import Connection
from appwarden.oauth.vocabulary import ConnectionStatus
from appwarden.platform.models import Company, Customer, Store, StoreMembers
from appwarden.platform.service import add_customer, get_company

# Random draws before giving up on a value: the pool and the email space are sparse, so a handful of
# collisions at most is expected; running out means the pool is (nearly) exhausted.
MAX_DRAWS = 200
# A concurrent issuer may take the same number between our check and our insert (unique constraint).
MAX_INSERT_RETRIES = 5
EMAIL_TAG_MAX = 999_999

_system_random = random.SystemRandom()


def served_to(connection_id: int, *, enabled: bool) -> ColumnElement[bool]:
    """The broker's predicate: real members, plus this connection's own canaries while the policy is on.

    Every other app, company and connection never sees a canary (by listing, paging or id).
    """
    real = Customer.is_canary.is_(False)
    if not enabled:
        return real
    own = select(Canary.customer_id).where(Canary.connection_id == connection_id)
    return or_(real, Customer.id.in_(own))


def issued_to(session: Session, connection_id: int) -> list[int]:
    """The internal ids of the canaries issued to one connection: the canaries :func:`served_to` lets
    through, for callers that work on id sets instead of a SQL predicate (the broker's listing order)."""
    own = select(Canary.customer_id).where(Canary.connection_id == connection_id)
    return [int(i) for i in session.connection().execute(own).scalars()]


def _taken(session: Session, field: str, value: str) -> bool:
    """Whether any customer (real or canary) already has ``value`` in ``field``, by the blind index:
    normalised and keyed, so ``050-1000-1234`` and ``+81 50 1000 1234`` are the same number."""
    digests = digest_raw(field, [value])
    return bool(lookup(session, field, digests))


def _draw_phone(session: Session, rng: random.Random, settings: Settings, issued: set[str]) -> str:
    pool = parse_pool(settings.canary_phone_pool)
    for _ in range(MAX_DRAWS):
        national = pool.national(rng.randint(pool.first, pool.last))
        if to_e164(national) in issued or _taken(session, "phone", national):
            continue
        return national
    raise Conflict(
        f"the canary phone pool {settings.canary_phone_pool} is exhausted "
        f"({len(issued)} of {pool.size} numbers issued); configure a larger APPWARDEN_CANARY_PHONE_POOL",
        code="canary_pool_exhausted",
    )


def _draw_email(session: Session, rng: random.Random, local: str, domain: str, issued: set[str]) -> str:
    for _ in range(MAX_DRAWS):
        email = f"{local}{rng.randint(1, EMAIL_TAG_MAX)}@{domain.lower()}"
        if email in issued or _taken(session, "email", email):
            continue
        return email
    raise Conflict(f"no free canary address under {domain}", code="canary_pool_exhausted")


def _home_stores(session: Session, company_id: int) -> tuple[list[int], list[float]]:
    """The company's stores, weighted by membership, so canaries join where members do."""
    rows = session.execute(
        select(StoreMembers.store_id, StoreMembers.cardinality).where(StoreMembers.company_id == company_id)
    ).all()
    if rows and sum(n for _, n in rows) > 0:
        return [sid for sid, _ in rows], [float(n) + 1.0 for _, n in rows]
    stores = list(session.scalars(select(Store.id).where(Store.company_id == company_id)))
    return stores, [1.0] * len(stores)


def _company_prefecture(session: Session, company_id: int) -> str | None:
    """The prefecture most of a sample of the company's members live in (canaries live nearby too)."""
    sample = session.scalars(
        select(Customer.address)
        .where(Customer.company_id == company_id, Customer.address.is_not(None))
        .limit(50)
    )
    counts: dict[str, int] = {}
    for address in sample:
        pref = prefecture_of(address)
        if pref:
            counts[pref] = counts.get(pref, 0) + 1
    return max(counts, key=lambda p: counts[p]) if counts else None


def issue_canaries(
    session: Session,
    connection: Connection,
    *,
    settings: Settings,
    count: int | None = None,
    actor: str = "system",
    rng: random.Random | None = None,
) -> list[Canary]:
    """Create ``count`` (default ``settings.canaries_per_connection``) canary members of the
    connection's company, each issued to this connection only, in the caller's transaction.

    Returns the new rows (empty when the count is 0 or the company has no store to be a member of).
    Records ``canary:record:issued`` with the count, never the values.
    """
    n = settings.canaries_per_connection if count is None else count
    if n < 0:
        raise InvalidInput("the canary count must not be negative", parameter="count")
    stores, weights = _home_stores(session, connection.company_id)
    if n == 0 or not stores:
        return []
    rng = rng or _system_random
    prefecture = _company_prefecture(session, connection.company_id)
    today = date.today()
    issued_phones = set(session.scalars(select(Canary.phone)))
    issued_emails = set(session.scalars(select(Canary.email)))
    made: list[Canary] = []
    for _ in range(n):
        made.append(
            _issue_one(
                session,
                connection,
                settings=settings,
                rng=rng,
                store_id=rng.choices(stores, weights=weights)[0],
                prefecture=prefecture,
                today=today,
                phones=issued_phones,
                emails=issued_emails,
            )
        )
    record(
        session,
        EventTag.CANARY_ISSUED,
        actor=actor,
        app_id=connection.app_id,
        company_id=connection.company_id,
        connection=connection.public_id,
        count=len(made),
    )
    return made


def _issue_one(
    session: Session,
    connection: Connection,
    *,
    settings: Settings,
    rng: random.Random,
    store_id: int,
    prefecture: str | None,
    today: date,
    phones: set[str],
    emails: set[str],
) -> Canary:
    values = member(rng, prefecture=prefecture, today=today)
    local = values.pop("email_local")
    for _ in range(MAX_INSERT_RETRIES):
        national = _draw_phone(session, rng, settings, phones)
        email = _draw_email(session, rng, local, settings.canary_domain, emails)
        try:
            with session.begin_nested():  # a lost race on a unique value undoes only this canary
                customer = add_customer(  # blind index + store_members in step, in this savepoint
                    session,
                    session.get_one(Company, connection.company_id),
                    {
                        "home_store_id": store_id,
                        "phone": format_phone(national),
                        "email": email,
                        "is_canary": True,
                        **values,
                    },
                )
                canary = Canary(
                    customer_id=customer.id,
                    connection_id=connection.id,
                    app_id=connection.app_id,
                    company_id=connection.company_id,
                    email=email,
                    phone=to_e164(national),
                    issued_at=utcnow(),
                )
                session.add(canary)
                session.flush()
        except IntegrityError:
            phones.add(to_e164(national))
            emails.add(email)
            continue
        phones.add(canary.phone)
        emails.add(canary.email)
        return canary
    raise Conflict(
        "could not issue a canary (unique values kept colliding); try again", code="canary_conflict"
    )


def issued_count(session: Session, connection_id: int) -> int:
    """How many canaries a connection has (owners may know the count, never the values)."""
    return int(
        session.scalar(select(func.count()).select_from(Canary).where(Canary.connection_id == connection_id))
        or 0
    )


def connection_granted(session: Session, connection: Connection, settings: Settings, actor: str) -> None:
    """The answer to ``oauth.service.connection_granted`` (wired by ``appwarden.wiring``)."""
    ensure_canaries(session, connection, settings=settings, actor=actor)


def ensure_canaries(
    session: Session, connection: Connection, *, settings: Settings, actor: str
) -> list[Canary]:
    """Issue canaries to a connection that has none, if the marketplace policy has them on.

    Called when an owner approves a connection (new or re-approved); never tops up or replaces a
    connection's existing canaries, so what an app already received stays attributable.
    """
    if not settings.canary_enabled or issued_count(session, connection.id) > 0:
        return []
    return issue_canaries(session, connection, settings=settings, actor=actor)


def backfill(
    session: Session,
    *,
    settings: Settings,
    app_ref: str | None = None,
    company_ref: str | None = None,
    actor: str,
) -> list[dict[str, Any]]:
    """Issue canaries to every active connection (of ``app_ref`` / ``company_ref``) that has none."""
    if not settings.canary_enabled:
        raise InvalidInput(
            "canaries are switched off by marketplace policy (APPWARDEN_CANARY_ENABLED=false)",
            code="canaries_disabled",
        )
    query = (
        select(Connection, App.slug, Company.public_id)
        .join(App, App.id == Connection.app_id)
        .join(Company, Company.id == Connection.company_id)
        .where(
            Connection.status == ConnectionStatus.ACTIVE.value,
            Connection.id.not_in(select(Canary.connection_id)),
        )
        .order_by(Connection.id)
    )
    if app_ref is not None:
        query = query.where(Connection.app_id == get_app(session, app_ref).id)
    if company_ref is not None:
        query = query.where(Connection.company_id == get_company(session, company_ref).id)
    out: list[dict[str, Any]] = []
    for conn, slug, company in session.execute(query).all():
        made = issue_canaries(session, conn, settings=settings, actor=actor)
        out.append({"connection": conn.public_id, "app": slug, "company": company, "issued": len(made)})
    return out


def list_canaries(session: Session, *, app_ref: str | None = None) -> list[dict[str, Any]]:
    """Every canary with its values (synthetic, so safe to show security admins) and whose it is."""
    query = (
        select(Canary, Customer, App.slug, Company.public_id, Connection.public_id, Store.public_id)
        .join(Customer, Customer.id == Canary.customer_id)
        .join(App, App.id == Canary.app_id)
        .join(Company, Company.id == Canary.company_id)
        .join(Connection, Connection.id == Canary.connection_id)
        .join(Store, Store.id == Customer.home_store_id)
        .order_by(Canary.issued_at, Canary.customer_id)
    )
    if app_ref is not None:
        query = query.where(Canary.app_id == get_app(session, app_ref).id)
    alerts = dict(
        session.execute(
            select(CanaryAlert.canary_customer_id, func.count()).group_by(CanaryAlert.canary_customer_id)
        ).all()
    )
    return [
        {
            "customer": cust.public_id,
            "app": slug,
            "company": company,
            "connection": conn,
            "store": store,
            "name": cust.name,
            "name_kana": cust.name_kana,
            "phone": cust.phone,
            "phone_e164": canary.phone,
            "email": canary.email,
            "issued_at": canary.issued_at.isoformat(),
            "alerts": int(alerts.get(canary.customer_id, 0)),
        }
        for canary, cust, slug, company, conn, store in session.execute(query).all()
    ]
