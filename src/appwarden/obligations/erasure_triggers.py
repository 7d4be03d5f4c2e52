"""The erasure requests raised for people and for retention (issue 14, point 2), beside
``erasure.schedule_company_redacts``; every one goes through ``erasure.request_erasure`` with a stable
idempotency key, so raising it again never makes a second request:

- ``customer.redact`` — when a customer is deleted (:func:`customer_deleted`, an answer to
  ``platform.customer_changes``) or when the person asks (:func:`person_requests`): one per app the
  ledger says received the person, in any mode; key ``customer.redact:<app id>:<customer>`` (the
  deletion and the person's own request are the same request).
- ``customer.data_request`` — the person asks what the vendor holds: one per app that received them;
  key ``customer.data_request:<app id>:<customer>:<Japan-time day>`` (asked again another day, sent again).
- ``retention.expired`` — :func:`schedule_retention_expired`: per app × company × field, the people whose
  latest delivery of the field (raw or masked) is older than the retention the vendor accepted. The
  cutoff is the start of the Japan-time day of ``now − retention``; the key names app, company, field,
  that day and the batch part (``erasure_retention_batch_size`` people per request). Nothing extra is
  stored: the previous batch's cutoff is read back from the keys already in the outbox, and a batch names
  only the people whose latest delivery falls between the previous cutoff and this one — re-running the
  scheduler the same day, or any later day, never names the same person for the same cutoff twice, while
  a person delivered again after a batch and expired again is named again. A company whose connection
  ended is ``company.redact``'s, not retention's.

Canaries are named like anyone else: leaving them out would tell the vendor which people are canaries
(the canary watch checks that they are erased).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.errors import NotFound
from appwarden.incident.appi import JST
from appwarden.ledger.chain import Key
from appwarden.ledger.exposure import PerCompany, received_after, received_of_person, received_per_app
from appwarden.marketplace import standing
from appwarden.oauth.connections import ended_company_ids
from appwarden.obligations.erasure import request_erasure
from appwarden.obligations.holdings import HELD_MODES, retention_of
from appwarden.obligations.models import ErasureRequest
from appwarden.obligations.service import customers_by
from appwarden.obligations.vocabulary import ErasureTopic
from appwarden.platform.customer_changes import CustomerChange
from appwarden.platform.directory import company_names, customer_cards, customer_of

PERSON_TOPICS = (ErasureTopic.CUSTOMER_REDACT, ErasureTopic.CUSTOMER_DATA_REQUEST)


def _person_key(topic: ErasureTopic, app_id: int, customer: str, now: datetime) -> str:
    if topic is ErasureTopic.CUSTOMER_REDACT:
        return f"customer.redact:{app_id}:{customer}"
    return f"customer.data_request:{app_id}:{customer}:{now.astimezone(JST).date().isoformat()}"


def _owe_person(
    session: Session,
    topic: ErasureTopic,
    *,
    company_id: int,
    customer_id: int,
    customer: str,
    now: datetime,
    actor: str,
) -> list[str]:
    received = received_of_person(session, company_id, customer_id)
    ids = []
    for app_id in sorted(received):
        keys: set[Key] = received[app_id]
        payload = {
            "customer": customer,
            "fields": sorted({field for field, _ in keys}),
            "received": [{"field": f, "mode": m} for f, m in sorted(keys)],
        }
        public_id, _ = request_erasure(
            session,
            app_id=app_id,
            company_id=company_id,
            topic=topic,
            payload=payload,
            idempotency_key=_person_key(topic, app_id, customer, now),
            now=now,
            actor=actor,
        )
        ids.append(public_id)
    return ids


def person_requests(
    session: Session, ref: str, topic: ErasureTopic, *, now: datetime, actor: str
) -> list[str]:
    """Owe ``topic`` (``customer.redact`` or ``customer.data_request``) for the person ``ref`` names (a
    ``cus_…`` id, or a phone number or e-mail address through the blind index, as ``records person``
    resolves it; a phone may name customers of several companies: each is answered) to every app that
    received them; return the requests' public ids (those already owed too). 404 ``customer_not_found``."""
    if topic not in PERSON_TOPICS:
        raise ValueError(f"{topic} is not a person's request")
    ids = customers_by(session, ref)
    if not ids:
        raise NotFound("no customer has this id, phone number or e-mail address", code="customer_not_found")
    out: list[str] = []
    for card in sorted(customer_cards(session, ids).values()):
        found = customer_of(session, card.public_id)
        assert found is not None  # read in this same transaction
        out += _owe_person(
            session,
            topic,
            company_id=found.company_id,
            customer_id=card.id,
            customer=card.public_id,
            now=now,
            actor=actor,
        )
    return out


def customer_deleted(session: Session, change: CustomerChange) -> None:
    """Owe ``customer.redact`` to every app that received a deleted customer (an answer to
    ``platform.customer_changes``, in the deleting transaction: the deletion and the request commit
    together)."""
    if not change.deleted_public_ids:
        return
    now = utcnow()  # the platform's delete has no clock of its own; the request is due at once
    for customer_id, public_id in zip(change.deleted, change.deleted_public_ids, strict=True):
        for company_id in sorted(change.companies):
            _owe_person(
                session,
                ErasureTopic.CUSTOMER_REDACT,
                company_id=company_id,
                customer_id=customer_id,
                customer=public_id,
                now=now,
                actor="platform",
            )


