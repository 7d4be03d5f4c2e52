"""The console's one catalogue: every string its templates and Python mark is translated into Japanese
(the default language), both catalogues hold the same messages, and the placeholders agree."""

from __future__ import annotations

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from appwarden.console import i18n

KEYWORDS = DEFAULT_KEYWORDS | {"N_": None, "gettext": (2,)}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def marked() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        i18n.Path(i18n.__file__).parent, METHODS, keywords=KEYWORDS, options_map=OPTIONS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalogue(lang: str):  # type: ignore[no-untyped-def]
    with (i18n.LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=lang)


def test_every_marked_string_has_a_japanese_translation() -> None:
    ja = catalogue("ja")
    strings = marked()
    assert len(strings) > 50  # the extraction found the templates, not nothing
    missing = sorted(s for s in strings if not (ja.get(s) and ja.get(s).string))
    assert missing == [], "run scripts/console_catalog.py and translate these"


def test_both_catalogues_hold_exactly_the_marked_strings() -> None:
    strings = marked()
    for lang in i18n.LANGUAGES:
        held = {m.id for m in catalogue(lang) if m.id}
        assert held == strings, lang


def test_translations_keep_their_placeholders() -> None:
    problems = [(m.id, errors) for m, errors in catalogue("ja").check() if errors]
    assert problems == []
    assert i18n.gettext("ja", "Connected apps") == "連携中のアプリ"
    assert i18n.gettext("en", "Connected apps") == "Connected apps"
    assert i18n.gettext("xx", "Connected apps") == "連携中のアプリ"  # unknown language: the default
