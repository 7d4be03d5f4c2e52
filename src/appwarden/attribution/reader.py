"""Read a leaked dump: detect its format, encoding and columns, then stream its rows in column batches.

    dump = read_dump(path, on_progress=bar)      # detection only: a bounded sample is read
    dump.column_map()                             # {"氏名": "name", "TEL": "phone"}
    for batch in dump:                            # streams; memory bounded by one batch
        names = batch.column("name")              # list[str | None], one per row of the batch

Every unreadable file raises :class:`~appwarden.attribution.formats.DumpError` (an ``InvalidInput``,
HTTP 422) with a one-line message naming the problem and a ``code``: ``dump_not_found``,
``dump_empty``, ``dump_binary``, ``dump_undecodable``, ``dump_unsupported``, ``dump_unreadable``,
``dump_invalid_json``, ``dump_truncated``, ``dump_no_records``, ``dump_malformed``, ``dump_no_fields``;
past a limit of ``attribution.limits`` (a setting each): ``dump_too_large`` (an XLSX that expands past
``dump_max_decompressed_bytes`` or like a zip bomb), ``dump_too_many_rows``, ``dump_too_many_columns``,
``dump_cell_too_long``, ``dump_row_too_long`` (a JSON Lines line longer than those limits allow).
Errors found past the sample (a truncated tail, a bad byte deep in the file) are raised by the iterator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from appwarden.attribution.columns import Column, looks_like_header, map_columns
from appwarden.attribution.formats import DumpError, Progress, cell, iter_rows, sniff
from appwarden.attribution.limits import DumpLimits

SAMPLE_ROWS = 500
BATCH_ROWS = 50_000
_JOIN = {"name": " ", "name_kana": " ", "address": ""}  # how split parts are put back together


@dataclass
class Batch:
    """Up to ``BATCH_ROWS`` consecutive records, column-wise.

    ``values[field]`` is a list of columns for that field (usually one; two phone columns give two;
    split 姓/名 columns arrive already joined as one ``"姓 名"`` column), each holding one stripped
    value or ``None`` per row. ``start`` is the 0-based index of the batch's first record in the dump.
    """

    start: int
    size: int
    values: dict[str, list[list[str | None]]]

    def __len__(self) -> int:
        return self.size

    def column(self, name: str) -> list[str | None] | None:
        """The first column of field ``name``, or ``None`` when the dump has no such field."""
        cols = self.values.get(name)
        return cols[0] if cols else None


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _last_key(header: str) -> str:
    # A nested JSON key ("name.kana") is recognised by its last part unless the whole is known.
    return header.rsplit(".", 1)[-1]


@dataclass
class Dump:
    """A detected dump. Iterating it (or :meth:`batches`) re-reads the file from the start each time."""

    path: Path
    format: str
    encoding: str | None
    has_header: bool
    columns: list[Column]
    size_bytes: int
    on_progress: Progress | None = None
    limits: DumpLimits = field(default_factory=DumpLimits)
    rows_read: int = 0  # records seen by the last complete iteration
    _keys: list[str] | None = field(default=None, repr=False)  # JSON: the object keys, in column order
    _source: Any = field(default=None, repr=False)

    @property
    def fields(self) -> list[str]:
        """The fields found, in column order, without repeats."""
        return list(dict.fromkeys(c.field for c in self.columns if c.field))

    def column_map(self) -> dict[str, str]:
        """``{header as written: field}`` of the mapped columns (the verdict JSON's ``columns``)."""
        return {c.header: c.field for c in self.columns if c.field}

    @property
    def ignored(self) -> list[str]:
        """Headers of the columns kept out of matching."""
        return [c.header for c in self.columns if not c.field]

    def __iter__(self) -> Iterator[Batch]:
        return self.batches()

    def batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[Batch]:
        """Stream the records as :class:`Batch` es of ``batch_rows``; never holds more than one batch."""
        records = self._records()
        if self.has_header and self._keys is None:
            next(records, None)
        groups = self._groups()
        start = 0
        while True:
            chunk = list(islice(records, batch_rows))
            if not chunk:
                break
            values = {
                name: [self._assemble(name, cols, chunk) for cols in parts] for name, parts in groups.items()
            }
            yield Batch(start, len(chunk), values)
            start += len(chunk)
        self.rows_read = start

    def _records(self) -> Iterator[list[str | None]]:
        """Non-empty records as lists of cells, aligned to :attr:`columns`."""
        width = len(self.columns)
        for raw in iter_rows(self._source, self.on_progress, self.limits):
            if isinstance(raw, dict):
                flat = _flatten(raw)
                row = [cell(flat.get(k)) for k in self._keys or ()]
            else:
                # CSV cells are already text: strip inline (the per-cell call dominated reading).
                row = [(v.strip() or None) if type(v) is str else cell(v) for v in raw[:width]]
                row += [None] * (width - len(row))
            if any(v is not None for v in row):
                yield row

    def _groups(self) -> dict[str, list[list[Column]]]:
        """Per field, its source columns: each whole column alone, split parts together in part order."""
        groups: dict[str, list[list[Column]]] = {}
        parts: dict[str, list[Column]] = {}
        for col in self.columns:
            if col.field is None:
                continue
            if col.part:
                parts.setdefault(col.field, []).append(col)
            else:
                groups.setdefault(col.field, []).append([col])
        for name, cols in parts.items():
            groups.setdefault(name, []).append(sorted(cols, key=lambda c: c.part))
        return groups

    @staticmethod
    def _assemble(name: str, cols: list[Column], chunk: list[list[str | None]]) -> list[str | None]:
        if len(cols) == 1:
            i = cols[0].index
            return [row[i] for row in chunk]
        sep = _JOIN.get(name, " ")
        out: list[str | None] = []
        for row in chunk:
            pieces = [row[c.index] for c in cols if row[c.index]]
            out.append(sep.join(p for p in pieces if p) or None)
        return out


def read_dump(
    path: str | Path, *, on_progress: Progress | None = None, limits: DumpLimits | None = None
) -> Dump:
    """Detect the dump at ``path``: format, encoding, header row and column → field mapping.

    Reads only a bounded sample; the records are streamed later by iterating the result.
    ``on_progress(bytes_read, total_bytes)`` is called while iterating (a Rich progress bar fits it).
    ``limits`` (the settings' defaults when omitted) bound what the dump may expand to, both here and
    while iterating (``attribution.limits``).
    """
    path = Path(path)
    limits = limits or DumpLimits()
    source = sniff(path)
    head = list(islice(iter_rows(source, limits=limits), SAMPLE_ROWS + 1))
    keys: list[str] | None = None
    if source.format in ("json", "jsonl"):
        flats = [_flatten(r) for r in head if isinstance(r, dict)]
        keys = list(dict.fromkeys(k for r in flats for k in r))
        rows = [[cell(r.get(k)) for k in keys] for r in flats]
        headers: list[str | None] | None = list(keys)
        has_header = True
    else:
        rows = [[cell(v) for v in r] for r in head if isinstance(r, list)]
        rows = [r for r in rows if any(v is not None for v in r)]
        if not rows:
            raise DumpError(f"{path.name}: no records", code="dump_empty")
        first, rest = rows[0], rows[1:]
        kinds = [c.field for c in map_columns(None, rest)] if rest else []
        has_header = looks_like_header(first, kinds)
        headers = first if has_header else None
        rows = rest if has_header else rows
    if not rows:
        raise DumpError(f"{path.name}: has a header but no records", code="dump_empty")
    columns = map_columns(headers, rows[:SAMPLE_ROWS])
    if keys is not None:
        columns = _recognise_nested(columns, rows)
    if not any(c.field for c in columns):
        seen = ", ".join(c.header for c in columns[:8])
        raise DumpError(
            f"{path.name}: no column looks like a name, kana, phone, email, address or birthday ({seen})",
            code="dump_no_fields",
        )
    return Dump(
        path=path,
        format=source.format,
        encoding=source.encoding,
        has_header=has_header,
        columns=columns,
        size_bytes=path.stat().st_size,
        on_progress=on_progress,
        limits=limits,
        _keys=keys,
        _source=source,
    )


def _recognise_nested(columns: list[Column], rows: list[list[str | None]]) -> list[Column]:
    """Second chance for nested JSON keys (``name.kana``): recognise the last key part."""
    out = []
    for col in columns:
        if col.field is None and "." in col.header:
            again = map_columns([_last_key(col.header)], [[r[col.index]] for r in rows])[0]
            if again.field:
                col = Column(col.index, col.header, again.field, again.part, again.by)
        out.append(col)
    return out
