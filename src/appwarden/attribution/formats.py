"""Format and encoding detection for leaked dumps, and streaming of their raw rows.

Detection reads a bounded sample (the head plus a few chunks spread through the file), never the file.
Encodings are decided by strict decoding of every sample chunk: a BOM wins; otherwise UTF-8 if it decodes
(text in a legacy encoding practically never does), else CP932 (Shift_JIS) or EUC-JP, whichever decodes,
and if both do, whichever reads as more plausible Japanese (EUC-JP read as CP932 turns into half-width
katakana; CP932 read as EUC-JP into rare level-2 kanji).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import ijson

from appwarden.errors import InvalidInput

if TYPE_CHECKING:
    from appwarden.attribution.limits import DumpLimits

HEAD_BYTES = 256 * 1024
EXTRA_CHUNKS = 4
CHUNK_BYTES = 64 * 1024
LEGACY = ("cp932", "euc_jp")
Progress = Callable[[int, int], None]


class DumpError(InvalidInput):
    """A dump that cannot be read; ``code`` names the problem (``dump_empty``, ``dump_binary``, …)."""

    code = "dump_unreadable"
    title = "Unreadable dump"


@dataclass(frozen=True)
class Source:
    """What a dump file is: ``format`` is csv, tsv, json, jsonl or xlsx; ``encoding`` a Python codec."""

    path: Path
    format: str
    encoding: str | None
    delimiter: str | None = None
    json_prefix: str | None = None  # ijson prefix of the record objects ("item", "data.item")


def _chunks(path: Path, size: int) -> tuple[bytes, list[bytes]]:
    """The head, and chunks at evenly spaced offsets each aligned just after a newline byte.

    No multi-byte character of UTF-8, CP932 or EUC-JP contains 0x0A, so each aligned chunk starts on a
    character boundary in every candidate encoding.
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
        extra: list[bytes] = []
        if size > HEAD_BYTES:
            # Evenly spaced, the last one the file's tail (appended rows are where odd bytes often are).
            for i in range(1, EXTRA_CHUNKS + 1):
                fh.seek(max(HEAD_BYTES, size * i // EXTRA_CHUNKS - CHUNK_BYTES))
                chunk = fh.read(CHUNK_BYTES)
                cut = chunk.find(b"\n")
                if cut >= 0:
                    extra.append(chunk[cut + 1 :])
    return head, extra


def _decodes(encoding: str, chunks: list[bytes]) -> str | None:
    """The decoded head if every chunk decodes strictly (a trailing partial character is allowed)."""
    texts = []
    for chunk in chunks:
        try:
            texts.append(codecs.getincrementaldecoder(encoding)("strict").decode(chunk, final=False))
        except UnicodeDecodeError:
            return None
    return texts[0]


def _japanese_score(text: str) -> int:
    """How much ``text`` reads like Japanese: kana and common (JIS level 1) kanji up, half-width kana down."""
    score = 0
    for ch in text:
        o = ord(ch)
        if o < 0x80:
            continue
        if 0x3041 <= o <= 0x30FF:
            score += 2
        elif 0xFF61 <= o <= 0xFF9F:
            score -= 3
        elif 0x4E00 <= o <= 0x9FFF:
            try:
                code = int.from_bytes(ch.encode("cp932"), "big")
            except UnicodeEncodeError:
                score -= 2
                continue
            score += 1 if 0x889F <= code <= 0x9872 else -1
    return score


def detect_encoding(path: Path, size: int) -> tuple[str, str]:
    """``(codec, decoded head)`` of a text dump; :class:`DumpError` when nothing decodes it."""
    head, extra = _chunks(path, size)
    if head.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc = "utf-16"
    else:
        enc = ""
    if enc:
        text = _decodes(enc, [head])
        if text is None:
            raise DumpError(
                f"{path.name}: has a {enc} byte order mark but is not {enc} text", code="dump_undecodable"
            )
        return enc, text
    sample = head[:65536]
    if b"\0" in sample or sum(b < 9 or 13 < b < 32 for b in sample) > len(sample) // 100:
        raise DumpError(
            f"{path.name}: is a binary file, not a CSV, TSV, JSON, JSON Lines or XLSX dump",
            code="dump_binary",
        )
    chunks = [head, *extra]
    text = _decodes("utf-8", chunks)
    if text is not None:
        return "utf-8", text
    viable = [(enc, t) for enc in LEGACY if (t := _decodes(enc, chunks)) is not None]
    if not viable:
        raise DumpError(
            f"{path.name}: text in none of UTF-8, UTF-16, Shift_JIS (CP932) or EUC-JP",
            code="dump_undecodable",
        )
    return max(viable, key=lambda item: _japanese_score(item[1]))


def sniff(path: Path) -> Source:
    """Detect the format and encoding of the dump at ``path`` from a bounded sample."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DumpError(f"{path}: cannot be opened ({exc.strerror})", code="dump_not_found") from None
    if path.is_dir():
        raise DumpError(f"{path}: is a directory, not a dump file", code="dump_not_found")
    with path.open("rb") as fh:
        magic = fh.read(8)
    if size == 0:
        raise DumpError(f"{path.name}: is empty", code="dump_empty")
    if magic.startswith(b"PK\x03\x04"):
        return Source(path, "xlsx", None)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise DumpError(
            f"{path.name}: is a legacy .xls workbook; save it as .xlsx or CSV", code="dump_unsupported"
        )
    encoding, text = detect_encoding(path, size)
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise DumpError(f"{path.name}: holds only whitespace", code="dump_empty")
    if body[0] == "[":
        return Source(path, "json", encoding, json_prefix="item")
    if body[0] == "{":
        return _sniff_json_object(path, encoding, body)
    delimiter = _delimiter(path, body)
    return Source(path, "tsv" if delimiter == "\t" else "csv", encoding, delimiter)


def _sniff_json_object(path: Path, encoding: str, body: str) -> Source:
    first, _, rest = body.partition("\n")
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and (rest.strip() or not any(isinstance(v, list) for v in obj.values())):
        return Source(path, "jsonl", encoding)
    # One JSON object: the records are the first array found directly under it ({"data": [...]}).
    try:
        with _binary_utf8(path, encoding) as fh:
            for prefix, event, _ in ijson.parse(fh):
                if event == "start_array" and prefix and "." not in prefix:
                    return Source(path, "json", encoding, json_prefix=f"{prefix}.item")
    except ijson.JSONError as exc:
        raise _json_error(path, exc) from None
    raise DumpError(f"{path.name}: a JSON object with no array of records in it", code="dump_no_records")


def _delimiter(path: Path, body: str) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    lines = [line for line in body.splitlines()[:20] if line.strip()]
    best, best_count = ",", 0
    for delim in (",", "\t", ";", "|"):
        counts = [line.count(delim) for line in lines]
        # A delimiter splits every line (a few quoted cells may hold it too), the header most reliably.
        if counts and counts[0] > 0 and min(counts) > 0 and counts[0] > best_count:
            best, best_count = delim, counts[0]
    return best


class _Counting(io.RawIOBase):
    """A binary file that reports bytes read, for the progress bar."""

    def __init__(self, fh: IO[bytes], total: int, on_progress: Progress | None) -> None:
        self._fh, self._total, self._cb, self.done = fh, total, on_progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)  # type: ignore[attr-defined]
        self.done += n or 0
        if self._cb:
            self._cb(self.done, self._total)
        return n or 0

    def close(self) -> None:
        self._fh.close()
        super().close()


def _open_binary(path: Path, on_progress: Progress | None) -> io.BufferedReader:
    return io.BufferedReader(_Counting(path.open("rb"), os.path.getsize(path), on_progress), 1 << 20)


def _binary_utf8(path: Path, encoding: str, on_progress: Progress | None = None) -> IO[bytes]:
    """The file as UTF-8 bytes (for ijson), recoded on the fly when it is in another encoding."""
    raw = _open_binary(path, on_progress)
    if encoding == "utf-8":
        return raw
    if encoding == "utf-8-sig":
        raw.read(3)
        return raw
    return io.BufferedReader(_Recoder(raw, encoding), 1 << 20)


class _Recoder(io.RawIOBase):
    """Bytes in ``encoding`` read back as UTF-8 (ijson parses UTF-8 only)."""

    def __init__(self, fh: IO[bytes], encoding: str) -> None:
        self._fh = fh
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._eof:
            chunk = self._fh.read(1 << 16)
            self._eof = not chunk
            self._pending = self._decoder.decode(chunk, final=self._eof).encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _json_error(path: Path, exc: Exception) -> DumpError:
    text = " ".join(str(exc).split())[:160]  # one line: yajl's messages span several
    if "ncomplete" in text or "premature" in text.lower():
        return DumpError(f"{path.name}: JSON is truncated ({text})", code="dump_truncated")
    return DumpError(f"{path.name}: invalid JSON ({text})", code="dump_invalid_json")


def _undecodable(source: Source, line: int) -> DumpError:
    return DumpError(
        f"{source.path.name}: bytes near line {line} are not valid {source.encoding} text",
        code="dump_undecodable",
    )


def cell(value: Any) -> str | None:
    """A cell as stripped text (``None`` when empty); spreadsheet numbers and dates as written."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, datetime):
        value = value.date() if value.time() == time(0) else value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    text = str(value).strip()
    return text or None


def iter_rows(
    source: Source, on_progress: Progress | None = None, limits: DumpLimits | None = None
) -> Iterator[list[Any] | dict[str, Any]]:
    """Raw records in file order: lists of cells (CSV, TSV, XLSX) or objects (JSON, JSON Lines).

    A generator over an open file: nothing beyond the current buffer (a line, a record) is held in
    memory, and a dump past ``limits`` (see ``attribution.limits``) is refused as soon as it shows.
    """
    # Imported here: both modules build on this one (DumpError, Source, cell).
    from appwarden.attribution.limits import DumpLimits, within

    limits = limits or DumpLimits()
    if source.format == "xlsx":
        from appwarden.attribution.xlsx import xlsx_rows

        rows: Iterator[list[Any] | dict[str, Any]] = xlsx_rows(source, on_progress, limits)
    elif source.format == "json":
        rows = _json_rows(source, on_progress)
    else:
        rows = _text_rows(source, on_progress, limits.max_line_chars)
    yield from within(rows, source, limits)


def _text_rows(
    source: Source, on_progress: Progress | None, max_line: int
) -> Iterator[list[Any] | dict[str, Any]]:
    assert source.encoding is not None
    line = 0
    with io.TextIOWrapper(
        _open_binary(source.path, on_progress), encoding=source.encoding, errors="strict", newline=""
    ) as stream:
        # Lines of at most max_line + 1 characters (C-level, no per-line Python): a longer line arrives
        # in pieces and is never held whole. A CSV piece that long holds more columns or a longer cell
        # than the limits allow, so ``within`` refuses it (or csv's field size limit does, inside quotes).
        text = iter(partial(stream.readline, max_line + 1), "")
        try:
            if source.format == "jsonl":
                for line, raw in enumerate(text, start=1):
                    if len(raw) > max_line:
                        raise DumpError(
                            f"{source.path.name}: line {line} is longer than {max_line:,} characters (more "
                            "than the column and cell limits allow)",
                            code="dump_row_too_long",
                        )
                    if not raw.strip():
                        continue
                    try:
                        obj = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        kind = "truncated" if not raw.endswith("\n") else "not valid"
                        code = "dump_truncated" if kind == "truncated" else "dump_invalid_json"
                        raise DumpError(
                            f"{source.path.name}: line {line} is {kind} JSON ({exc.msg})", code=code
                        ) from None
                    if not isinstance(obj, dict):
                        raise DumpError(
                            f"{source.path.name}: line {line} is not a JSON object", code="dump_invalid_json"
                        )
                    yield obj
            else:
                reader = csv.reader(text, delimiter=source.delimiter or ",")
                for row in reader:
                    line = reader.line_num
                    yield row
        except UnicodeDecodeError:
            raise _undecodable(source, line + 1) from None
        except csv.Error as exc:
            raise DumpError(
                f"{source.path.name}: malformed CSV near line {line + 1} ({exc})", code="dump_malformed"
            ) from None


def _json_rows(source: Source, on_progress: Progress | None) -> Iterator[dict[str, Any]]:
    assert source.encoding is not None and source.json_prefix is not None
    n = 0
    try:
        with _binary_utf8(source.path, source.encoding, on_progress) as fh:
            for n, obj in enumerate(ijson.items(fh, source.json_prefix, use_float=True), start=1):
                if not isinstance(obj, dict):
                    raise DumpError(
                        f"{source.path.name}: record {n} is not a JSON object", code="dump_invalid_json"
                    )
                yield obj
    except UnicodeDecodeError:
        raise DumpError(
            f"{source.path.name}: bytes after record {n} are not valid {source.encoding} text",
            code="dump_undecodable",
        ) from None
    except ijson.JSONError as exc:
        raise _json_error(source.path, exc) from None
