"""Markdown to an A4 PDF that reads as an official Japanese document: headings, left-aligned paragraphs
broken by the 禁則 rules of :mod:`appwarden.incident.linebreak`, bordered tables (fpdf2's ``table()``),
lists with hanging indents, a page break before an attachment (``---``), and page numbers.

The Markdown is walked as markdown-it tokens (not HTML), so every line is laid out here and fpdf2 only
draws lines that already fit; fpdf2's own HTML writer justifies and breaks only at spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fpdf import FPDF
from fpdf.enums import TableBordersLayout, TextMode, XPos, YPos
from fpdf.fonts import FontFace
from markdown_it import MarkdownIt
from markdown_it.token import Token

from appwarden.incident.fonts import JapaneseFont, find_font
from appwarden.incident.linebreak import Run, wrap_runs

FAMILY = "jp"
BODY_PT = 10.0
LINE = 1.6  # line height, as a multiple of the font size: Japanese text needs more leading than Latin
HEADING_PT = {1: 15.0, 2: 12.0, 3: 11.5, 4: 10.5}
BULLET = "•"
CELL_PADDING = (1.4, 2.0)  # (vertical, horizontal) in mm
HEADER_FILL = (232, 232, 232)
PT = 25.4 / 72  # mm per point

_md = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass
class _Cell:
    runs: list[Run]
    align: str  # "LEFT" or "RIGHT"


@dataclass
class _Table:
    header: list[_Cell] = field(default_factory=list)
    rows: list[list[_Cell]] = field(default_factory=list)


class _Document(FPDF):
    """An A4 page with the page number (``n / total``) centred in the footer."""

    def footer(self) -> None:
        self.set_y(-12)
        with self.local_context(text_mode=TextMode.FILL):
            self.set_font(FAMILY, "", 8)
            self.cell(0, 5, f"{self.page_no()} / {{nb}}", align="C")


class _Writer:
    """Lays out markdown-it block tokens on a :class:`_Document`."""

    def __init__(self, pdf: _Document, font: JapaneseFont) -> None:
        self.pdf = pdf
        self.real_bold = font.bold is not None
        self.indent = 0.0  # mm from the left margin (lists)
        self._widths: dict[tuple[str, bool, float], float] = {}

    # -- measuring and drawing lines ---------------------------------------------------------------------

    def width_of(self, char: str, bold: bool, size: float) -> float:
        key = (char, bold, size)
        if key not in self._widths:
            self.pdf.set_font(FAMILY, "B" if bold else "", size)
            self._widths[key] = self.pdf.get_string_width(char)
        return self._widths[key]

    def lines(self, runs: Sequence[Run], size: float, max_width: float) -> list[list[Run]]:
        return wrap_runs(runs, lambda c, b: self.width_of(c, b, size), max_width)

    def draw_line(self, line: Sequence[Run], size: float, x: float, *, center: bool = False) -> None:
        pdf = self.pdf
        height = size * PT * LINE
        if pdf.will_page_break(height):
            pdf.add_page()
        width = sum(self.width_of(c, b, size) for text, b in line for c in text)
        pdf.set_x(pdf.l_margin + (pdf.epw - width) / 2 if center else x)
        for text, bold in line:
            self._run(text, bold, size, height)
        pdf.ln(height)

    def _run(self, text: str, bold: bool, size: float, height: float) -> None:
        pdf = self.pdf
        pdf.set_font(FAMILY, "B" if bold else "", size)
        width = sum(self.width_of(c, bold, size) for c in text)
        if bold and not self.real_bold:
            # No bold face (the packaged font): stroke the outlines as well as filling them.
            with pdf.local_context(text_mode=TextMode.FILL_STROKE, line_width=size * 0.012):
                pdf.cell(width, height, text, new_x=XPos.RIGHT, new_y=YPos.TOP)
        else:
            pdf.cell(width, height, text, new_x=XPos.RIGHT, new_y=YPos.TOP)

    def paragraph(self, runs: Sequence[Run], *, size: float = BODY_PT, marker: str | None = None) -> None:
        hang = self.width_of(BULLET, False, size) * 2 if marker else 0.0
        left = self.pdf.l_margin + self.indent
        for n, line in enumerate(self.lines(runs, size, self.pdf.epw - self.indent - hang)):
            if marker and n == 0:
                height = size * PT * LINE
                if self.pdf.will_page_break(height):
                    self.pdf.add_page()
                self.pdf.set_font(FAMILY, "", size)
                self.pdf.set_x(left)
                self.pdf.cell(hang, height, marker, new_x=XPos.RIGHT, new_y=YPos.TOP)
                self.draw_line(line, size, self.pdf.get_x())
            else:
                self.draw_line(line, size, left + hang)

    def heading(self, level: int, runs: Sequence[Run]) -> None:
        pdf, size = self.pdf, HEADING_PT.get(level, BODY_PT)
        bold = [(text, True) for text, _ in runs]
        lines = self.lines(bold, size, pdf.epw)
        if level > 1:
            pdf.ln(size * PT * (0.9 if level == 2 else 0.5))
        # Keep a heading with the first lines of what it heads.
        if pdf.will_page_break(size * PT * LINE * len(lines) + 3 * BODY_PT * PT * LINE):
            pdf.add_page()
        for line in lines:
            self.draw_line(line, size, pdf.l_margin, center=level == 1)
        if level <= 2:
            y = pdf.get_y() - size * PT * 0.2
            with pdf.local_context(line_width=0.5 if level == 1 else 0.3):
                pdf.line(pdf.l_margin, y, pdf.l_margin + pdf.epw, y)
        pdf.ln(size * PT * (1.0 if level == 1 else 0.4))

    def gap(self) -> None:
        self.pdf.ln(BODY_PT * PT * 0.6)

    # -- tables ------------------------------------------------------------------------------------------

    def table(self, table: _Table) -> None:
        pdf = self.pdf
        rows = [table.header, *table.rows] if any(c.runs for c in table.header) else table.rows
        if not rows:
            return
        columns = max(len(r) for r in rows)
        widths = self._column_widths(rows, columns, pdf.epw - self.indent)
        keyed = rows is table.rows and columns == 2  # a headerless two-column table is a form: 項目 | 内容
        inner = [w - 2 * CELL_PADDING[1] - 0.6 for w in widths]  # 0.6 mm: borders and rounding
        style = FontFace(emphasis="BOLD", fill_color=HEADER_FILL)
        pdf.set_font(FAMILY, "", BODY_PT)
        pdf.set_x(pdf.l_margin + self.indent)
        with pdf.table(
            col_widths=widths,
            width=sum(widths),
            align="LEFT",
            borders_layout=TableBordersLayout.ALL,
            first_row_as_headings=rows is not table.rows,
            headings_style=style,
            line_height=BODY_PT * PT * 1.45,
            padding=CELL_PADDING,
            markdown=False,
        ) as out:
            for row in rows:
                cells = out.row()
                for i in range(columns):
                    cell = row[i] if i < len(row) else _Cell([], "LEFT")
                    text = "\n".join(
                        "".join(t for t, _ in line) for line in self.lines(cell.runs, BODY_PT, inner[i])
                    )
                    cells.cell(
                        text,
                        align=cell.align,
                        style=FontFace(fill_color=HEADER_FILL) if keyed and i == 0 else None,
                    )
        pdf.ln(BODY_PT * PT * 0.6)

    def _column_widths(self, rows: list[list[_Cell]], columns: int, total: float) -> list[float]:
        """Each column's natural width (its longest cell); wide columns share what the narrow ones leave."""
        natural = [2 * CELL_PADDING[1] + 1.0] * columns
        for row in rows:
            for i, cell in enumerate(row):
                text = "".join(t for t, _ in cell.runs)
                longest = max((self._text_width(part) for part in text.split("\n")), default=0.0)
                natural[i] = max(natural[i], longest + 2 * CELL_PADDING[1] + 1.0)
        if sum(natural) <= total:
            spare = total - sum(natural)  # full width: the spare goes to the first column, the label
            return [natural[0] + spare, *natural[1:]]
        fair = total / columns
        narrow = [w for w in natural if w <= fair]
        wide = sum(w for w in natural if w > fair)
        left = total - sum(narrow)
        return [w if w <= fair else left * w / wide for w in natural]

    def _text_width(self, text: str) -> float:
        return sum(self.width_of(c, False, BODY_PT) for c in text)


