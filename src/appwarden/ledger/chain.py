"""The ledger's pure parts: payload encoding, canonical entry bytes and the keyed hash chain.

Nothing here touches the database, so the recorder, the verifier and the benchmark share one definition
of what an entry *is* byte for byte.

Payload format (``AWL1``): the magic, then for each (field, mode) in sorted order three length-prefixed
frames: field, mode, and the bitmap in roaring's portable serialisation. Sorted keys and the portable
format make the bytes a function of the content alone.

Hash: ``HMAC-SHA256(K, prev_hash || canonical(entry))`` with ``K = HKDF-SHA256(master_key)``. Because the
key never lives in the database, someone with only write access to the tables cannot recompute a
consistent chain after editing, inserting or removing an entry.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pyroaring import BitMap

MAGIC = b"AWL1"
GENESIS = "0" * 64
_LEN = struct.Struct(">I")
_HKDF_INFO = b"appwarden ledger chain v1"

Key = tuple[str, str]  # (field, mode)


@lru_cache(maxsize=8)
def chain_key(master_key: bytes) -> bytes:
    """The chain's HMAC key, derived from the master key (a separate key per purpose)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(master_key)


def _frames(parts: Iterable[bytes]) -> bytes:
    return b"".join(_LEN.pack(len(part)) + part for part in parts)


def encode_payload(deliveries: Mapping[Key, BitMap]) -> bytes:
    """Canonical bytes of {(field, mode): bitmap}; empty bitmaps are left out (nothing was delivered)."""
    parts: list[bytes] = []
    for field, mode in sorted(deliveries):
        bitmap = deliveries[(field, mode)]
        if not bitmap:
            continue
        parts += [field.encode(), mode.encode(), bitmap.serialize()]
    return MAGIC + _frames(parts)


def iter_payload(payload: bytes) -> Iterable[tuple[Key, memoryview]]:
    """Yield ((field, mode), serialised bitmap) from a payload without deserialising the bitmaps."""
    if payload[:4] != MAGIC:
        raise ValueError("not a ledger payload")
    view = memoryview(payload)
    pos, end = 4, len(payload)
    parts: list[memoryview] = []
    while pos < end:
        (size,) = _LEN.unpack_from(view, pos)
        pos += 4
        if pos + size > end:
            raise ValueError("truncated ledger payload")
        parts.append(view[pos : pos + size])
        pos += size
        if len(parts) == 3:
            yield (bytes(parts[0]).decode(), bytes(parts[1]).decode()), parts[2]
            parts = []
    if parts:
        raise ValueError("truncated ledger payload")


def decode_payload(payload: bytes) -> dict[Key, BitMap]:
    """The {(field, mode): bitmap} an entry's payload holds."""
    return {key: BitMap.deserialize(bytes(raw)) for key, raw in iter_payload(payload)}


@dataclass(frozen=True, slots=True)
class EntryContent:
    """What an entry's hash covers (everything but ``prev_hash`` and ``hash`` themselves)."""

    seq: int
    recorded_at: datetime
    request_id: str
    app_id: int
    company_id: int
    connection_id: int | None
    endpoint: str
    kind: str
    persons: int
    payload: bytes
    # Deliveries made with a restricted token (and its minting) carry the token's public id and the
    # purpose it was minted for; both are None on every other entry.
    restricted_token: str | None = None
    purpose: str | None = None

    def canonical(self) -> bytes:
        """Length-prefixed frames, so no two different entries share bytes.

        The restricted-token frames are appended only when present: an entry without them has exactly
        the bytes it had before they existed (the chain recorded until then still verifies), and since
        every frame is length-prefixed an entry with them can never share bytes with one without.
        """
        at = self.recorded_at.astimezone(UTC).isoformat(timespec="microseconds")
        extra: list[bytes] = []
        if self.restricted_token is not None or self.purpose is not None:
            extra = [b"restricted", (self.restricted_token or "").encode(), (self.purpose or "").encode()]
        return _frames(
            [
                str(self.seq).encode(),
                at.encode(),
                self.request_id.encode(),
                str(self.app_id).encode(),
                str(self.company_id).encode(),
                b"" if self.connection_id is None else str(self.connection_id).encode(),
                self.endpoint.encode(),
                self.kind.encode(),
                str(self.persons).encode(),
                self.payload,
                *extra,
            ]
        )


def entry_hash(key: bytes, prev_hash: str, content: EntryContent) -> str:
    """HMAC-SHA256 over the previous hash (its hex text) and the entry's canonical bytes, as hex."""
    return hmac.new(key, prev_hash.encode() + content.canonical(), hashlib.sha256).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(a.encode(), b.encode())
