"""Opaque page cursors: encrypted and authenticated (AES-256-GCM-SIV), bound to app, company and listing.

A cursor carries the position after which the next page starts: the 16-byte per-app sort key of the
last item of the page (``broker.ordering``), never an internal id (plus, for the per-app orders, the
digest naming the id set the walk started from). It is sealed with an AEAD
under a key of its own (HKDF from the master key), with the listing, the app and the company as
associated data and a fresh random nonce, so

- an app learns nothing from its cursors (not even whether two cursors point at the same position);
- a cursor made for another app, company or listing, or altered in any byte, fails authentication and
  is refused as 422 ``invalid_cursor`` rather than silently restarting the walk.

A cursor is only a position, never an authorisation: the company always comes from the token.
GCM-SIV rather than GCM: a repeated nonce (random, 96 bits) would cost nothing but equality of two
cursors, instead of the authentication key.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appwarden.errors import InvalidInput

VERSION = 2  # 1 was the readable itsdangerous cursor; such cursors now fail as invalid_cursor
POSITION_SIZE = 16
MAX_PAYLOAD = 64
_NONCE_SIZE = 12
_TAG_SIZE = 16
_OVERHEAD = 1 + _NONCE_SIZE + _TAG_SIZE
_MAX_TEXT = (_OVERHEAD + MAX_PAYLOAD) * 4 // 3 + 4


@lru_cache(maxsize=8)
def _aead(master_key: bytes) -> AESGCMSIV:
    # A key of its own, so a cursor can never double as a session cookie or a pseudonym.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"appwarden/cursor/v2", info=b"cursor").derive(
        master_key
    )
    return AESGCMSIV(key)


def _associated(listing: str, app_id: int, company_id: int) -> bytes:
    return f"appwarden.cursor.v{VERSION}|{listing}|app:{app_id}|company:{company_id}".encode()


def invalid() -> InvalidInput:
    """The one error for every cursor that is not exactly what this caller and listing were given."""
    return InvalidInput("the cursor is not valid", code="invalid_cursor", parameter="cursor")


def encode(master_key: bytes, *, listing: str, app_id: int, company_id: int, payload: bytes) -> str:
    """A cursor that resumes ``listing`` ("customers" / "transactions" / …) from ``payload`` (a position,
    16 bytes, possibly followed by what the listing needs to resume; at most 64 bytes)."""
    if not POSITION_SIZE <= len(payload) <= MAX_PAYLOAD:
        raise ValueError("a cursor payload is 16 to 64 bytes")
    nonce = os.urandom(_NONCE_SIZE)
    sealed = _aead(master_key).encrypt(nonce, payload, _associated(listing, app_id, company_id))
    return base64.urlsafe_b64encode(bytes([VERSION]) + nonce + sealed).rstrip(b"=").decode()


def decode(master_key: bytes, cursor: str, *, listing: str, app_id: int, company_id: int) -> bytes:
    """The payload sealed in a cursor, if it was made for exactly this caller and listing."""
    if len(cursor) > _MAX_TEXT:
        raise invalid()
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise invalid() from None
    # One spelling per cursor: non-canonical base64 (stray padding, trailing bits) is refused too.
    if (
        not POSITION_SIZE <= len(raw) - _OVERHEAD <= MAX_PAYLOAD
        or raw[0] != VERSION
        or base64.urlsafe_b64encode(raw).rstrip(b"=") != (cursor.encode("ascii"))
    ):
        raise invalid()
    nonce, sealed = raw[1 : 1 + _NONCE_SIZE], raw[1 + _NONCE_SIZE :]
    try:
        return _aead(master_key).decrypt(nonce, sealed, _associated(listing, app_id, company_id))
    except InvalidTag:
        raise invalid() from None
