"""Secrets the platform must read back (a TOTP seed, a vendor's webhook secret), sealed at rest.

AES-256-GCM under a key derived from the master key for one purpose (never the master key itself), with
the owning row's identity (``user:7``, ``app:3``) as associated data: a sealed value copied to another
row, or read under another key, does not open. Stored as URL-safe base64 of nonce ‖ ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def derive_key(master_key: bytes, purpose: bytes) -> bytes:
    """The AES-256 key for one kind of secret (``purpose`` names it and its version)."""
    return hmac.new(master_key, purpose, hashlib.sha256).digest()


def seal(key: bytes, context: str, secret: str) -> str:
    """``secret`` sealed under ``key``, bound to ``context`` (the owning row, e.g. ``app:3``)."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), context.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(key: bytes, context: str, stored: str) -> str | None:
    """The secret sealed in ``stored``, or None under another key or another row's ``context``."""
    raw = base64.urlsafe_b64decode(stored.encode())
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
    except InvalidTag:
        return None