def _cutoff(now: datetime, days: int) -> datetime:
    """The start of the Japan-time day of ``now − days``: the same all day long, so a re-run that day
    finds the same key."""
    return datetime.combine((now - timedelta(days=days)).astimezone(JST).date(), time(), JST)


def _retention_key(app_id: int, company: str, field: str, day: date, part: int) -> str:
    return f"retention.expired:{app_id}:{company}:{field}:{day.isoformat()}:{part}"


def _previous_cutoffs(session: Session, app_id: int) -> dict[tuple[str, str], datetime]:
    """The latest cutoff already batched per (company public id, field), read back from the keys."""
    keys = session.scalars(
        select(ErasureRequest.idempotency_key).where(
            ErasureRequest.app_id == app_id, ErasureRequest.topic == ErasureTopic.RETENTION_EXPIRED.value
        )
    )
    found: dict[tuple[str, str], datetime] = {}
    for key in keys:
        _, _, company, field, day, _ = key.split(":")
        at = datetime.combine(date.fromisoformat(day), time(), JST)
        if at > found.get((company, field), at - timedelta(days=1)):
            found[(company, field)] = at
    return found


def _held(per: dict[Key, BitMap]) -> dict[str, BitMap]:
    merged: dict[str, BitMap] = {}
    for (field, mode), people in per.items():
        if mode in HELD_MODES:
            merged[field] = merged.get(field, BitMap()) | people
    return merged


def schedule_retention_expired(session: Session, settings: Settings, now: datetime) -> list[str]:
    """Enqueue the ``retention.expired`` batches due at ``now`` (module docstring); return the new
    requests' public ids."""
    apps = standing.all_standings(session)
    received = received_per_app(session, [a.id for a in apps])
    names = company_names(session, {c for per in received.values() for c in per})
    created: list[str] = []
    for app in apps:
        ended = ended_company_ids(session, app.id)
        held = {c: _held(per) for c, per in received[app.id].items() if c not in ended}
        fields = sorted({f for per in held.values() for f in per})
        if not fields:
            continue
        declared = retention_of(session, app, settings.retention_default_days)
        days = {f: declared.get(f, settings.retention_default_days) for f in fields}
        cutoffs = {f: _cutoff(now, d) for f, d in days.items()}
        kept_now = received_after(session, app.id, cutoffs)
        previous = _previous_cutoffs(session, app.id)
        # One ledger pass per distinct previous cutoff (a scheduler run batches every company alike).
        kept_before: dict[datetime, PerCompany] = {}
        for at in sorted(set(previous.values())):
            kept_before[at] = received_after(session, app.id, dict.fromkeys(fields, at))
        for company_id in sorted(held, key=lambda c: names[c].public_id):
            company = names[company_id].public_id
            for field in fields:
                everyone = held[company_id].get(field)
                if not everyone:
                    continue
                cutoff = cutoffs[field]
                since = previous.get((company, field))
                if since is not None and since >= cutoff:
                    continue  # batched already for this cutoff (or the retention grew longer since)
                still = _held(kept_now.get(company_id, {})).get(field, BitMap())
                if since is None:
                    newly = everyone - still
                else:
                    newly = _held(kept_before[since].get(company_id, {})).get(field, BitMap()) - still
                created += _enqueue_batches(
                    session,
                    settings,
                    app_id=app.id,
                    company_id=company_id,
                    company=company,
                    field=field,
                    days=days[field],
                    cutoff=cutoff,
                    since=since,
                    people=newly,
                    now=now,
                )
    return created


def _enqueue_batches(
    session: Session,
    settings: Settings,
    *,
    app_id: int,
    company_id: int,
    company: str,
    field: str,
    days: int,
    cutoff: datetime,
    since: datetime | None,
    people: BitMap,
    now: datetime,
) -> list[str]:
    if not people:
        return []
    cards = customer_cards(session, list(people))
    customers: Sequence[str] = sorted(card.public_id for card in cards.values())
    if not customers:
        return []  # only deleted people: their customer.redact was owed at the deletion
    size = settings.erasure_retention_batch_size
    parts = (len(customers) + size - 1) // size
    created = []
    for part in range(parts):
        payload = {
            "company": company,
            "field": field,
            "retention_days": days,
            "cutoff": cutoff.isoformat(),
            "previous_cutoff": since.isoformat() if since else None,
            "part": part + 1,
            "parts": parts,
            "customers": list(customers[part * size : (part + 1) * size]),
        }
        public_id, new = request_erasure(
            session,
            app_id=app_id,
            company_id=company_id,
            topic=ErasureTopic.RETENTION_EXPIRED,
            payload=payload,
            idempotency_key=_retention_key(app_id, company, field, cutoff.date(), part + 1),
            now=now,
        )
        if new:
            created.append(public_id)
    return created
