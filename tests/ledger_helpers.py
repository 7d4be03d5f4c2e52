"""Recording ledger deliveries for a test world directly (tests about what the ledger says, not the
broker): ``deliver(world, "invoice-plus", 0, at, name__raw=[0, 1])`` records that the app received the
names of tenant 0's customers 0 and 1 raw at ``at``."""

from __future__ import annotations

import random
from datetime import datetime

from appwarden.ledger.service import record_delivery
from appwarden.ledger.vocabulary import EntryKind
from conftest import World


def deliver(
    world: World,
    slug: str,
    tenant: int,
    at: datetime,
    kind: EntryKind = EntryKind.DELIVERY,
    **fields: list[int],
) -> None:
    """One ledger entry of ``slug`` for tenant ``tenant``: each ``field__mode=[customer indexes]``."""
    t = world.tenants[tenant]
    deliveries: dict[tuple[str, str], list[int]] = {}
    for key, people in fields.items():
        field, mode = key.split("__")
        deliveries[(field, mode)] = [t.customers[i].id for i in people]
    record_delivery(
        world.db,
        request_id=f"req-{random.random()}",
        app_id=world.apps[slug][0],
        company_id=t.company.id,
        connection_id=None,
        endpoint="/v1/customers",
        kind=kind,
        deliveries=deliveries,
        now=at,
    )
