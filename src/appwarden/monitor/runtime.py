"""The monitor of one app instance: its policy, quotas, write-path tally and background loop.

``app.create_app`` builds it (a bad policy file stops start-up, not the first request) and the broker
reaches it through :func:`monitor_of`. The broker's calls, in the order a request meets them:

    monitor.admit_request(session, app_id, company_id)           # after authentication: 429 or on
    monitor.admit_people(session, app_id, company_id, people)    # the page is known: 429 or on
    monitor.delivered(app_id, company_id, deliveries, at,        # after the ledger committed it
                      token_id=..., client=...)
    monitor.refused(app_id, company_id, status, late=...)        # a known app's call was refused
    monitor.restricted_minted(app_id, company_id, customer_ids, at)  # a restricted token was minted
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.monitor.policy import MonitorPolicy, load_policy
from appwarden.monitor.quotas import Quotas
from appwarden.monitor.runner import MonitorLoop, RunReport, run_once
from appwarden.monitor.tally import LateCall, Tally


class Monitor:
    """Quotas and counters for the data API, and the detectors' background run."""

    def __init__(self, settings: Settings, db: Database, policy: MonitorPolicy | None = None) -> None:
        self.settings = settings
        self.db = db
        self.policy = policy or load_policy(settings)
        self.quotas = Quotas(settings, self.policy)
        self.tally = Tally()
        self._loop: MonitorLoop | None = None
        self._clock: Callable[[], datetime] | None = None

    def use_clock(self, clock: Callable[[], datetime] | None) -> None:
        """Stamp every count and run at ``clock()`` instead of the times the broker passes (``None``:
        back to those). The demo's replay runs simulated days through the live app this way: the
        ledger keeps its real ``recorded_at``, while the hours, windows, throttles and runs of the
        monitor all read the one simulated clock."""
        self._clock = clock
        self.quotas.use_clock(clock)

    def _at(self, at: datetime | None) -> datetime:
        if self._clock is not None:
            return self._clock()
        return at or utcnow()

    def admit_request(self, session: Session, app_id: int, company_id: int) -> None:
        self.quotas.admit_request(session, app_id, company_id)

    def admit_people(self, session: Session | None, app_id: int, company_id: int, people: int) -> None:
        """``session``: the request's, if it has one (a declaration is read only on a cache miss)."""
        if session is not None:
            self.quotas.admit_people(session, app_id, company_id, people)
            return
        with self.db.sessionmaker() as own:
            self.quotas.admit_people(own, app_id, company_id, people)

    def delivered(
        self,
        app_id: int,
        company_id: int,
        deliveries: Mapping[Any, Iterable[int] | Any],
        at: datetime,
        *,
        token_id: int | None = None,
        client: str | None = None,
    ) -> None:
        """``token_id``: the access token's row id; ``client``: the caller's address (only its network
        prefix is kept, see ``monitor.sources``)."""
        self.tally.delivered(app_id, company_id, deliveries, self._at(at), token_id=token_id, client=client)

    def refused(
        self,
        app_id: int,
        company_id: int,
        status: int,
        at: datetime | None = None,
        *,
        late: LateCall | None = None,
    ) -> None:
        """``late``: the call came with a revoked token or from a killed app (``monitor.probing``)."""
        self.tally.refused(app_id, company_id, status, self._at(at), late)

    def restricted_minted(
        self, app_id: int, company_id: int, customer_ids: Iterable[int], at: datetime | None = None
    ) -> None:
        """A restricted token was minted for these people (``restricted_token_volume``)."""
        self.tally.restricted_minted(app_id, company_id, customer_ids, self._at(at))

    def run_once(self, now: datetime | None = None) -> RunReport:
        """Fold this worker's tally and, if it is this worker's turn, run the detectors at ``now``."""
        when = now or (self._clock() if self._clock is not None else None)
        return run_once(self.db, self.settings, self.policy, self.tally, now=when, quotas=self.quotas)

    def start(self) -> None:
        """Start the background run (``monitor_background``: ``serve`` turns it on in every worker)."""
        if self._loop is None:
            self._loop = MonitorLoop(self.run_once, self.policy.run_interval_seconds)
            self._loop.start()

    def stop(self) -> None:
        """Stop the background run; a stopping worker folds what it tallied (and may take a turn)."""
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
            self.run_once()


def monitor_of(app: FastAPI) -> Monitor:
    """This app instance's monitor (built by the app factory)."""
    monitor: Monitor = app.state.monitor
    return monitor