def _runs(inline: Token) -> list[Run]:
    """An inline token's text as styled runs (``**strong**`` is bold; soft breaks join the lines)."""
    runs: list[Run] = []
    bold = 0
    for child in inline.children or []:
        if child.type == "strong_open":
            bold += 1
        elif child.type == "strong_close":
            bold -= 1
        elif child.type in ("text", "code_inline", "html_inline"):
            runs.append((child.content, bold > 0))
        elif child.type == "softbreak":
            runs.append((" ", bold > 0))
        elif child.type == "hardbreak":
            runs.append(("\n", bold > 0))
    return runs


def _table(tokens: Sequence[Token], i: int) -> tuple[_Table, int]:
    """Read a table starting at ``tokens[i]`` (``table_open``); return it and the index after it."""
    table = _Table()
    row: list[_Cell] | None = None
    in_head = False
    while tokens[i].type != "table_close":
        token = tokens[i]
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            if in_head:
                table.header = row
            else:
                table.rows.append(row)
        elif token.type in ("th_open", "td_open") and row is not None:
            align = "RIGHT" if "right" in str(token.attrs.get("style", "")) else "LEFT"
            row.append(_Cell(_runs(tokens[i + 1]), align))
        i += 1
    return table, i + 1


def render_markdown(pdf: _Document, font: JapaneseFont, markdown: str) -> None:
    """Lay ``markdown`` out on ``pdf``, from its current position."""
    writer = _Writer(pdf, font)
    tokens = _md.parse(markdown)
    markers: list[str | None] = []  # the bullet of the list item whose first paragraph is next
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            writer.heading(int(token.tag[1:]), _runs(tokens[i + 1]))
            i += 3
            continue
        if token.type == "paragraph_open":
            marker = markers[-1] if markers else None
            if markers:
                markers[-1] = None  # a second paragraph in an item has no bullet of its own
            writer.paragraph(_runs(tokens[i + 1]), marker=marker)
            if not markers:
                writer.gap()
            i += 3
            continue
        if token.type == "table_open":
            table, i = _table(tokens, i)
            writer.table(table)
            continue
        if token.type in ("bullet_list_open", "ordered_list_open"):
            writer.indent += 0 if not markers else writer.width_of(BULLET, False, BODY_PT) * 2
            markers.append(None)
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            markers.pop()
            writer.indent -= 0 if not markers else writer.width_of(BULLET, False, BODY_PT) * 2
            if not markers:
                writer.gap()
        elif token.type == "list_item_open":
            markers[-1] = f"{token.info}." if token.info else BULLET
        elif token.type == "hr":
            pdf.add_page()  # what follows a rule is an attachment (別添): it starts on its own page
        i += 1


def markdown_to_pdf(markdown: str, *, title: str, system_fonts: bool | None = None) -> bytes:
    """Draw Markdown as an A4 PDF with a Japanese font embedded (a subset of it).

    ``system_fonts`` (default: the ``APPWARDEN_PDF_SYSTEM_FONTS`` setting) allows the system's Noto Sans
    CJK; without it, or without that font installed, the packaged Noto Sans JP is used.
    """
    if system_fonts is None:
        from appwarden.config import get_settings

        system_fonts = get_settings().pdf_system_fonts
    font = find_font(system=system_fonts)
    pdf = _Document(format="A4")
    pdf.set_title(title)
    pdf.set_creator("appwarden")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.c_margin = 0  # lines are measured here to the millimetre: no hidden cell padding
    index = font.collection_index or 0  # fpdf2 ignores it for a single font file
    pdf.add_font(FAMILY, "", font.regular, collection_font_number=index)
    # Without a bold face, "bold" is the regular face: table headings are shaded, body text stroked.
    pdf.add_font(FAMILY, "B", font.bold or font.regular, collection_font_number=index)
    pdf.add_page()
    render_markdown(pdf, font, markdown)
    return bytes(pdf.output())
