"""The console's one translation catalogue (Babel) and its Jinja2 environments, one per language.

Message ids are English; ``locales/ja/LC_MESSAGES/messages.po`` translates them into Japanese, the
default language, and ``locales/en`` keeps the English as written (empty ``msgstr``). The ``.po`` files
are the only source: each is compiled in memory the first time its language is used (Babel's
``read_po`` / ``write_mo``), so no ``.mo`` can go stale beside it. ``tests/test_console_i18n.py``
extracts every string the templates and the console's Python mark (``_``, ``gettext``, ``N_``) and
fails on any without a Japanese translation. To add strings: mark them, run
``uv run pybabel extract -F src/appwarden/console/babel.cfg -o /tmp/messages.pot src/appwarden/console``
then ``uv run pybabel update -i /tmp/messages.pot -d src/appwarden/console/locales``, and translate.
"""

from __future__ import annotations

from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
LOCALES = Path(__file__).parent / "locales"
TEMPLATES = Path(__file__).parent / "templates"


def N_(message: str) -> str:
    """Mark a string for the catalogue without translating it here (it is translated where shown)."""
    return message


def language(value: str | None) -> str:
    """A supported language code, the default for anything else."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> Translations:
    """The compiled catalogue of ``lang``."""
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=lang)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@lru_cache(maxsize=len(LANGUAGES))
def environment(lang: str) -> Environment:
    """The Jinja2 environment of one language (``jinja2.ext.i18n`` bound to its catalogue)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def render(lang: str, template: str, **context: Any) -> str:
    """A page or fragment in ``lang``."""
    return environment(language(lang)).get_template(template).render(lang=language(lang), **context)


def gettext(lang: str, message: str) -> str:
    """``message`` in ``lang`` (for strings built in Python)."""
    return translations(language(lang)).gettext(message)
