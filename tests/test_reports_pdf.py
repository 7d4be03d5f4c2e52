"""Report PDFs as a reader sees them: set in the packaged font when the system has none, lines that obey
禁則 and fill the width (left-aligned, never justified), bordered tables, page numbers. Read back with
pypdf only; a page is rasterised for a look only where poppler happens to be installed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from appwarden.cli import run
from appwarden.config import get_settings
from appwarden.incident.fonts import find_font
from appwarden.incident.linebreak import NO_LINE_START
from appwarden.incident.pdf import markdown_to_pdf
from conftest import World, build_world
from pdf_text import all_lines, embedded_fonts, flat_text, operators
from test_notices import affected_incident


@pytest.fixture
def three(db: Any) -> World:
    return build_world(db, companies=3, stores=2, customers=12)


@pytest.fixture
def packaged_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh machine: no system font is looked up, whatever this machine has installed."""
    monkeypatch.setenv("APPWARDEN_PDF_SYSTEM_FONTS", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _report_pdf(world: World, tmp_path: Path, *, kind: str = "preliminary") -> bytes:
    ref = affected_incident(world)
    pdf = tmp_path / "report.pdf"
    company = world.tenants[0].company.public_id
    args = ["incident", "report", ref, "--kind", kind, "--company", company, "--lang", "ja"]
    assert run([*args, "--format", "pdf", "--out", str(pdf)]) == 0
    return pdf.read_bytes()


def test_the_packaged_font_sets_the_report_when_the_system_has_none(
    three: World, tmp_path: Path, packaged_only: None
) -> None:
    font = find_font(system=False)
    assert font.source == "packaged" and font.regular.suffix == ".otf"
    body = _report_pdf(three, tmp_path)
    fonts = embedded_fonts(body)
    assert fonts and all(name.endswith("+NotoSansJP") for name in fonts), fonts
    text = flat_text(body)
    assert "個人データの漏えい等報告書（速報）案" in text and "漏えい等が発生し" in text
    assert three.tenants[0].company.name.replace(" ", "") in text


def _text_width_mm() -> float:
    return 210 - 2 * 20  # A4 less the renderer's margins


def _measure() -> FPDF:
    pdf = FPDF()
    pdf.add_font("jp", "", find_font(system=False).regular)
    pdf.set_font("jp", size=10)
    return pdf


def test_lines_obey_kinsoku_and_fill_the_width() -> None:
    # Sentences whose punctuation falls at every position of a line in turn: a breaker that ignores 禁則
    # starts some line with 「、」「。」 or 「）」; one that breaks only at spaces leaves short lines.
    sentence = "委託先が提供するアプリに API経由で提供された個人データ（氏名、電話番号）が流出した。"
    markdown = "# 試験\n\n" + "\n\n".join("あ" * n + sentence * 3 for n in range(40)) + "\n"
    body = markdown_to_pdf(markdown, title="試験", system_fonts=False)  # the font _measure() measures with
    pages = all_lines(body)
    lines = [line for page in pages for line in page[:-1]]  # the last line of a page is its number
    starts = [line for line in lines if line[0] in NO_LINE_START]
    assert not starts, starts[:5]
    measure = _measure()
    paragraphs = "".join(lines[1:])
    assert paragraphs.replace(" ", "") == markdown.split("\n\n", 1)[1].replace("\n", "").replace(" ", "")
    # Left-aligned, filled: a line ends early by at most a pushed-down character pair or "API経由".
    short = [
        line
        for line in lines[1:]  # every paragraph ends with 「。」
        if not line.endswith("。") and measure.get_string_width(line) < _text_width_mm() - 12
    ]
    assert not short, short[:3]
    # Never justified: no word spacing, no per-glyph adjustment arrays.
    ops = {op for page in operators(body) for op, _ in page}
    assert b"Tw" not in ops and b"TJ" not in ops


def test_the_report_has_bordered_tables_headings_and_page_numbers(three: World, tmp_path: Path) -> None:
    body = _report_pdf(three, tmp_path)
    pages = all_lines(body)
    total = len(pages)
    assert total >= 3
    assert [page[-1] for page in pages] == [f"{n} / {total}" for n in range(1, total + 1)]
    for page in pages:
        assert not [line for line in page if line[0] in NO_LINE_START], page
    assert pages[0][0] == "個人データの漏えい等報告書（速報）案"
    # The attachment (別添) starts on a page of its own.
    assert any(page[0].startswith("別添") for page in pages[1:])
    # Every cell of the two tables on page 1 (9 rows of the form, 3 of the fields, 2 columns) is a
    # stroked rectangle.
    page1 = operators(body)[0]
    cells = [i for i, (op, _) in enumerate(page1) if op == b"re" and page1[i + 1][0] in (b"S", b"B")]
    assert len(cells) >= (9 + 3) * 2
    lines = pages[0]
    assert "項目人数" in lines and "氏名10人" in lines and "電話番号6人" in lines


def test_no_ink_outside_the_margins_when_poppler_is_here(three: World, tmp_path: Path) -> None:
    """Rasterise every page and look for ink in the side margins: text measured wrong, or a table wider
    than the page, would show there. Poppler is not a dependency: this runs only where it is installed."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        pytest.skip("pdftoppm (poppler-utils) not installed: the rasterised page check needs it")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(_report_pdf(three, tmp_path))
    subprocess.run([exe, "-gray", "-r", "50", str(pdf), str(tmp_path / "page")], check=True)
    images = sorted(tmp_path.glob("page*.pgm"))
    assert len(images) >= 3
    for image in images:
        magic, size, depth, pixels = image.read_bytes().split(b"\n", 3)
        width, height = (int(v) for v in size.split())
        assert magic == b"P5" and depth == b"255" and len(pixels) == width * height
        left, right = int(width * 19 / 210), int(width * 191 / 210)  # 1 mm inside the 20 mm margins
        rows = [pixels[y * width : (y + 1) * width] for y in range(height)]
        assert all(min(row[:left]) > 128 and min(row[right:]) > 128 for row in rows), image.name
        assert min(min(row[left:right]) for row in rows) < 64  # and there is text in between
