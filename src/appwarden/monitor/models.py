"""Monitor tables: alerts, hourly delivery counts per (app, company), the first sighting of each
credential and client network per (app, company), the one-row run lock, throttles and the outbox of
actions and deliveries owed on alerts."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow


class Alert(Base):
    """One finding of a detector (or a canary contact) about an app, in a window, for the security team.

    ``dedup_key`` (detector, app, company, window start) is unique: the same finding is raised once
    however many workers or runs see it.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "alr"))
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    detector: Mapped[str] = mapped_column(String(40), index=True)  # a Detector
    severity: Mapped[str] = mapped_column(String(10))  # a Severity
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    observed: Mapped[dict] = mapped_column(default=dict)
    baseline: Mapped[dict] = mapped_column(default=dict)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(20))  # an Action
    ledger_entries: Mapped[list] = mapped_column(default=list)  # seqs of the entries behind it
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(2000))


class DeliveryHour(Base):
    """What one app received from one company in one hour: requests, person-deliveries, the distinct
    people (a roaring bitmap), refused calls by status and by kind (after revocation, after a kill) and
    the people named in restricted-token mints. Folded in from each worker's tally."""

    __tablename__ = "monitor_hours"
    __table_args__ = (UniqueConstraint("app_id", "company_id", "hour", name="uq_monitor_hours_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # the hour's start
    requests: Mapped[int] = mapped_column(Integer, default=0)
    persons: Mapped[int] = mapped_column(Integer, default=0)  # person-deliveries (re-reads count again)
    people: Mapped[bytes] = mapped_column(LargeBinary)  # distinct people delivered (roaring bitmap)
    refused_401: Mapped[int] = mapped_column(Integer, default=0)
    refused_403: Mapped[int] = mapped_column(Integer, default=0)
    refused_404: Mapped[int] = mapped_column(Integer, default=0)
    # Calls with a revoked token, and calls of a killed (delisted) app: also counted in their status
    # above, and apart here because any of them is a signal (``monitor.probing``).
    after_revocation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    after_kill: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The distinct people named in restricted-token mints (a roaring bitmap); None: no mint that hour.
    restricted_people: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Distinct people per customer field this hour: ``{field: count}`` (what ``over_baseline`` reads) and
    # ``{field: base64 roaring bitmap}`` (what the fold unions, so several workers' counts stay distinct).
    field_people: Mapped[dict] = mapped_column(default=dict)
    field_bitmaps: Mapped[dict] = mapped_column(default=dict)


class SourceSighting(Base):
    """The first time one credential (a grant: every rotation of one authorisation) or one client network
    (an IPv4 /24 or IPv6 /48 prefix) was seen calling for one app × company, and the distinct people
    delivered through it in its first hours (``new_credential_volume``). ``key`` is a hash of the grant,
    never a token; a network is stored as its prefix only."""

    __tablename__ = "monitor_sources"
    __table_args__ = (UniqueConstraint("app_id", "company_id", "kind", "key", name="uq_monitor_sources_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    kind: Mapped[str] = mapped_column(String(20))  # a SourceKind
    key: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    people: Mapped[bytes] = mapped_column(LargeBinary)  # distinct people within its first hours


class MonitorRun(Base):
    """The detectors' run lock and bookkeeping (one row, id 1): the worker holding its row lock runs."""

    __tablename__ = "monitor_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    runs: Mapped[int] = mapped_column(Integer, default=0)


class Throttle(Base):
    """A lower quota for one connection (``company_id`` None: every connection of the app), set by an
    alert's ``throttle`` action: ``factor`` × its usual limits until ``expires_at`` or an operator lifts
    it. Read by every worker's quotas (``monitor.quotas``) through a short cache."""

    __tablename__ = "monitor_throttles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "thr"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    factor: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(200))
    lift_reason: Mapped[str | None] = mapped_column(String(2000))


class OutboxItem(Base):
    """Work owed on a raised alert, done after the alert committed and retried until done: its action
    (``action``: decided by the policy's mode and ladder) and its deliveries (``webhook``, ``mail``).

    A worker claims a row (``claimed_by``, ``claimed_until``: a lease) in its own committed update
    before doing the work, so two workers never send the same delivery; a worker that dies mid-way
    leaves a lease that expires and the row is taken again."""

    __tablename__ = "monitor_outbox"
    __table_args__ = (UniqueConstraint("alert_id", "channel", name="uq_monitor_outbox_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # a Channel
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    outcome: Mapped[str | None] = mapped_column(String(500))  # what was done, or why nothing was
    last_error: Mapped[str | None] = mapped_column(String(500))  # never a secret or a URL
