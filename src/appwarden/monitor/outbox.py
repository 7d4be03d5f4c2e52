"""The outbox of work owed on each raised alert: its action, its webhook and its mail.

:func:`enqueue` adds the rows in the raiser's transaction, so an alert never exists without them and
none exists without its alert. After the alert has committed, the background run (``monitor.runner``)
:func:`claim`\\ s due rows — one conditional ``UPDATE`` per row, committed before any work starts, so two
workers racing for a row never both win — then does the work and calls :func:`finish` or :func:`fail`.
A failure backs off (one run interval, doubling, up to ``delivery_backoff_max_seconds``) and is tried
again by a later run; nothing is dropped, and a slow receiver never holds up the detectors' transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from appwarden.db.session import Database
from appwarden.monitor.models import Alert, OutboxItem

LEASE = timedelta(minutes=5)  # longer than any one delivery may take (HTTP and SMTP time out sooner)
BATCH = 100


class Channel(StrEnum):
    ACTION = "action"
    WEBHOOK = "webhook"
    MAIL = "mail"


def enqueue(session: Session, alert: Alert) -> None:
    """Owe ``alert`` its action and its deliveries (in the transaction that raises it)."""
    for channel in Channel:
        session.add(OutboxItem(alert_id=alert.id, channel=channel.value, not_before=alert.raised_at))


def claim(
    db: Database, channels: Sequence[Channel], *, worker: str, now: datetime, limit: int = BATCH
) -> list[int]:
    """Claim up to ``limit`` due rows of ``channels`` for ``worker`` (a lease until ``now + LEASE``);
    return the ids won. Committed before returning: the claim is visible to every other worker."""
    free = or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now)
    won: list[int] = []
    with db.session() as session:
        due = session.scalars(
            select(OutboxItem.id)
            .where(
                OutboxItem.done_at.is_(None),
                OutboxItem.channel.in_([c.value for c in channels]),
                OutboxItem.not_before <= now,
                free,
            )
            .order_by(OutboxItem.id)
            .limit(limit)
        ).all()
        for item_id in due:
            # The condition is checked again by the UPDATE itself (PostgreSQL re-reads a row another
            # transaction changed): of two workers that both saw the row free, one updates it.
            result = session.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item_id, OutboxItem.done_at.is_(None), free)
                .values(claimed_by=worker, claimed_until=now + LEASE)
            )
            if getattr(result, "rowcount", 0) == 1:
                won.append(item_id)
    return won


def finish(session: Session, item: OutboxItem, *, now: datetime, outcome: str) -> None:
    """The row's work is done (or needs none: ``outcome`` says which)."""
    item.done_at = now
    item.outcome = outcome[:500]
    item.claimed_until = None
    item.last_error = None


def fail(
    session: Session, item: OutboxItem, *, now: datetime, error: str, interval: float, cap: float
) -> None:
    """The work failed: release the claim and try again after a back-off (``interval`` doubling per
    attempt, at most ``cap`` seconds). ``error`` must carry no secret and no URL."""
    item.attempts += 1
    delay = min(cap, interval * 2 ** (item.attempts - 1))
    item.not_before = now + timedelta(seconds=delay)
    item.claimed_by = None
    item.claimed_until = None
    item.last_error = error[:500]


def pending(session: Session, alert_id: int) -> list[OutboxItem]:
    """The alert's rows (done or not), by channel, for display."""
    return list(
        session.scalars(select(OutboxItem).where(OutboxItem.alert_id == alert_id).order_by(OutboxItem.id))
    )


def action_outcomes(session: Session, public_ids: Sequence[str]) -> dict[str, str | None]:
    """What each alert's action did (its outcome, ``None`` while owed), by the alert's public id."""
    if not public_ids:
        return {}
    rows = session.execute(
        select(Alert.public_id, OutboxItem.outcome)
        .join(OutboxItem, OutboxItem.alert_id == Alert.id)
        .where(Alert.public_id.in_(list(public_ids)), OutboxItem.channel == Channel.ACTION.value)
    ).all()
    return {public_id: outcome for public_id, outcome in rows}
