"""The kill switch: delist the app(s), revoke every token, suspend every connection and open the incident —
in ONE transaction (all of it or none of it) — then signal every API worker.

From the commit on, the data API (``broker.auth``) refuses the app on every worker (it reads the listing
state per request); ``incident.revocation`` explains the Redis signal on top.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import Conflict, InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.incident.models import IncidentApp
from appwarden.incident.revocation import RevocationSignal
from appwarden.incident.service import add_timeline, open_incident, open_incidents_for
from appwarden.incident.vocabulary import TimelineKind
from appwarden.incident.wording import KILL_SWITCH_CODE, SEED_QUESTIONS, seed_fact
from appwarden.incident.wording import SEED_UNKNOWNS as SEED_UNKNOWNS  # every new incident's open questions
from appwarden.marketplace.standing import AppStanding, find, transition
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.oauth.cutoff import cut_off
from appwarden.platform.directory import company_names

log = logging.getLogger(__name__)


@dataclass
class KillResult:
    """What the kill switch did (the ``incident open --json`` output)."""

    incident: str
    apps: list[str]
    opened_at: datetime
    tokens_revoked: int
    refresh_tokens_revoked: int
    codes_invalidated: int
    connections_suspended: int
    companies: list[str]
    signal: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None  # the ledger checkpoint signed at opening (None if it failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "apps": self.apps,
            "opened_at": self.opened_at.isoformat(),
            "listing_state": LifecycleState.DELISTED.value,
            "tokens_revoked": self.tokens_revoked,
            "refresh_tokens_revoked": self.refresh_tokens_revoked,
            "codes_invalidated": self.codes_invalidated,
            "connections_suspended": self.connections_suspended,
            "companies": self.companies,
            "signal": self.signal,
            "checkpoint": self.checkpoint,
        }


def kill_switch(
    db: Database,
    *,
    apps: Sequence[str],
    reason: str,
    actor: str,
    signal: RevocationSignal,
    title: str | None = None,
) -> KillResult:
    """Open an incident about ``apps`` (slugs or client ids) and cut them off, atomically; then publish."""
    refs = list(dict.fromkeys(a.strip() for a in apps if a.strip()))
    if not refs:
        raise InvalidInput("name at least one app (--app)", parameter="app")
    if not reason.strip():
        raise InvalidInput("a reason is required (--reason)", parameter="reason")
    now = utcnow()
    with db.session() as session:  # any error below rolls every change back
        rows = [find(session, ref) for ref in refs]  # NotFound(app_not_found) before any write
        _refuse_if_already_cut_off(session, rows)
        incident = open_incident(session, apps=rows, reason=reason, actor=actor, title=title)
        incident.opened_at = incident.aware_at = now
        ids = [a.id for a in rows]
        slugs = [a.slug for a in rows]
        cause = f"kill switch: {incident.public_id}"
        for app in rows:
            transition(session, app.id, LifecycleState.DELISTED, actor=actor, reason=cause, now=now)
        cut = cut_off(session, ids, now)
        revoked, refreshable, connections = cut.tokens_revoked, cut.refresh_tokens_revoked, cut.connections
        names = company_names(session, {c.company_id for c in connections})
        for connection in connections:
            record(
                session,
                EventTag.CONNECTION_SUSPENDED,
                actor=actor,
                app_id=connection.app_id,
                company_id=connection.company_id,
                connection_id=connection.id,
                reason=cause,
            )
        for app in rows:  # one event per app with the count, not one per token (there may be thousands)
            record(session, EventTag.TOKEN_REVOKED, actor=actor, app_id=app.id, reason=cause, all_tokens=True)
        session.execute(
            update(IncidentApp)
            .where(IncidentApp.incident_id == incident.id, IncidentApp.app_id.in_(ids))
            .values(killed_at=now)
        )
        companies = sorted({names[c.company_id].public_id for c in connections})
        counts = {
            "tokens_revoked": revoked,
            "refresh_tokens_revoked": refreshable,
            "codes_invalidated": cut.codes_invalidated,
            "connections_suspended": len(connections),
            "companies": len(companies),
        }
        text = (
            f"kill switch: {', '.join(slugs)} delisted; {revoked} access tokens "
            f"({refreshable} with live refresh tokens) revoked; {len(connections)} connections "
            f"of {len(companies)} companies suspended"
        )
        add_timeline(
            session, incident, actor=actor, kind=TimelineKind.KILL_SWITCH, text=text, apps=slugs, **counts
        )
        stamp = now.isoformat()
        done_at = now.strftime("%Y-%m-%d %H:%M:%S UTC")  # read in notices and reports: no microseconds
        fact = {"text": f"{text} at {done_at}", "at": stamp, "by": actor}
        # The code and params let notices and reports word this fact in their own language.
        incident.known = [fact | {"code": KILL_SWITCH_CODE, "params": {"apps": slugs, **counts}}]
        incident.unknown = [seed_fact(q, at=stamp) for q in SEED_QUESTIONS]
        for app in rows:
            record(session, EventTag.INCIDENT_OPENED, actor=actor, app_id=app.id, incident=incident.public_id)
        result = KillResult(
            incident=incident.public_id,
            apps=slugs,
            opened_at=now,
            tokens_revoked=revoked,
            refresh_tokens_revoked=refreshable,
            codes_invalidated=cut.codes_invalidated,
            connections_suspended=len(connections),
            companies=companies,
        )
    # Committed: every worker's database check now refuses the apps. Then the fast path for the rest.
    result.signal = signal.publish(ids)
    result.checkpoint = _checkpoint(db, result.incident, actor)
    return result


def _refuse_if_already_cut_off(session: Session, apps: Sequence[AppStanding]) -> None:
    """An app that an open incident already cut off gets no second incident: the operator adds to the
    open one. An app relisted while its incident is open is cut off again (the kill switch never refuses
    to stop a live app)."""
    current = open_incidents_for(session, [a.id for a in apps])
    for app in apps:
        incident = current.get(app.id)
        if incident is not None and app.listing_state == LifecycleState.DELISTED.value:
            opened = incident.opened_at.strftime("%Y-%m-%d %H:%M UTC")
            raise Conflict(
                f"{app.slug} already has an open incident, {incident.public_id} (opened {opened}), and is "
                f"cut off: add to it (`appwarden incident note {incident.public_id} …`) or close it first",
                code="incident_already_open",
                incident=incident.public_id,
                app=app.slug,
            )


def _checkpoint(db: Database, incident: str, actor: str) -> dict[str, Any] | None:
    """Sign the ledger's head as the incident opens (the state its blast radius is computed from). The
    kill switch has already taken effect, so a failure here is logged and recorded, never raised."""
    from appwarden.errors import AppwardenError
    from appwarden.ledger.checkpoint import publish_checkpoint

    try:
        published = publish_checkpoint(db, reason=f"incident {incident} opened", actor=actor)
    except AppwardenError as exc:
        log.warning("incident %s: no ledger checkpoint: %s", incident, exc.detail)
        return None
    return {
        "size": published.checkpoint.size,
        "hash": published.checkpoint.hash_hex,
        "file": str(published.path),
    }
