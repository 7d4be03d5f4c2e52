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
        self._stores: dict[int, list[int]] = {}  # company id -> its store ids
        self._blobs: dict[int, tuple[bytes, bytes]] = {}  # store id -> (members, canaries) serialised
        self._members: dict[int, BitMap] = {}
        for store_id, company_id, members, canaries in rows:
            self._stores.setdefault(company_id, []).append(store_id)
            self._blobs[store_id] = (bytes(members), bytes(canaries))

    @property
    def company_ids(self) -> list[int]:
        """The companies read (those with at least one store row)."""
        return list(self._stores)

    def members(self, store_id: int) -> BitMap:
        """The people whose home store ``store_id`` is (empty for a store not read)."""
        bitmap = self._members.get(store_id)
        if bitmap is None:
            blob = self._blobs.get(store_id, (_EMPTY, _EMPTY))[0]
            bitmap = self._members[store_id] = BitMap() if blob == _EMPTY else BitMap.deserialize(blob)
        return bitmap

    def canaries(self) -> BitMap:
        """Every canary among the members of the stores read."""
        return BitMap.union(
            BitMap(), *(BitMap.deserialize(c) for _, c in self._blobs.values() if c != _EMPTY)
        )

    def store_counts(self, people: BitMap, *, companies: Iterable[int] | None = None) -> dict[int, int]:
        """``{store id: |members ∩ people|}`` for every store of ``companies`` (all read when None) that
        somebody calls home; one intersection cardinality per store."""
        counts: dict[int, int] = {}
        for company_id in self._stores if companies is None else companies:
            for store_id in self._stores.get(company_id, ()):
                if self._blobs[store_id][0] != _EMPTY:
                    counts[store_id] = self.members(store_id).intersection_cardinality(people)
        return counts

    def stores_reached(self, people: BitMap, *, companies: Iterable[int] | None = None) -> int:
        """How many stores (of ``companies``, all read when None) are home to at least one of ``people``."""
        return sum(1 for n in self.store_counts(people, companies=companies).values() if n)

    def everyone(self) -> BitMap:
        """Every member of the stores read."""
        return BitMap.union(BitMap(), *(self.members(s) for s in self._blobs))

    def companies_of(self, people: BitMap) -> set[int]:
        """The companies at least one of ``people`` belongs to (one intersection per store, instead of a
        primary-key lookup per person)."""
        return {
            company_id
            for company_id, stores in self._stores.items()
            if any(self.members(store_id).intersect(people) for store_id in stores)
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
