"""XLSX dumps read with bounded memory: the archive is judged before openpyxl opens it, and the shared
strings are streamed into a compact table under the dump limits.

An XLSX is a zip, and openpyxl (even read-only) loads the whole shared-string table, one Python ``str`` per
string, before yielding a row. A workbook of a few MB can declare gigabytes of XML (a zip bomb) or hold
millions of tiny strings that no cell uses. So, in order:

1. **The archive** (:func:`check_archive`, central directory only): the parts' declared sizes must add up
   to at most ``max_decompressed_bytes``, and no part over 1 MiB may expand more than
   ``max_compression_ratio`` to 1 (real workbooks stay under 20:1; deflate bombs reach 1000:1). Declared
   sizes are binding: ``zipfile`` stops inflating a part at its declared size and fails its CRC check.
2. **The shared strings** (:func:`read_shared_strings`, replacing openpyxl's loader): streamed, each
   string checked against ``max_cell_chars``, stored as blocks of joined text plus 8-byte offsets
   (:class:`SharedStrings`), and refused once there are more than the workbook's other parts could
   reference (a cell that uses one is at least ``<c t="s"><v>0</v></c>``, 21 bytes): a padded table is
   refused after reading about as many strings as the sheets hold cells, not all of them.
3. **The rows**: openpyxl streams them; ``formats.iter_rows`` counts rows, columns and cell lengths.
"""

from __future__ import annotations

import zipfile
from array import array
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import IO, Any

from appwarden.attribution.formats import DumpError, Progress, Source
from appwarden.attribution.limits import DumpLimits

RATIO_FLOOR = 1 << 20  # parts smaller than this may compress any amount: they cannot hurt
MIN_CELL_BYTES = 20  # bytes of sheet XML per cell that references a shared string (at least 21)
BLOCK = 4096  # strings joined per block of the compact table
_READ_ERRORS = (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError, EOFError, IndexError)


def check_archive(path: Path, limits: DumpLimits) -> int:
    """Refuse a workbook whose parts declare too many bytes or expand like a zip bomb (reads only the
    central directory). Returns how many shared strings its other parts could reference at most."""
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DumpError(f"{name}: not a readable XLSX workbook ({exc})", code="dump_unreadable") from None
    total = sum(p.file_size for p in parts)
    if total > limits.max_decompressed_bytes:
        raise DumpError(
            f"{name}: the XLSX workbook expands to {total:,} bytes, over the "
            f"{limits.max_decompressed_bytes:,}-byte limit",
            code="dump_too_large",
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > RATIO_FLOOR and ratio > limits.max_compression_ratio:
            raise DumpError(
                f"{name}: XLSX part {part.filename!r} expands {ratio:,.0f}:1, over the "
                f"{limits.max_compression_ratio}:1 limit (a zip bomb, not a spreadsheet)",
                code="dump_too_large",
            )
    others = sum(p.file_size for p in parts if not p.filename.lower().endswith("sharedstrings.xml"))
    return others // MIN_CELL_BYTES + BLOCK


class SharedStrings:
    """openpyxl's shared-string table in compact form: ``table[i]`` is string ``i``.

    Text is kept as one joined ``str`` per block of :data:`BLOCK` strings plus an ``array`` of end offsets,
    about a byte or two per character and 8 per string, where a list of ``str`` costs some 60 per string.
    """

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._ends = array("q")  # end of each string within its block
        self._pending: list[str] = []
        self._filled = 0  # characters in the pending block

    def append(self, text: str) -> None:
        self._filled += len(text)
        self._ends.append(self._filled)
        self._pending.append(text)
        if len(self._pending) == BLOCK:
            self.seal()

    def seal(self) -> None:
        """Join the pending strings into a block (called when a block is full and at the end)."""
        if self._pending:
            self._blocks.append("".join(self._pending))
            self._pending.clear()
            self._filled = 0

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < len(self._ends):
            raise IndexError(f"shared string {index} does not exist")  # no negative indexing: damaged
        block, offset = divmod(index, BLOCK)
        start = self._ends[index - 1] if offset else 0
        return self._blocks[block][start : self._ends[index]]


def read_shared_strings(src: IO[bytes], name: str, limits: DumpLimits, allowed: int) -> SharedStrings:
    """Stream ``sharedStrings.xml`` into a :class:`SharedStrings`, as openpyxl reads each string (its
    ``Text`` content, phonetic runs left out), refusing a string or a table past the limits."""
    from openpyxl.cell.text import Text
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse  # defusedxml's when installed, as openpyxl uses

    string_tag = f"{{{SHEET_MAIN_NS}}}si"
    table = SharedStrings()
    root = None
    for event, node in iterparse(src, events=("start", "end")):
        if root is None:
            root = node  # <sst>: cleared after each string, so no parsed string stays attached to it
        if event != "end" or node.tag != string_tag:
            continue
        text = Text.from_tree(node).content.replace("x005F_", "")
        if len(text) > limits.max_cell_chars:
            raise DumpError(
                f"{name}: shared string {len(table) + 1:,} is {len(text):,} characters long, over the "
                f"{limits.max_cell_chars:,}-character cell limit",
                code="dump_cell_too_long",
            )
        if len(table) >= allowed:
            raise DumpError(
                f"{name}: the XLSX shared-string table holds more than {allowed:,} strings, more than "
                "the workbook's sheets could use",
                code="dump_too_large",
            )
        table.append(text)
        root.clear()
    table.seal()
    return table


def _open_workbook(fh: IO[bytes], name: str, limits: DumpLimits, allowed: int) -> Any:
    """openpyxl's read-only workbook, with the bounded shared-string loader in place of its own."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.xml.constants import SHARED_STRINGS

    class BoundedReader(ExcelReader):
        def read_strings(self) -> None:
            part = self.package.find(SHARED_STRINGS)
            if part is not None:
                with self.archive.open(part.PartName[1:]) as src:
                    self.shared_strings = read_shared_strings(src, name, limits, allowed)

    # A file object, not the path: openpyxl would refuse a workbook whose name does not end in .xlsx.
    reader = BoundedReader(fh, read_only=True, data_only=True)
    reader.read()
    return reader.wb


def xlsx_rows(source: Source, on_progress: Progress | None, limits: DumpLimits) -> Iterator[list[Any]]:
    """The rows of the first sheet that has a non-empty row, as lists of cell values."""
    name = source.path.name
    allowed = check_archive(source.path, limits)
    with source.path.open("rb") as fh:
        try:
            wb = _open_workbook(fh, name, limits, allowed)
        except _READ_ERRORS as exc:
            text = " ".join(str(exc).split())[:160]
            raise DumpError(
                f"{name}: not a readable XLSX workbook ({text})", code="dump_unreadable"
            ) from None
        try:
            size = source.path.stat().st_size
            try:
                # The first sheet with a non-empty row: exports often put an empty or cover sheet first.
                for ws in wb.worksheets:
                    rows = ws.iter_rows(values_only=True)
                    lead = list(islice(rows, 100))
                    if not any(v is not None for row in lead for v in row):
                        continue
                    total_rows = ws.max_row or 0
                    for i, row in enumerate(chain(lead, rows), start=1):
                        if on_progress and total_rows and i % 1000 == 0:
                            on_progress(min(size, size * i // total_rows), size)
                        yield list(row)
                    break
            except _READ_ERRORS as exc:
                text = " ".join(str(exc).split())[:160]
                raise DumpError(
                    f"{name}: XLSX workbook is damaged ({text})", code="dump_unreadable"
                ) from None
            if on_progress:
                on_progress(size, size)
        finally:
            wb.close()
