"""Sets of customer internal ids as roaring bitmaps: the one conversion every package uses."""

from __future__ import annotations

import array
from collections.abc import Iterable
from typing import Any

import numpy as np
from pyroaring import BitMap


def to_bitmap(ids: BitMap | Iterable[int] | np.ndarray[Any, Any]) -> BitMap:
    """A BitMap of customer internal ids from a BitMap, a numpy array or any iterable of ints."""
    if isinstance(ids, BitMap):
        return ids
    if isinstance(ids, np.ndarray):
        # pyroaring's fast path is a buffer of uint32; going through array.array is ~4x faster than
        # iterating the numpy array element by element.
        return BitMap(array.array("I", np.ascontiguousarray(ids, dtype=np.uint32).tobytes()))
    return BitMap(ids)
