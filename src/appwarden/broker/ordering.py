"""Per-app listing order: every app walks a company's people (and transactions) in an order of its own.

If every app listed a company's customers in internal-id order, two apps could link people simply by
position (the k-th customer of one is the k-th of the other), and a cursor holding the last internal id
would hand out that id. Instead a listing is sorted by the app's own pseudonym of each item: the 16-byte
AES block behind its ``cus_…`` (or ``txn_…``) id, a per-app keyed pseudorandom permutation
(``broker.pseudonym``). Two apps' orders are then independent random permutations of the same set, and
the cursor position is the last item's key, which the app already holds as that item's id.

Vectorised: the keys of the whole company are made with one AES-ECB call over the concatenated blocks
and sorted with numpy once; a sorted order is kept in a small in-process cache keyed by (app key,
company, slot, a digest of the exact id set), so a walk page by page costs a binary search per page.
A cursor carries the digest too (sealed): the pages after the first of a walk reuse the order of the set
the walk started from, without reading the set again (a member who joins mid-walk is listed on the next
walk, as anyone whose position falls before the cursor would be). Rows are always re-read and re-checked
in SQL (``broker.listing``), so whoever left or moved since is not delivered.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pyroaring import BitMap

from appwarden.broker import pseudonym
from appwarden.broker.cursor import POSITION_SIZE

DIGEST_SIZE = 16
# About 20 bytes per id are kept (two u64 halves of the key and a u32 id): 2M ids is ~40 MB per worker.
_CACHE_MAX_IDS = 2_000_000


@dataclass(frozen=True, slots=True)
class Order:
    """One app's order of a set of internal ids: keys ascending, ``ids[i]`` the item with key i."""

    hi: np.ndarray  # uint64, the first 8 key bytes (big-endian)
    lo: np.ndarray  # uint64, the last 8
    ids: np.ndarray  # internal ids, in this order
    digest: bytes  # names the exact id set (``fingerprint``): a cursor carries it to find this order again
    canaries: BitMap  # the canaries in the set (issued to the connection the set was read for)

    def __len__(self) -> int:
        return int(self.ids.size)

    def position(self, index: int) -> bytes:
        """The 16-byte key of the item at ``index`` (what a cursor after it holds)."""
        return int(self.hi[index]).to_bytes(8, "big") + int(self.lo[index]).to_bytes(8, "big")

    def start_after(self, position: bytes | None) -> int:
        """Index of the first item whose key is greater than ``position`` (0 for a first page)."""
        if position is None:
            return 0
        if len(position) != POSITION_SIZE:
            raise ValueError("a position is 16 bytes")
        hi = np.uint64(int.from_bytes(position[:8], "big"))
        lo = int.from_bytes(position[8:], "big")
        start = int(np.searchsorted(self.hi, hi, side="left"))
        # Keys sharing the first 8 bytes (about n²/2^65 of them) are ordered by the last 8.
        while start < self.ids.size and self.hi[start] == hi and int(self.lo[start]) <= lo:
            start += 1
        return start


@dataclass(frozen=True, slots=True)
class Page:
    """The next ``limit`` ids of an order, and the position a cursor for the page after holds."""

    ids: list[int]
    next_position: bytes | None  # None on the last page


def build(
    key: bytes,
    company_id: int,
    slot: int,
    ids: np.ndarray,
    *,
    digest: bytes = b"",
    canaries: BitMap | None = None,
) -> Order:
    """Sort ``ids`` by this app's pseudonym of each (one AES call, one numpy sort)."""
    ids = np.asarray(ids, dtype=np.int64)
    raw = np.frombuffer(pseudonym.prp(key, company_id, slot, ids), dtype=">u8").reshape(-1, 2)
    hi, lo = raw[:, 0].astype(np.uint64), raw[:, 1].astype(np.uint64)
    order = np.lexsort((lo, hi))
    return Order(hi[order], lo[order], ids[order], digest, canaries if canaries is not None else BitMap())


class _Cache:
    """A small LRU of built orders, bounded by the number of ids held (thread-safe: routes run in a pool)."""

    def __init__(self, max_ids: int) -> None:
        self._max_ids = max_ids
        self._held = 0
        self._orders: OrderedDict[tuple[bytes, int, int, bytes], Order] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, entry: tuple[bytes, int, int, bytes]) -> Order | None:
        with self._lock:
            order = self._orders.get(entry)
            if order is not None:
                self._orders.move_to_end(entry)
            return order

    def put(self, entry: tuple[bytes, int, int, bytes], order: Order) -> None:
        if len(order) > self._max_ids:
            return
        with self._lock:
            if entry in self._orders:
                return
            self._orders[entry] = order
            self._held += len(order)
            while self._held > self._max_ids:
                _, dropped = self._orders.popitem(last=False)
                self._held -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._orders.clear()
            self._held = 0


_cache = _Cache(_CACHE_MAX_IDS)


def fingerprint(*parts: bytes) -> bytes:
    """A digest naming an exact id set (from its serialised bitmap or its id bytes)."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def cached(key: bytes, company_id: int, slot: int, digest: bytes) -> Order | None:
    """The order built before for the set named by ``digest``, if this process still holds it."""
    return _cache.get((key, company_id, slot, digest))


def order_of(
    key: bytes,
    company_id: int,
    slot: int,
    digest: bytes,
    ids: Callable[[], np.ndarray],
    canaries: BitMap | None = None,
) -> Order:
    """The app's order of the id set named by ``digest`` (``canaries`` among it), found in the cache or
    built from ``ids()`` (called only then)."""
    entry = (key, company_id, slot, digest)
    order = _cache.get(entry)
    if order is None:
        order = build(key, company_id, slot, ids(), digest=digest, canaries=canaries)
        _cache.put(entry, order)
    return order


def next_page(order: Order, after: bytes | None, limit: int) -> Page:
    """The ``limit`` ids after position ``after`` in ``order``, and the next position if more follow."""
    start = order.start_after(after)
    end = min(start + limit, len(order))
    more = end < len(order)
    return Page(order.ids[start:end].tolist(), order.position(end - 1) if more else None)


def clear_cache() -> None:
    """Forget every built order (tests that compare a cold build with a warm one)."""
    _cache.clear()
