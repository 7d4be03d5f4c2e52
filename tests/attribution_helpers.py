"""Shared by the attribution tests: deliveries into the real ledger, and noisy dumps written to files."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from itertools import count
from pathlib import Path

from appwarden.ledger.service import record_delivery
from appwarden.marketplace import service as marketplace
from appwarden.platform.models import Customer
from conftest import Tenant, World

_requests = count()
_FULL = str.maketrans("0123456789-", "０１２３４５６７８９－")


def deliver(
    world: World,
    slug: str,
    tenant: Tenant,
    people: Sequence[Customer],
    keys: Sequence[tuple[str, str]],
    *,
    at: datetime | None = None,
) -> None:
    """Record that ``slug`` received ``keys`` (field, mode) of ``people`` in ``tenant``'s company."""
    ids = [c.id for c in people]
    record_delivery(
        world.db,
        request_id=f"test-{next(_requests)}",
        app_id=world.apps[slug][0],
        company_id=tenant.company.id,
        connection_id=None,
        endpoint="/v1/customers",
        kind="delivery",
        deliveries={key: ids for key in keys},
        now=at,
    )


def add_app(world: World, slug: str, scopes: list[str]) -> None:
    """Register one more listed app with ``scopes``."""
    with world.db.session() as session:
        reg = marketplace.register_app(
            session, slug=slug, name=slug.title(), redirect_uris=[f"https://{slug}.example/cb"], scopes=scopes
        )
        world.apps[slug] = (reg.app.id, reg.app.client_id, reg.client_secret)


def noisy_phone(phone: str, i: int) -> str:
    """The same number written five ways: as stored, full width, +81, digits only, +81(0) with a U+2212."""
    digits = phone.replace("-", "")
    return [
        phone,
        phone.translate(_FULL),
        f"+81 {digits[1:3]}-{digits[3:7]}-{digits[7:]}",
        digits,
        f"+81(0){digits[1:3]}\u2212{digits[3:7]}\u2212{digits[7:]}",
    ][i % 5]


def noisy_name(name: str, i: int) -> str:
    """A name with an ideographic space, swapped order or half/full-width digits."""
    family, given = name.split(" ", 1)
    return [name, f"{family}\u3000{given}", f"{given} {family}", name.translate(_FULL)][i % 4]


def write_csv(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[str | None]], encoding: str = "utf-8"
) -> Path:
    """A CSV dump in ``encoding`` (Shift_JIS as a forum post would have it, UTF-8…)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path
