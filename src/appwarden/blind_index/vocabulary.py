"""The blind index's vocabulary: which customer fields it indexes, and the code each is stored under.

Defined once here, outside ``models``, so that a package naming them never touches the tables.
"""

from __future__ import annotations

# Field codes stored in ``blind_index.field`` (small ints keep the 5-rows-per-customer table compact).
# Never renumber: stored rows would change meaning.
FIELD_CODES: dict[str, int] = {"name": 1, "name_kana": 2, "phone": 3, "email": 4, "birthday": 5}
INDEXED_FIELDS: tuple[str, ...] = tuple(FIELD_CODES)
