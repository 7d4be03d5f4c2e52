"""The Japanese font report PDFs are set in: the system's Noto Sans CJK when installed, else the Noto Sans JP
that the ``pylopdf-fonts-jp`` dependency ships (SIL OFL 1.1), so a fresh machine needs no system package.

fpdf2 embeds a subset of whichever is chosen; both are CFF-flavoured OpenType, which fpdf2 subsets as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appwarden.errors import Unavailable

# Debian's fonts-noto-cjk (and its usual places elsewhere). A TrueType/OpenType collection: index 0 is JP.
SYSTEM_FONTS = (
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


@dataclass(frozen=True)
class JapaneseFont:
    """A regular face and, when there is one, a real bold face (``None``: the renderer emboldens)."""

    regular: Path
    bold: Path | None
    source: str  # "system" or "packaged"
    # Index of the Japanese face in a collection (.ttc); None for a single font file.
    collection_index: int | None


def system_font() -> JapaneseFont | None:
    """Noto Sans CJK from the system's font directories, or None when it is not installed."""
    for regular, bold in SYSTEM_FONTS:
        if Path(regular).is_file():
            return JapaneseFont(
                regular=Path(regular),
                bold=Path(bold) if Path(bold).is_file() else None,
                source="system",
                collection_index=0,  # Collection index 0 is JP (JP glyph forms for shared ideographs).
            )
    return None


def packaged_font() -> JapaneseFont | None:
    """Noto Sans JP (regular only) from the ``pylopdf-fonts-jp`` package, or None if it is missing."""
    try:
        import pylopdf_fonts_jp
    except ImportError:
        return None
    path = Path(pylopdf_fonts_jp.sans_path())
    if not path.is_file():
        return None
    return JapaneseFont(regular=path, bold=None, source="packaged", collection_index=None)


def find_font(*, system: bool = True) -> JapaneseFont:
    """The system font when present and ``system`` allows it, else the packaged one, else a clear error."""
    font = (system_font() if system else None) or packaged_font()
    if font is None:
        raise Unavailable(
            "no Japanese font for PDF output: reinstall appwarden's dependencies (pylopdf-fonts-jp) "
            "or install Noto CJK (Debian: apt-get install fonts-noto-cjk)",
            code="font_unavailable",
        )
    return font
