"""Membership questions the platform answers: who belongs to which store and company.

Read from the store membership bitmaps (``store_members``, one roaring bitmap of members and one of
canaries per store, kept in step by :mod:`appwarden.platform.store_members`), so no customer row is read.
Other packages (the blast radius, attribution) ask here rather than reading the platform's tables:

    members = store_membership(session, company_ids)   # one read, bitmaps deserialised when first used
    members.store_counts(exposed, companies=[cid])     # {store id: |members ∩ exposed|}
    members.companies_of(matched)                      # companies some of these people belong to
    members.canaries()                                 # the canaries among the companies' members

"store members ∩ these people" is computed here and only here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pyroaring import BitMap
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.rows import blob_rows
from appwarden.platform.models import StoreMembers

_EMPTY = bytes(BitMap().serialize())


class StoreMembership:
    """The membership bitmaps of some companies' stores, read once. Each bitmap is deserialised the first
    time a question needs it (stores nobody calls home never are)."""

    def __init__(self, rows: Iterable[tuple[int, int, bytes, bytes]]) -> None:
        # company id -> [(store id, members serialised, or None when nobody calls the store home)]
        self._stores: dict[int, list[tuple[int, bytes | None]]] = {}
        self._canaries: list[bytes] = []  # the non-empty canary bitmaps, serialised
        self._members: dict[int, BitMap] = {}  # store id -> members, deserialised on first use
        stores, canaries = self._stores, self._canaries
        for store_id, company_id, members, canary_blob in rows:
            blob = bytes(members)
            entry = (store_id, None if blob == _EMPTY else blob)
            if company_id in stores:
                stores[company_id].append(entry)
            else:
                stores[company_id] = [entry]
            if canary_blob != _EMPTY:
                canaries.append(bytes(canary_blob))

    @property
    def company_ids(self) -> list[int]:
        """The companies read (those with at least one store row)."""
        return list(self._stores)

    def _bitmap(self, store_id: int, blob: bytes) -> BitMap:
        bitmap = self._members.get(store_id)
        if bitmap is None:
            bitmap = self._members[store_id] = BitMap.deserialize(blob)
        return bitmap

    def canaries(self) -> BitMap:
        """Every canary among the members of the stores read."""
        return BitMap.union(BitMap(), *(BitMap.deserialize(c) for c in self._canaries))

    def store_counts(self, people: BitMap, *, companies: Iterable[int] | None = None) -> dict[int, int]:
        """``{store id: |members ∩ people|}`` for every store of ``companies`` (all read when None) that
        somebody calls home; one intersection cardinality per store."""
        counts: dict[int, int] = {}
        for company_id in self._stores if companies is None else companies:
            for store_id, blob in self._stores.get(company_id, ()):
                if blob is not None:
                    counts[store_id] = self._bitmap(store_id, blob).intersection_cardinality(people)
        return counts

    def stores_reached(self, people: BitMap, *, companies: Iterable[int] | None = None) -> int:
        """How many stores (of ``companies``, all read when None) are home to at least one of ``people``."""
        return sum(1 for n in self.store_counts(people, companies=companies).values() if n)

    def everyone(self) -> BitMap:
        """Every member of the stores read."""
        return BitMap.union(
            BitMap(),
            *(self._bitmap(s, b) for stores in self._stores.values() for s, b in stores if b is not None),
        )

    def companies_of(self, people: BitMap) -> set[int]:
        """The companies at least one of ``people`` belongs to (one intersection per store, instead of a
        primary-key lookup per person)."""
        return {
            company_id
            for company_id, stores in self._stores.items()
            if any(b is not None and self._bitmap(s, b).intersect(people) for s, b in stores)
        }


def store_membership(session: Session, company_ids: Collection[int] | None = None) -> StoreMembership:
    """The membership bitmaps of every store of ``company_ids`` (of every company when None)."""
    query = select(StoreMembers.store_id, StoreMembers.company_id, StoreMembers.bitmap, StoreMembers.canaries)
    if company_ids is not None:
        if not company_ids:
            return StoreMembership(())
        query = query.where(StoreMembers.company_id.in_(sorted(company_ids)))
    return StoreMembership(blob_rows(session.connection(), query))


def store_counts(session: Session, people: BitMap, company_ids: Collection[int]) -> dict[int, int]:
    """``{store id: |members ∩ people|}`` over the stores of ``company_ids`` (one read; see
    :meth:`StoreMembership.store_counts`)."""
    return store_membership(session, company_ids).store_counts(people)


def companies_of(session: Session, people: BitMap) -> set[int]:
    """The companies at least one of ``people`` belongs to."""
    return store_membership(session).companies_of(people)


def members_of_stores(session: Session, store_ids: Collection[int]) -> BitMap:
    """Everyone whose home store is one of ``store_ids``."""
    if not store_ids:
        return BitMap()
    query = select(StoreMembers.bitmap).where(StoreMembers.store_id.in_(sorted(store_ids)))
    rows = blob_rows(session.connection(), query)
    return BitMap.union(BitMap(), *(BitMap.deserialize(bytes(blob)) for (blob,) in rows))


def members_of_companies(session: Session, company_ids: Collection[int]) -> BitMap:
    """Every member of ``company_ids`` (the union of their stores' members)."""
    return store_membership(session, company_ids).everyone()


def store_sizes(session: Session, company_id: int) -> dict[int, int]:
    """``{store id: members}`` of the company's stores that have a membership row."""
    query = select(StoreMembers.store_id, StoreMembers.cardinality).where(
        StoreMembers.company_id == company_id
    )
    return {int(store): int(n) for store, n in session.execute(query)}
