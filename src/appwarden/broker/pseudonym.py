"""Per-app keyed pseudonyms: the ``tok_…`` field tokens and the app's own ``cus_…`` / ``txn_…`` ids.

Construction: one AES-256 block (a pseudorandom permutation) per value, under a key derived per app
with HKDF-SHA256 from the master key. The 16-byte plaintext block is

    version (1) | field slot (1) | company id (u32) | customer internal id (u32) | 6 zero check bytes

(in the transaction slot the u32 is the transaction's internal id).

Why a single-block PRP rather than AES-SIV or an HMAC:
- Deterministic by design: the same (app, person, field) always maps to the same token, which is what
  "stable pseudonym" means; a different app's key gives an unrelated token, so vendors cannot join.
- Reversible only with the server key (detokenize, id lookups) without a lookup table to store.
- Authenticated enough: a forged or another app's value decrypts to a random block, which passes the
  version, slot and six zero bytes only with probability < 2^-56 — and each try is an online request.
- Fixed, short output (22 base64url characters) and batchable: a whole page's blocks are concatenated
  and encrypted by one ECB call, which for independent blocks is exactly one PRP application each.
  AES-SIV would add a 16-byte tag per value and need one call per value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appwarden.marketplace.scopes import CUSTOMER_FIELDS

VERSION = 1
TOKEN_PREFIX = "tok_"
ID_PREFIX = "cus_"
# Slot 0 is the customer id itself; fields follow in their canonical order (never reorder: tokens
# already handed out would stop decoding).
SLOTS: dict[str, int] = {"id": 0, **{name: i + 1 for i, name in enumerate(CUSTOMER_FIELDS)}}
FIELDS_BY_SLOT: dict[int, str] = {slot: name for name, slot in SLOTS.items()}
# The app's own ids for transactions (``txn_…``): a slot outside every customer slot, so such a block
# never decodes as a customer id or a field token.
TRANSACTION_SLOT = 0x80
TRANSACTION_PREFIX = "txn_"
_ENCODED_LEN = 22  # base64url of 16 bytes, unpadded
_MAX_U32 = 2**32 - 1

# Big-endian plaintext block layout, built for a whole column at once with numpy.
_BLOCK = np.dtype(
    [("version", "u1"), ("slot", "u1"), ("company", ">u4"), ("customer", ">u4"), ("check", "V6")]
)
assert _BLOCK.itemsize == 16


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a pseudonym stands for (known only server-side)."""

    field: str
    company_id: int
    customer_id: int


