"""How big a dump may be, in what it expands to: rows, columns, cell length, decompressed bytes.

A leaked dump comes from whoever leaked it, so its size on disk says little: an XLSX is a zip that can
expand a thousandfold, a CSV line can hold a million cells. The reader refuses a dump past any of these
limits with a one-line :class:`~appwarden.attribution.formats.DumpError` (``dump_too_large``,
``dump_too_many_rows``, ``dump_too_many_columns``, ``dump_cell_too_long``, ``dump_row_too_long``), as
soon as it sees the excess, holding no more than the limits allow. The limits are settings
(``APPWARDEN_DUMP_MAX_*``); the defaults fit any dump a real platform could leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

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
        quoted with its quotes doubled, plus delimiters (bounds what one line read holds in memory)."""
        return self.max_columns * (2 * self.max_cell_chars + 3) + 2


def within(
    rows: Iterator[list[Any] | dict[str, Any]], source: Source, limits: DumpLimits
) -> Iterator[list[Any] | dict[str, Any]]:
    """``rows``, refused at the first record past the row, column or cell limit."""
    name, text_cells = source.path.name, source.format in ("csv", "tsv")
    for n, row in enumerate(rows, start=1):
        if n > limits.max_rows:
            raise DumpError(f"{name}: more than {limits.max_rows:,} rows", code="dump_too_many_rows")
        if isinstance(row, dict):
            values = list(_leaves(row))
        elif text_cells:
            values = row
        else:
            values = [v for v in row if type(v) is str]
            while row and row[-1] is None:  # openpyxl pads rows to the sheet's width: count what is there
                row = row[:-1]
        width = len(values) if isinstance(row, dict) else len(row)
        if width > limits.max_columns:
            raise DumpError(
                f"{name}: row {n:,} has {width:,} columns, over the {limits.max_columns:,}-column limit",
                code="dump_too_many_columns",
            )
        if values and (longest := max(map(len, values))) > limits.max_cell_chars:
            raise DumpError(
                f"{name}: row {n:,} has a cell of {longest:,} characters, over the "
                f"{limits.max_cell_chars:,}-character limit",
                code="dump_cell_too_long",
            )
        yield row


def _leaves(obj: dict[str, Any]) -> Iterator[str]:
    """A JSON record's leaf values as the cells they become (nested objects are flattened)."""
    for value in obj.values():
        if isinstance(value, dict):
            yield from _leaves(value)
        elif isinstance(value, str):
            yield value
        else:
            yield cell(value) or ""


def lines(text: IO[str], limit: int, name: str) -> Iterator[str]:
    """The physical lines of ``text``, refused at the first longer than ``limit`` characters (read with
    ``readline(limit)``, so a file with no line breaks is never held whole)."""
    for line in iter(lambda: text.readline(limit + 1), ""):
        if len(line) > limit:
            raise DumpError(
                f"{name}: a line longer than {limit:,} characters (more than the column and cell limits "
                "allow)",
                code="dump_row_too_long",
            )
        yield line
