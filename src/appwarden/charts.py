"""Charts as inline SVG, drawn on the server: no script, no charting library, readable without CSS.

A chart is a plain string of SVG markup (returned as ``markupsafe.Markup`` so Jinja2 does not escape it
again); every label it contains is escaped here. Each bar carries a ``<title>`` with its label and value
(a tooltip, and what a screen reader reads), and the chart as a whole has ``role="img"`` and an
``aria-label``. Values are drawn to scale from zero; an all-zero series draws an empty axis, not bars of
arbitrary height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label under the axis (may be empty to skip), the value and the tooltip text."""

    label: str
    value: int
    title: str = ""


def _number(value: int) -> str:
    return f"{value:,}"


def bar_chart(
    bars: Sequence[Bar],
    *,
    label: str,
    width: int = 640,
    height: int = 180,
    label_every: int = 1,
    css_class: str = "chart",
) -> Markup:
    """A vertical bar chart of ``bars`` (left to right), ``label`` its accessible name; a label is drawn
    under every ``label_every``-th bar (hourly charts label every sixth hour, say)."""
    top, bottom, left, right = 16, 28, 48, 8
    plot_w, plot_h = max(width - left - right, 1), max(height - top - bottom, 1)
    peak = max((bar.value for bar in bars), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(label)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{_number(peak)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    if bars:
        slot = plot_w / len(bars)
        gap = min(2.0, slot * 0.2)
        for i, bar in enumerate(bars):
            x = left + i * slot
            h = 0.0 if peak == 0 else plot_h * bar.value / peak
            tip = bar.title or f"{bar.label}: {_number(bar.value)}"
            parts.append(
                f'<rect x="{x + gap / 2:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot - gap, 0.5):.1f}" '
                f'height="{h:.1f}" fill="#3b6ea8"><title>{escape(tip)}</title></rect>'
            )
            if bar.label and i % max(label_every, 1) == 0:
                parts.append(
                    f'<text x="{x + slot / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                    f'font-size="10">{escape(bar.label)}</text>'
                )
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(bars: Sequence[Bar], *, label: str, width: int = 640, row: int = 22) -> Markup:
    """A horizontal bar chart (one row per bar, its label on the left and its value on the right): the
    blast radius by company, people held per field."""
    left, right, top = 180, 80, 4
    plot_w = max(width - left - right, 1)
    height = top * 2 + row * max(len(bars), 1)
    peak = max((bar.value for bar in bars), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(label)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = top + i * row
        w = 0.0 if peak == 0 else plot_w * bar.value / peak
        tip = bar.title or f"{bar.label}: {_number(bar.value)}"
        baseline = y + row * 0.7
        parts.append(
            f'<text x="{left - 8}" y="{baseline:.1f}" text-anchor="end" font-size="12">'
            f"{escape(bar.label)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="#3b6ea8">'
            f"<title>{escape(tip)}</title></rect>"
            f'<text x="{left + w + 6:.1f}" y="{baseline:.1f}" font-size="12">{_number(bar.value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