@lru_cache(maxsize=4096)
def app_key(master_key: bytes, app_id: int) -> bytes:
    """The AES-256 key of one app, HKDF-derived from the master key (cached: derivation is per app)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"appwarden/pseudonym/v1",
        info=f"app:{app_id}".encode(),
    ).derive(master_key)


def _encode(raw: bytes, count: int, prefix: str) -> list[str]:
    return [
        prefix + base64.urlsafe_b64encode(raw[i * 16 : (i + 1) * 16]).rstrip(b"=").decode()
        for i in range(count)
    ]


def _blocks(company_id: int, slots: np.ndarray, ids: np.ndarray) -> bytes:
    """The plaintext blocks for ``ids`` (one slot each), concatenated, range-checked."""
    if not 0 <= company_id <= _MAX_U32:
        raise OverflowError("company id does not fit a pseudonym block")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) > _MAX_U32):
        raise OverflowError("customer id does not fit a pseudonym block")
    blocks = np.zeros(ids.size, dtype=_BLOCK)
    blocks["version"] = VERSION
    blocks["company"] = company_id
    blocks["slot"] = slots
    blocks["customer"] = ids
    return blocks.tobytes()


def _ecb(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def prp(key: bytes, company_id: int, slot: int, ids: Sequence[int] | np.ndarray) -> bytes:
    """The raw 16-byte pseudonym blocks of ``ids`` in one slot, concatenated (one AES call for all).

    These bytes are exactly what the app's ``cus_…`` / ``txn_…`` ids encode, so they double as the app's
    own sort key: listing in this order is a permutation keyed per app (``broker.ordering``).
    """
    arr = np.asarray(ids, dtype=np.int64)
    return _ecb(key, _blocks(company_id, np.full(arr.size, slot, dtype=np.uint8), arr))


def text_of(cipher: bytes, prefix: str) -> list[str]:
    """``prefix`` + the unpadded base64url of each 16-byte block of ``cipher``, all encoded at once."""
    total = len(cipher) // 16
    # Each 16-byte block padded with 2 zero bytes to 18 (a multiple of 3) encodes to 24 characters
    # whose first 22 are exactly the unpadded encoding of the block.
    padded = np.zeros((total, 18), dtype=np.uint8)
    padded[:, :16] = np.frombuffer(cipher, dtype=np.uint8).reshape(total, 16)
    text = base64.urlsafe_b64encode(padded.tobytes()).decode()
    return [prefix + text[i * 24 : i * 24 + _ENCODED_LEN] for i in range(total)]


def encode_column(
    key: bytes, company_id: int, slot_ids: Sequence[tuple[str, Sequence[int]]]
) -> list[list[str]]:
    """Pseudonyms for several columns in one AES call.

    ``slot_ids`` is ``[(field or "id", customer internal ids), …]``; returns one list of strings per
    entry, ``cus_…`` for the ``id`` slot and ``tok_…`` for fields.
    """
    total = sum(len(ids) for _, ids in slot_ids)
    if total == 0:
        return [[] for _ in slot_ids]
    slots = np.concatenate([np.full(len(ids), SLOTS[name], dtype=np.uint8) for name, ids in slot_ids])
    ids = np.concatenate([np.asarray(ids, dtype=np.int64) for _, ids in slot_ids])
    cipher = _ecb(key, _blocks(company_id, slots, ids))
    out: list[list[str]] = []
    start = 0
    for name, column in slot_ids:
        end = start + len(column)
        out.append(text_of(cipher[start * 16 : end * 16], ID_PREFIX if name == "id" else TOKEN_PREFIX))
        start = end
    return out


def encode_one(key: bytes, company_id: int, name: str, customer_id: int) -> str:
    """The pseudonym of one value (``name`` is a field or ``"id"``)."""
    return encode_column(key, company_id, [(name, [customer_id])])[0][0]


def decode_many(key: bytes, values: Sequence[str], prefix: str) -> list[Decoded | None]:
    """Reverse pseudonyms made with ``key``; None for anything that is not one (wrong app, forged, garbled).

    All values are decrypted with one AES call.
    """
    raws: list[bytes | None] = []
    for value in values:
        raw = None
        if isinstance(value, str) and value.startswith(prefix) and len(value) == len(prefix) + _ENCODED_LEN:
            try:
                raw = base64.urlsafe_b64decode(value[len(prefix) :] + "==")
            except (binascii.Error, ValueError):
                raw = None
            # Reject non-canonical encodings so one token has exactly one spelling.
            if raw is not None and (len(raw) != 16 or _encode(raw, 1, prefix)[0] != value):
                raw = None
        raws.append(raw)
    present = [r for r in raws if r is not None]
    plain = b""
    if present:
        decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
        plain = decryptor.update(b"".join(present)) + decryptor.finalize()
    blocks = np.frombuffer(plain, dtype=_BLOCK)
    out: list[Decoded | None] = []
    j = 0
    for raw in raws:
        if raw is None:
            out.append(None)
            continue
        block = blocks[j]
        j += 1
        field = FIELDS_BY_SLOT.get(int(block["slot"]))
        valid = (
            int(block["version"]) == VERSION
            and bytes(block["check"]) == b"\0" * 6
            and field is not None
            and (field == "id") == (prefix == ID_PREFIX)
        )
        out.append(Decoded(field, int(block["company"]), int(block["customer"])) if valid and field else None)
    return out


def decode_one(key: bytes, value: str, prefix: str) -> Decoded | None:
    """Reverse one pseudonym, or None."""
    return decode_many(key, [value], prefix)[0]
