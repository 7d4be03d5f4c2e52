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

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appwarden.blind_index.service import digest_raw, lookup
from appwarden.canary.models import Canary, CanaryAlert
from appwarden.canary.synth import format_phone, member, parse_pool, prefecture_of, to_e164
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.errors import Conflict, InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.marketplace.service import app_slugs, get_app
from appwarden.oauth.connections import ConnectionRef, active_connections
from appwarden.oauth.service import connection_public_ids
from appwarden.platform.customer_rows import real_or_among, real_or_in
from appwarden.platform.directory import address_sample, company_names, customer_cards, store_names
from appwarden.platform.membership import store_sizes
from appwarden.platform.service import add_customer_to, get_company

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
    if not enabled:
        return real_or_among(())
    return real_or_in(select(Canary.customer_id).where(Canary.connection_id == connection_id))


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
    sizes = store_sizes(session, company_id)
    if sizes and sum(sizes.values()) > 0:
        return list(sizes), [float(n) + 1.0 for n in sizes.values()]
    stores = [store.id for store in store_names(session, [company_id])]
    return stores, [1.0] * len(stores)


def _company_prefecture(session: Session, company_id: int) -> str | None:
    """The prefecture most of a sample of the company's members live in (canaries live nearby too)."""
    sample = address_sample(session, company_id, limit=50)
    counts: dict[str, int] = {}
    for address in sample:
        pref = prefecture_of(address)
        if pref:
            counts[pref] = counts.get(pref, 0) + 1
    return max(counts, key=lambda p: counts[p]) if counts else None


def issue_canaries(
    session: Session,
    connection: ConnectionRef,
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
    connection: ConnectionRef,
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
                customer_id = add_customer_to(  # blind index + store_members in step, in this savepoint
                    session,
                    connection.company_id,
                    {
                        "home_store_id": store_id,
                        "phone": format_phone(national),
                        "email": email,
                        "is_canary": True,
                        **values,
                    },
                )
                canary = Canary(
                    customer_id=customer_id,
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


def connection_granted(session: Session, connection: ConnectionRef, settings: Settings, actor: str) -> None:
    """The answer to ``oauth.service.connection_granted`` (wired by ``appwarden.wiring``)."""
    ensure_canaries(session, connection, settings=settings, actor=actor)


def ensure_canaries(
    session: Session, connection: ConnectionRef, *, settings: Settings, actor: str
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
    connections = active_connections(
        session,
        app_id=None if app_ref is None else get_app(session, app_ref).id,
        company_id=None if company_ref is None else get_company(session, company_ref).id,
        excluding=select(Canary.connection_id),
    )
    slugs = app_slugs(session, {c.app_id for c in connections})
    companies = company_names(session, {c.company_id for c in connections})
    out: list[dict[str, Any]] = []
    for conn in connections:
        made = issue_canaries(session, conn, settings=settings, actor=actor)
        out.append(
            {
                "connection": conn.public_id,
                "app": slugs[conn.app_id],
                "company": companies[conn.company_id].public_id,
                "issued": len(made),
            }
        )
    return out


def list_canaries(session: Session, *, app_ref: str | None = None) -> list[dict[str, Any]]:
    """Every canary with its values (synthetic, so safe to show security admins) and whose it is."""
    query = select(Canary).order_by(Canary.issued_at, Canary.customer_id)
    if app_ref is not None:
        query = query.where(Canary.app_id == get_app(session, app_ref).id)
    canaries = list(session.scalars(query))
    cards = customer_cards(session, {c.customer_id for c in canaries})
    slugs = app_slugs(session, {c.app_id for c in canaries})
    companies = company_names(session, {c.company_id for c in canaries})
    connections = connection_public_ids(session, {c.connection_id for c in canaries})
    alerts = dict(
        session.execute(
            select(CanaryAlert.canary_customer_id, func.count()).group_by(CanaryAlert.canary_customer_id)
        ).all()
    )
    return [
        {
            "customer": cards[canary.customer_id].public_id,
            "app": slugs[canary.app_id],
            "company": companies[canary.company_id].public_id,
            "connection": connections[canary.connection_id],
            "store": cards[canary.customer_id].home_store,
            "name": cards[canary.customer_id].name,
            "name_kana": cards[canary.customer_id].name_kana,
            "phone": cards[canary.customer_id].phone,
            "phone_e164": canary.phone,
            "email": canary.email,
            "issued_at": canary.issued_at.isoformat(),
            "alerts": int(alerts.get(canary.customer_id, 0)),
        }
        for canary in canaries
        if canary.customer_id in cards
    ]
