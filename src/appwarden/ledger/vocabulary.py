"""The ledger package's vocabulary: the states and kinds other packages read and write by name.

Defined once here, outside ``models``, so that a package naming them never touches the tables.
"""

from __future__ import annotations

from enum import StrEnum


class EntryKind(StrEnum):
    """What a ledger entry records: a page of data delivered, pseudonyms turned back into values, a
    restricted token minted (it delivers nothing; it names the token and its purpose), or a delivery
    made with a restricted token (raw identifying fields, carrying the token and its purpose)."""

    DELIVERY = "delivery"
    DETOKENIZE = "detokenize"
    RESTRICTED_MINT = "restricted_mint"
    RESTRICTED = "restricted"
