"""The stored form of a secret the platform issues (access tokens, codes, client secrets, API keys)."""

from __future__ import annotations

import hashlib


def token_hash(token: str) -> str:
    """SHA-256 hex of a high-entropy secret: what the database keeps instead of the secret itself.

    Issued secrets are random (≥ 256 bits), so a fast hash is enough; passwords use argon2 instead.
    """
    return hashlib.sha256(token.encode()).hexdigest()
