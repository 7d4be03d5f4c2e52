"""Rendering for notices and report drafts: Jinja2 templates to Markdown, Markdown to sections and to PDF.

The Markdown a template produces is the single source of every format: the ``.md`` file as is, the JSON's
``sections`` parsed from it, and the PDF laid out from it by :mod:`appwarden.incident.pdf`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from appwarden.incident.appi import JST

LANGS = ("ja", "en")


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
    # Markdown output, not HTML: autoescaping would corrupt it; the PDF reads it as markdown-it tokens with
    # raw HTML disabled (appwarden.incident.pdf), so no value is ever interpreted as markup.
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
