"""Dump limits: decompressed size, compression ratio, rows, columns, cell and line length.

The hostile files are built in tmp, small to store and huge when expanded; refusals are checked for their
code and one-line message, and memory with ``tracemalloc`` (the peak of Python allocations during the
read, which is what an expanded table or line would show up in).
"""

from __future__ import annotations

import json
import random
import string
import tracemalloc
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from appwarden.app import create_app
from appwarden.attribution.formats import DumpError
from appwarden.attribution.limits import DumpLimits
from appwarden.attribution.reader import read_dump
from appwarden.attribution.xlsx import SharedStrings
from appwarden.cli import run
from appwarden.config import Settings, get_settings
from appwarden.db.session import Database
from attribution_helpers import write_csv

SST_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
HEADER = ["氏名", "電話番号"]
PEOPLE = [["山田 太郎", "090-1234-5678"], ["佐藤 花子", "080-2345-6789"], ["鈴木 一郎", "070-3456-7890"]]


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
        '<sheet name="会員" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    ),
}


def workbook(path: Path, rows: list[list[str]], strings: Iterable[bytes] | None = None) -> Path:
    """A workbook as Excel writes one: every cell a shared string (openpyxl itself writes inline strings).
    ``strings`` replaces the shared-string part (streamed and deflated as written, never held whole)."""
    table = list(dict.fromkeys(v for row in rows for v in row))
    cells = "".join(
        f'<row r="{r}">' + "".join(f'<c t="s"><v>{table.index(v)}</v></c>' for v in row) + "</row>"
        for r, row in enumerate(rows, start=1)
    )
    sheet = f'<worksheet xmlns="{MAIN}"><sheetData>{cells}</sheetData></worksheet>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, xml in PARTS.items():
            z.writestr(name, xml)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        with z.open("xl/sharedStrings.xml", "w") as part:
            for chunk in strings if strings is not None else shared_strings(iter(table)):
                part.write(chunk)
    return path


def shared_strings(strings: Iterator[str], per_chunk: int = 10_000) -> Iterator[bytes]:
    yield SST_HEAD
    while batch := [s for _, s in zip(range(per_chunk), strings, strict=False)]:
        yield "".join(f"<si><t>{s}</t></si>" for s in batch).encode()
    yield b"</sst>"


def peak_of(read: Callable[[], object]) -> tuple[BaseException | None, int]:
    """Run ``read``; the error it raised (if any) and the peak of traced allocations meanwhile."""
    tracemalloc.start()
    error: BaseException | None = None
    try:
        read()
    except DumpError as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak


def read_all(path: Path, limits: DumpLimits | None = None) -> int:
    return sum(len(batch) for batch in read_dump(path, limits=limits))


@pytest.fixture(autouse=True)
def _warm(tmp_path: Path) -> None:
    """One ordinary read first, so lazy imports and caches are not counted as the hostile read's memory."""
    read_all(workbook(tmp_path / "warm.xlsx", [HEADER, *PEOPLE]))


def test_an_xlsx_bomb_is_refused_before_openpyxl_opens_it(tmp_path: Path) -> None:
    """1,000,000 shared strings (18 MB of XML) in a file of a few tens of KB: refused on its ratio."""
    bomb = workbook(tmp_path / "bomb.xlsx", [HEADER, *PEOPLE], shared_strings(iter(["ab"] * 10**6)))
    assert bomb.stat().st_size < 200_000
    error, peak = peak_of(lambda: read_all(bomb))
    assert isinstance(error, DumpError) and error.code == "dump_too_large"
    assert "xl/sharedStrings.xml" in error.detail and "zip bomb" in error.detail
    assert "\n" not in error.detail
    assert peak < 1_000_000  # openpyxl's own loader would have held a million strings (~60 MB)


def test_a_workbook_over_the_decompressed_limit_is_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path / "plain.xlsx", [HEADER, *PEOPLE])
    with zipfile.ZipFile(path) as z:
        total = sum(i.file_size for i in z.infolist())
    assert read_all(path, DumpLimits(max_decompressed_bytes=total)) == 3
    with pytest.raises(DumpError, match=f"expands to {total:,} bytes") as caught:
        read_all(path, DumpLimits(max_decompressed_bytes=total - 1))
    assert caught.value.code == "dump_too_large"


def test_a_padded_shared_string_table_is_refused_early_with_bounded_memory(tmp_path: Path) -> None:
    """150,000 distinct strings (an honest 2-3:1 ratio) behind a three-row sheet: far more than its cells
    could use. Refused after a few thousand strings, holding a few of them."""
    rng = random.Random(9)
    padding = ("".join(rng.choices(string.ascii_lowercase + string.digits, k=10)) for _ in range(150_000))
    used = list(dict.fromkeys(v for row in [HEADER, *PEOPLE] for v in row))  # what the cells use, first
    table = shared_strings(iter([*used, *padding]))
    padded = workbook(tmp_path / "padded.xlsx", [HEADER, *PEOPLE], table)
    error, peak = peak_of(lambda: read_all(padded))
    assert isinstance(error, DumpError) and error.code == "dump_too_large"
    assert "shared-string table holds more than" in error.detail
    assert peak < 3_000_000  # the whole table as openpyxl loads it is ~10 MB of str objects


