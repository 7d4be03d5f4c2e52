"""Reading report PDFs back in tests, with pypdf only (no poppler on a fresh machine).

pypdf's ``extract_text`` decodes fpdf2's CID-keyed CJK fonts one byte at a time (it does not read the
embedded 2-byte encoding CMap), so its text is garbage past the first 255 glyphs. fpdf2 writes each text
show as ``BT x y Td (…) Tj ET`` with 2-byte codes and a ``bfchar`` ToUnicode map; this reads exactly
that, and keeps where each piece of text stands, so tests can check lines and what begins them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ContentStream

_BFCHAR = re.compile(rb"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]+)>")


@dataclass(frozen=True)
class Show:
    """One text show: its start (PDF points, origin bottom-left), font resource name and text."""

    x: float
    y: float
    font: str
    text: str


def _to_unicode(font: Any) -> dict[int, str]:
    data = font["/ToUnicode"].get_object().get_data()
    return {
        int(code, 16): bytes.fromhex(dest.decode()).decode("utf-16-be")
        for code, dest in _BFCHAR.findall(data)
    }


def page_shows(reader: PdfReader, page_index: int) -> list[Show]:
    """Every text show on a page, in drawing order."""
    page = reader.pages[page_index]
    fonts = {name: font.get_object() for name, font in page["/Resources"]["/Font"].items()}
    maps = {name: _to_unicode(font) for name, font in fonts.items() if "/ToUnicode" in font}
    shows: list[Show] = []
    font, x, y = "", 0.0, 0.0
    for operands, op in ContentStream(page.get_contents(), reader).operations:
        if op == b"BT":
            x = y = 0.0
        elif op == b"Tf":
            font = str(operands[0])
        elif op == b"Td":
            x, y = x + float(operands[0]), y + float(operands[1])
        elif op == b"Tj":
            # pypdf may have decoded the string operand already; the codes are its original bytes.
            raw = getattr(operands[0], "original_bytes", None) or bytes(operands[0])
            codes = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw) - 1, 2)]
            cmap = maps.get(font, {})
            shows.append(Show(x, y, font, "".join(cmap.get(c, "\ufffd") for c in codes)))
    return shows


def read_pdf(body: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(body))


def page_lines(reader: PdfReader, page_index: int) -> list[str]:
    """The page's text lines, top to bottom: shows on one baseline joined left to right."""
    by_y: dict[float, list[Show]] = {}
    for show in page_shows(reader, page_index):
        by_y.setdefault(round(show.y, 1), []).append(show)
    return [
        "".join(s.text for s in sorted(row, key=lambda s: s.x))
        for _, row in sorted(by_y.items(), reverse=True)
    ]


def all_lines(body: bytes) -> list[list[str]]:
    """Each page's lines."""
    reader = read_pdf(body)
    return [page_lines(reader, i) for i in range(len(reader.pages))]


def flat_text(body: bytes) -> str:
    """All the document's text without whitespace (lines break anywhere)."""
    return re.sub(r"\s+", "", "".join("".join(lines) for lines in all_lines(body)))


def embedded_fonts(body: bytes) -> set[str]:
    """The base font names of every font the pages use (``/ABCDEF+NotoSansJP``)."""
    reader = read_pdf(body)
    return {
        str(font.get_object()["/BaseFont"])
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()
    }


def operators(body: bytes) -> list[list[tuple[bytes, list[Any]]]]:
    """Each page's content-stream operations as ``(operator, operands)``."""
    reader = read_pdf(body)
    return [
        [(op, list(operands)) for operands, op in ContentStream(page.get_contents(), reader).operations]
        for page in reader.pages
    ]
