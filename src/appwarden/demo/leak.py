"""The demo's leaked dump: what invoice-plus's vendor kept, as it would appear on a forum.

The vendor stored every customer its app received (names and phones, raw), tagged with the store it came
from; the thief published that table as a Shift_JIS CSV, the way Japanese office software exports it. The
dump is built from the ledger (who the app received), so it holds exactly those people — canaries issued to
the app's connections included, which is what lets ``appwarden attribute`` prove where it came from.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from pyroaring import BitMap
from sqlalchemy.orm import Session

from appwarden.demo.catalog import INVOICE_PLUS
from appwarden.ledger import service as ledger
from appwarden.marketplace.service import app_id_of
from appwarden.platform.census import contact_rows

HEADER = ("顧客名", "電話番号", "登録店舗")


def leak_path(data_dir: Path, slug: str = INVOICE_PLUS) -> Path:
    """Where the demo writes the leaked dump of ``slug``."""
    return data_dir / "demo" / f"leak-{slug}.csv"


def received(session: Session, app_id: int) -> BitMap:
    """Everyone whose name or phone the app received in full (raw)."""
    people = BitMap()
    for field in ("name", "phone"):
        people |= ledger.persons(session, app_id=app_id, field=field, mode="raw")
    return people


def write_leak(session: Session, data_dir: Path, slug: str = INVOICE_PLUS) -> Path | None:
    """Write the leaked dump of ``slug`` (None when the app received nobody's data). Returns the path.

    Phones are written as the vendor stored them, digits only; rows in the vendor's (id) order. The file is
    written to a temporary name and renamed, so a reader never sees half a dump.
    """
    app_id = app_id_of(session, slug)
    if app_id is None:
        return None
    people = received(session, app_id)
    if not people:
        return None
    path = leak_path(data_dir, slug)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = people.to_array().tolist()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(
        (name, "" if phone is None else phone.replace("-", ""), store)
        for name, phone, store in contact_rows(session, ids)
    )
    tmp = path.with_suffix(".tmp")
    # cp932 is what "Shift_JIS" means in practice on Japanese Windows; a character it lacks is replaced.
    tmp.write_bytes(buffer.getvalue().encode("cp932", errors="replace"))
    os.replace(tmp, path)
    return path
