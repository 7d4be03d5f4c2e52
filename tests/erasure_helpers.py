"""An erasure request owed to the console world's ``vendor-a-app`` and delivered to a real local HTTP
receiver (the console's and the browser's attestation tests)."""

from __future__ import annotations

import httpx

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.marketplace.standing import find
from appwarden.obligations.erasure import request_erasure, set_endpoint
from appwarden.obligations.erasure_delivery import deliver_due
from appwarden.obligations.vocabulary import ErasureTopic
from console_world import ConsoleWorld
from http_receiver import serving


def owed_request(settings: Settings, db: Database, cw: ConsoleWorld) -> str:
    """A customer.redact for vendor-a-app, delivered to a real local receiver."""
    now = utcnow()
    tenant = cw.world.tenants[0]
    with serving() as receiver:
        with db.session() as session:
            set_endpoint(session, settings, "vendor-a-app", receiver.url, actor="test", now=now)
            public_id, _ = request_erasure(
                session,
                app_id=find(session, "vendor-a-app").id,
                company_id=tenant.company.id,
                topic=ErasureTopic.CUSTOMER_REDACT,
                payload={"customer": tenant.customers[0].public_id},
                idempotency_key="browser-1",
                now=now,
            )
        with httpx.Client() as http:
            assert deliver_due(db, settings, now, http).delivered == 1
    return public_id
