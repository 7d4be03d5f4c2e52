"""How big a dump may be, in what it expands to: rows, columns, cell length, decompressed bytes.

A leaked dump comes from whoever leaked it, so its size on disk says little: an XLSX is a zip that can
expand a thousandfold, a CSV line can hold a million cells. The reader refuses a dump past any of these
limits with a one-line :class:`~appwarden.attribution.formats.DumpError` (``dump_too_large``,
``dump_too_many_rows``, ``dump_too_many_columns``, ``dump_cell_too_long``, ``dump_row_too_long`` for a
JSON Lines line) as soon as it sees the excess, holding no more than the limits allow. The limits are
settings (``APPWARDEN_DUMP_MAX_*``); the defaults fit any dump a real platform could leak. XLSX archives
are judged in ``attribution.xlsx``; rows, columns and cells of every format by :func:`within`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from appwarden.attribution.formats import DumpError, Source, cell
from appwarden.config import Settings


def _default(name: str) -> Any:
    # One source for every default: the settings' own (a reader called without settings gets the same).
    return Settings.model_fields[name].default


@dataclass(frozen=True, slots=True)
class DumpLimits:
    """The limits one read of a dump is held to (see the module docstring)."""

    max_rows: int = _default("dump_max_rows")
    max_columns: int = _default("dump_max_columns")
    max_cell_chars: int = _default("dump_max_cell_chars")
    max_decompressed_bytes: int = _default("dump_max_decompressed_bytes")
    max_compression_ratio: int = _default("dump_max_compression_ratio")

    @classmethod
    def from_settings(cls, settings: Settings) -> DumpLimits:
        return cls(
            max_rows=settings.dump_max_rows,
            max_columns=settings.dump_max_columns,
            max_cell_chars=settings.dump_max_cell_chars,
            max_decompressed_bytes=settings.dump_max_decompressed_bytes,
            max_compression_ratio=settings.dump_max_compression_ratio,
        )

    @property
    def max_line_chars(self) -> int:
        """Longest physical line of a CSV/TSV/JSON Lines dump: every column at its longest, each cell
        quoted with its quotes doubled, plus delimiters (bounds what one line read holds in memory; a
        CSV line longer than this necessarily breaks the column or the cell limit)."""
        return self.max_columns * (2 * self.max_cell_chars + 3) + 2


def within(
    rows: Iterator[list[Any] | dict[str, Any]], source: Source, limits: DumpLimits
) -> Iterator[list[Any] | dict[str, Any]]:
    """``rows`` as they are, refused at the first past the row, column or cell limit."""
    name, text = source.path.name, source.format in ("csv", "tsv")
    max_rows, max_columns, max_cell = limits.max_rows, limits.max_columns, limits.max_cell_chars
    for n, row in enumerate(rows, start=1):
        if text:
            # The hot path (every CSV row, all cells text): no cell is longer than the row's text, and
            # joining is several times cheaper than max(map(len, row)); the full check when this fails.
            if n <= max_rows and len(row) <= max_columns and len("".join(row)) <= max_cell:
                yield row
                continue
            cells: list[Any] = row  # type: ignore[assignment]
        elif isinstance(row, dict):
            cells = list(_leaves(row))
        else:
            cells = list(row)
            while cells and cells[-1] is None:  # openpyxl pads rows to the sheet's width: count what is there
                cells.pop()
        _check(name, n, cells, limits)
        yield row


def _check(name: str, n: int, cells: list[Any], limits: DumpLimits) -> None:
    if n > limits.max_rows:
        raise DumpError(f"{name}: more than {limits.max_rows:,} rows", code="dump_too_many_rows")
    if len(cells) > limits.max_columns:
        raise DumpError(
            f"{name}: row {n:,} has {len(cells):,} columns, over the {limits.max_columns:,}-column limit",
            code="dump_too_many_columns",
        )
    longest = max((len(v) for v in cells if type(v) is str), default=0)
    if longest > limits.max_cell_chars:
        raise DumpError(
            f"{name}: row {n:,} has a cell of {longest:,} characters, over the "
            f"{limits.max_cell_chars:,}-character limit",
            code="dump_cell_too_long",
        )


def _leaves(obj: dict[str, Any]) -> Iterator[str]:
    """A JSON record's leaf values as the cells they become (nested objects are flattened)."""
    for value in obj.values():
        if isinstance(value, dict):
            yield from _leaves(value)
        elif isinstance(value, str):
            yield value
        else:
            yield cell(value) or ""
