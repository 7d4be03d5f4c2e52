"""One turn of ``appwarden erasure worker``: owe what has come due, then send what is due.

A turn schedules the ``company.redact`` requests (48 h after a disconnection) and the
``retention.expired`` batches, each in its own transaction, then runs ``deliver_due`` once. The clock is
the caller's (``now``): the CLI passes the wall clock each turn, the tests a fixed time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.obligations.erasure import schedule_company_redacts
from appwarden.obligations.erasure_delivery import DeliveryRun, deliver_due
from appwarden.obligations.erasure_triggers import schedule_retention_expired

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Turn:
    """What one worker turn did."""

    at: datetime
    company_redacts: int
    retention_expired: int
    run: DeliveryRun

    def line(self) -> str:
        """The one line the worker prints per turn."""
        return (
            f"{self.at.isoformat(timespec='seconds')} scheduled {self.company_redacts} company.redact, "
            f"{self.retention_expired} retention.expired; delivered {self.run.delivered}, "
            f"failed {self.run.failed} (retried later), dead-lettered {self.run.dead}"
        )


def turn(db: Database, settings: Settings, now: datetime, client: httpx.Client) -> Turn:
    """Schedule the due requests, then deliver the due ones, as of ``now``."""
    with db.session() as session:
        redacts = schedule_company_redacts(session, settings, now)
    with db.session() as session:
        expired = schedule_retention_expired(session, settings, now)
    run = deliver_due(db, settings, now, client)
    result = Turn(now, len(redacts), len(expired), run)
    log.info(
        "erasure worker turn",
        company_redacts=result.company_redacts,
        retention_expired=result.retention_expired,
        delivered=run.delivered,
        failed=run.failed,
        dead=run.dead,
    )
    return result
