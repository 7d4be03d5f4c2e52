"""The HMAC signature on every webhook appwarden sends (alert receivers, vendors' erasure endpoints).

    X-Appwarden-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the shared secret>

A receiver recomputes the HMAC over the raw body and rejects a timestamp more than 5 minutes away from
its own clock (a replayed request). It sits in the bottom layer: the monitor (alerts) and the vendor
obligations (erasure requests) both sign, and neither may import the other.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Appwarden-Signature"
TIMESTAMP_HEADER = "X-Appwarden-Timestamp"
REPLAY_WINDOW_SECONDS = 300.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Appwarden-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes, *, now: float, tolerance: float = REPLAY_WINDOW_SECONDS
) -> bool:
    """A receiver's check (also used by the tests): the signature matches and is at most ``tolerance``
    seconds old."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)
