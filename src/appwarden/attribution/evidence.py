"""Evidence holders for matching: who holds a row's values, loaded no further than a decision needs.

Strong values (phones, emails) are held by a few people each, so their holders are loaded outright
(:class:`StrongHolders`). Weak values (names, kana, birthdays) are held by hundreds: :class:`WeakEvidence`
keeps, per digest, only whether one or several customers hold it (and who, when one), and loads holder
lists or a candidate's own digests just for the rows whose decision reads them; :class:`WeakHit` is one
row's weak field on top of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import TypeVar

from sqlalchemy.orm import Session

from appwarden.blind_index.service import digests_of, holder_counts, lookup
from appwarden.blind_index.vocabulary import FIELD_CODES

MATCHED_FIELDS: tuple[str, ...] = tuple(FIELD_CODES)  # name, name_kana, phone, email, birthday
K = TypeVar("K")
V = TypeVar("V")


class WeakHit:
    """A row's weak field (name, kana, birthday) that some customers hold, without loading them all.

    ``len`` is how many hold it (from :func:`~appwarden.blind_index.service.holder_counts`);
    membership and iteration use the holder lists or per-candidate digests the matcher fetched for the
    rows that need them: a common name's 400 holders are only ever read when nothing stronger decides.
    """

    __slots__ = ("_batch", "digests", "field", "size")

    def __init__(self, field: str, digests: list[bytes], size: int, batch: WeakEvidence) -> None:
        self.field, self.digests, self.size, self._batch = field, digests, size, batch

    def __len__(self) -> int:
        return self.size

    def __contains__(self, customer: object) -> bool:
        return any(self._batch.holds(self.field, d, customer) for d in self.digests)

    def __iter__(self) -> Iterator[int]:
        for d in self.digests:
            yield from self._batch.holders(self.field, d)


Holders = frozenset[int] | set[int] | WeakHit


class WeakEvidence:
    """Weak-field evidence, shared across batches: holder counts per digest (capped at two, learnt once
    per digest), holder lists where a row needs them as candidates, and candidates' own digests."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.counts: dict[str, dict[bytes, tuple[int, int]]] = {f: {} for f in MATCHED_FIELDS}
        self.lists: dict[str, dict[bytes, frozenset[int]]] = {f: {} for f in MATCHED_FIELDS}
        self.own: dict[str, dict[int, AbstractSet[bytes]]] = {f: {} for f in MATCHED_FIELDS}

    def count(self, field: str, digests: Iterable[bytes]) -> None:
        """Learn the holder counts of digests not seen before (absent ones count 0)."""
        _learn(self.counts[field], digests, lambda new: holder_counts(self.session, field, new), (0, 0))

    def fetch_lists(self, field: str, digests: Iterable[bytes]) -> None:
        """Load the holders of digests whose lists are not loaded yet."""

        def fetch(new: set[bytes]) -> dict[bytes, frozenset[int]]:
            return {d: frozenset(ids) for d, ids in lookup(self.session, field, new).items()}

        _learn(self.lists[field], digests, fetch, frozenset())

    def fetch_own(self, field: str, customers: Iterable[int]) -> None:
        """Load the ``field`` digests of customers not loaded yet."""
        _learn(self.own[field], customers, lambda new: digests_of(self.session, field, new), frozenset())

    def resolved(self, hit: WeakHit) -> bool:
        """Whether membership in ``hit`` can be answered without the candidates' own digests."""
        counts, lists = self.counts[hit.field], self.lists[hit.field]
        return all(counts[d][0] <= 1 or d in lists for d in hit.digests)

    def holds(self, field: str, digest: bytes, customer: object) -> bool:
        count, first = self.counts[field][digest]
        if count <= 1:
            return count == 1 and customer == first
        listed = self.lists[field].get(digest)
        if listed is not None:
            return customer in listed
        own = self.own[field].get(customer)  # type: ignore[call-overload]
        if own is None:
            raise LookupError(f"{field} digests of candidate {customer} were not fetched")
        return digest in own

    def holders(self, field: str, digest: bytes) -> frozenset[int]:
        count, first = self.counts[field][digest]
        if count <= 1:
            return frozenset({first}) if count else frozenset()
        return self.lists[field][digest]


def _learn(table: dict[K, V], keys: Iterable[K], fetch: Callable[[set[K]], Mapping[K, V]], absent: V) -> None:
    """Fill ``table`` for the keys it lacks: one fetch for all of them, ``absent`` for those not found."""
    new = {k for k in keys if k not in table}
    if new:
        found = fetch(new)
        for k in new:
            table[k] = found.get(k, absent)


class StrongHolders:
    """Per strong field, digest → frozenset of holders (phones and emails: a few people each)."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[bytes, frozenset[int]]] = {f: {} for f in MATCHED_FIELDS}

    def add(self, name: str, hits: dict[bytes, list[int]]) -> None:
        table = self.sets[name]
        for digest, ids in hits.items():
            table[digest] = frozenset(ids)
