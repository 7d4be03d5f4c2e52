"""Opaque, signed page cursors bound to the app, the company, the listing and the last internal id.

A cursor is only a position, never an authorisation: the company always comes from the token, and a
cursor made for another app, company or listing (or altered in any byte) is refused as 422
``invalid_cursor`` rather than silently restarting the walk.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadData, URLSafeSerializer

from appwarden.errors import InvalidInput

_SALT = "appwarden.cursor.v1"


@lru_cache(maxsize=8)
def _serializer(master_key: bytes) -> URLSafeSerializer:
    # A key of its own, so a cursor signature can never double as a session cookie or a pseudonym.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"appwarden/cursor/v1", info=b"cursor").derive(
        master_key
    )
    return URLSafeSerializer(key, salt=_SALT)


def encode(master_key: bytes, *, listing: str, app_id: int, company_id: int, last_id: int) -> str:
    """A cursor that resumes ``listing`` ("customers" / "transactions") after ``last_id``."""
    return str(_serializer(master_key).dumps([listing, app_id, company_id, last_id]))


def decode(master_key: bytes, cursor: str, *, listing: str, app_id: int, company_id: int) -> int:
    """The last internal id a cursor points after, if it was made for exactly this caller and listing."""
    try:
        payload = _serializer(master_key).loads(cursor)
    except BadData:
        raise InvalidInput("the cursor is not valid", code="invalid_cursor", parameter="cursor") from None
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or payload[:3] != [listing, app_id, company_id]
        or not isinstance(payload[3], int)
        or isinstance(payload[3], bool)
        or payload[3] < 0
    ):
        raise InvalidInput(
            "the cursor was not issued for this request", code="invalid_cursor", parameter="cursor"
        )
    return int(payload[3])
