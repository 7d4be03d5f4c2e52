"""Rendering for notices and report drafts: Jinja2 templates to Markdown, Markdown to sections and to PDF.

The Markdown a template produces is the single source of every format: the ``.md`` file as is, the JSON's
``sections`` parsed from it, and the PDF drawn from its HTML with fpdf2 and a Noto CJK font.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markdown_it import MarkdownIt

from appwarden.errors import Unavailable
from appwarden.incident.appi import JST

LANGS = ("ja", "en")

# Debian's fonts-noto-cjk (and its usual places elsewhere). A TrueType/OpenType collection: index 0 is JP.
FONT_CANDIDATES = (
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    ),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc"),
    (
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Bold.ttc",
    ),
)


def _jst(value: datetime, lang: str = "ja") -> str:
    local = value.astimezone(JST)
    if lang == "ja":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（日本時間）"
    return f"{local:%Y-%m-%d %H:%M} JST"


def _day(value: date | datetime, lang: str = "ja") -> str:
    if isinstance(value, datetime):
        value = value.astimezone(JST).date()
    return f"{value.year}年{value.month}月{value.day}日" if lang == "ja" else value.isoformat()


def _num(value: int) -> str:
    return f"{int(value):,}"


def _environment() -> Environment:
    # Markdown output, not HTML: autoescaping would corrupt it; values reach HTML only through markdown-it,
    # which escapes raw HTML (html=False below).
    env = Environment(
        loader=PackageLoader("appwarden.incident", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters.update(jst=_jst, day=_day, num=_num)
    return env


_env = _environment()
_md = MarkdownIt("commonmark", {"html": False}).enable("table")


def render(template: str, lang: str, **context: Any) -> str:
    """Render ``{template}_{lang}.md.j2`` to Markdown (blank-line runs collapsed)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}")
    text = _env.get_template(f"{template}_{lang}.md.j2").render(lang=lang, **context)
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() == "" and lines and lines[-1] == "":
            continue
        lines.append(line.rstrip())
    return "\n".join(lines).strip() + "\n"


def sections(markdown: str) -> list[dict[str, str]]:
    """Split a document at its ``## `` headings: ``[{"heading": …, "body": …}]`` (the title is dropped)."""
    out: list[dict[str, str]] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            out.append({"heading": line[3:].strip(), "body": ""})
        elif out:
            out[-1]["body"] += line + "\n"
    for section in out:
        section["body"] = section["body"].strip().removesuffix("---").strip()
    return out


def find_font() -> tuple[Path, Path]:
    """The Noto Sans CJK regular and bold collections, or a clear error naming the package to install."""
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).is_file():
            return Path(regular), Path(bold) if Path(bold).is_file() else Path(regular)
    raise Unavailable(
        "no Japanese font for PDF output: install Noto CJK (Debian: apt-get install fonts-noto-cjk)",
        code="font_unavailable",
    )


def markdown_to_pdf(markdown: str, *, title: str) -> bytes:
    """Draw Markdown as an A4 PDF with Japanese text embedded (subset of Noto Sans CJK JP)."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    regular, bold = find_font()
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("appwarden")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    # Collection index 0 is the Japanese face (JP glyph forms for shared ideographs).
    pdf.add_font("noto", "", str(regular), collection_font_number=0)
    pdf.add_font("noto", "B", str(bold), collection_font_number=0)
    pdf.add_page()
    pdf.set_font("noto", size=10)
    black = (0, 0, 0)
    pdf.write_html(
        _md.render(markdown),
        font_family="noto",
        tag_styles={
            "h1": FontFace(color=black, size_pt=15, emphasis="BOLD"),
            "h2": FontFace(color=black, size_pt=12, emphasis="BOLD"),
            "h3": FontFace(color=black, size_pt=11, emphasis="BOLD"),
            "h4": FontFace(color=black, size_pt=10, emphasis="BOLD"),
        },
    )
    return bytes(pdf.output())