def test_a_long_shared_string_is_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path / "long.xlsx", [HEADER, ["x" * 40_000, "090-1234-5678"], *PEOPLE])
    assert read_all(path, DumpLimits(max_cell_chars=40_000)) == 4
    with pytest.raises(DumpError, match="40,000 characters long, over the 32,768-character") as caught:
        read_all(path)
    assert caught.value.code == "dump_cell_too_long"


def test_xlsx_rows_and_columns(tmp_path: Path) -> None:
    path = workbook(tmp_path / "wide.xlsx", [HEADER, *PEOPLE, [*PEOPLE[0], *map(str, range(10))]])
    assert read_all(path) == 4
    with pytest.raises(DumpError, match="row 5 has 12 columns") as caught:
        read_all(path, DumpLimits(max_columns=11))
    assert caught.value.code == "dump_too_many_columns"
    with pytest.raises(DumpError, match="more than 3 rows") as caught:
        read_all(path, DumpLimits(max_rows=3))
    assert caught.value.code == "dump_too_many_rows"


def test_the_compact_shared_string_table() -> None:
    words = [f"{i:07d}名前" for i in range(100_000)]
    tracemalloc.start()
    table = SharedStrings()
    for w in words:
        table.append(w)
    table.seal()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(table) == len(words) and all(table[i] == w for i, w in enumerate(words))
    for bad in (-1, len(words)):
        with pytest.raises(IndexError):
            table[bad]
    assert size < 100_000 * 32  # a list of these str objects takes ~100 bytes a string


@pytest.mark.parametrize(
    ("limits", "code", "message"),
    [
        (DumpLimits(max_rows=3), "dump_too_many_rows", "more than 3 rows"),
        (DumpLimits(max_columns=2), "dump_too_many_columns", "row 3 has 3 columns"),
        (DumpLimits(max_cell_chars=13), "dump_cell_too_long", "row 5 has a cell of 14 characters"),
    ],
)
def test_csv_limits(tmp_path: Path, limits: DumpLimits, code: str, message: str) -> None:
    rows = [PEOPLE[0], [*PEOPLE[1], "extra"], PEOPLE[2], ["伊藤 さくら", "090-0000-00000"]]
    path = write_csv(tmp_path / "dump.csv", HEADER, rows)
    assert read_all(path) == 4
    with pytest.raises(DumpError, match=message) as caught:
        read_all(path, limits)
    assert caught.value.code == code


def test_a_line_past_the_limits_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """8 MB of commas on one line: four million cells if parsed; refused after a line's worth."""
    path = tmp_path / "one-line.csv"
    with path.open("w") as fh:
        fh.write("氏名,電話番号\n山田 太郎,090-1234-5678\n")
        fh.write("a," * 4_000_000)
    limits = DumpLimits(max_columns=10, max_cell_chars=100)
    error, peak = peak_of(lambda: read_all(path, limits))
    assert isinstance(error, DumpError) and error.code == "dump_too_many_columns"
    assert "row 3 has 1,017 columns, over the 10-column limit" in error.detail  # a line's worth of them
    assert peak < 4_000_000  # the whole line is 8 MB; parsed, four million str cells


def test_a_json_lines_line_past_the_limits_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "one-line.jsonl"
    with path.open("w") as fh:
        fh.write('{"name": "山田 太郎", "phone": "090-1234-5678"}\n{"name": "')
        fh.write("x" * 8_000_000)
    error, peak = peak_of(lambda: read_all(path, DumpLimits(max_columns=10, max_cell_chars=100)))
    assert isinstance(error, DumpError) and error.code == "dump_row_too_long"
    assert "line 2 is longer than 2,032 characters" in error.detail
    assert peak < 4_000_000


def test_json_lines_columns(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    record = {"name": "山田 太郎", "phone": "090-1234-5678", "extra": {str(i): i for i in range(20)}}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n")
    assert read_all(path) == 1
    with pytest.raises(DumpError, match="has 22 columns, over the 21-column limit"):
        read_all(path, DumpLimits(max_columns=21))


def test_the_settings_reach_the_cli_and_the_upload(
    settings: Settings,
    db: Database,
    tmp_path: Path,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_csv(tmp_path / "dump.csv", HEADER, PEOPLE * 2)
    monkeypatch.setenv("APPWARDEN_DUMP_MAX_ROWS", "5")
    get_settings.cache_clear()
    assert run(["attribute", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: dump.csv: more than 5 rows"]

    small = settings.model_copy(update={"dump_max_rows": 5})
    with TestClient(create_app(small, db)) as client:
        files = {"file": ("forum.csv", path.read_bytes(), "text/csv")}
        response = client.post("/admin/attributions", files=files, headers=admin_headers)
    assert response.status_code == 422 and response.json()["code"] == "dump_too_many_rows"
    assert "more than 5 rows" in response.json()["detail"]


def test_an_xlsx_is_read_whatever_its_name(tmp_path: Path) -> None:
    """Opened from its file handle: an upload saved as ``.bin`` is not refused by openpyxl's name check."""
    path = workbook(tmp_path / "leak.bin", [HEADER, *PEOPLE])
    assert read_dump(path).format == "xlsx" and read_all(path) == 3
