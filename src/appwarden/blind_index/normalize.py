"""Normalisation of personal values, so that a dump's noisy spelling and the platform's stored spelling
of the same person give the same key. Pure functions over lists (one call per column, not per cell).

Keys, per field:
- ``name`` / ``name_kana``: NFKC (full/half width, compatibility ideographs), casefold, hiragana folded
  to katakana, variant kanji folded (:data:`VARIANT_KANJI`), every space (ASCII, U+3000, NBSP) and
  middle dot removed. Kanji and kana stay separate fields: readings are never guessed.
  :func:`swapped_names` gives the key of the other name order for two-part names ("Taro Yamada" vs
  "Yamada Taro", "太郎 山田" vs "山田 太郎").
- ``phone``: E.164 via ``phonenumbers`` (region JP); ``None`` when not a possible number.
- ``email``: NFKC, stripped, casefolded.
- ``birthday``: ISO ``YYYY-MM-DD`` from the common written forms, Japanese eras included.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

# Variant (異体字) kanji common in Japanese names, folded to the everyday form. The one table: add here.
# NFKC already folds the compatibility ideographs (U+F900…) except the twelve "unified" ones such as 﨑.
VARIANT_KANJI: dict[str, str] = {
    "髙": "高",
    "﨑": "崎",
    "嵜": "崎",
    "碕": "崎",
    "邊": "辺",
    "邉": "辺",
    "齋": "斎",
    "齊": "斎",
    "濵": "浜",
    "濱": "浜",
    "德": "徳",
    "澤": "沢",
    "嶋": "島",
    "嶌": "島",
    "廣": "広",
    "國": "国",
    "櫻": "桜",
    "瀨": "瀬",
    "冨": "富",
    "惠": "恵",
    "槇": "槙",
    "眞": "真",
    "藏": "蔵",
    "實": "実",
    "壽": "寿",
    "彌": "弥",
    "圓": "円",
    "峯": "峰",
    "龍": "竜",
    "淸": "清",
    "綠": "緑",
    "榮": "栄",
    "曾": "曽",
    "桒": "桑",
    "舘": "館",
    "冩": "写",
    "傳": "伝",
    "將": "将",
    "萬": "万",
    "與": "与",
    "條": "条",
    "增": "増",
}
_KANA_SHIFT = 0x60  # ぁ (U+3041) + 0x60 = ァ (U+30A1)
_FOLD = str.maketrans(
    {
        **{chr(c): chr(c + _KANA_SHIFT) for c in range(0x3041, 0x3097)},  # hiragana → katakana
        "ゝ": "ヽ",
        "ゞ": "ヾ",
        **VARIANT_KANJI,
    }
)
# Separators between family and given name, removed for the key: every Unicode space and middle dots.
_NAME_SEP = re.compile(r"[\s\u3000\u00a0・･·,、]+")
_PHONE_EXT = re.compile(r"\s*(?:内線|ext\.?|extension|x|#)\s*[0-9]+\s*$", re.IGNORECASE)
_PHONE_SEPARATORS = str.maketrans(dict.fromkeys(" -‐‑‒–—―−ー－ｰ~〜～().[]（）/・\u3000"))
# Everything phonenumbers treats as punctuation in a number, plus the dash look-alikes of Japanese text.
_PHONE_PUNCT = re.compile(r"[\s\-‐‑‒–—―−ー－ｰ~〜～().\[\]（）/・]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def nfkc(value: str) -> str:
    """NFKC, then strip: the first step of every key."""
    return unicodedata.normalize("NFKC", value).strip()


def name_tokens(value: str | None) -> list[str]:
    """The folded parts of a name split at its separators (``[]`` for an empty value)."""
    if value is None:
        return []
    text = nfkc(value).casefold().translate(_FOLD)
    return [t for t in _NAME_SEP.split(text) if t]


def name_key(value: str | None) -> str | None:
    """The comparison key of a kanji, romaji or kana name (see the module docstring)."""
    tokens = name_tokens(value)
    return "".join(tokens) or None


def _per_distinct(fn: Callable[[Any], str | None], values: Iterable[Any]) -> list[str | None]:
    """``fn`` over a column, computed once per distinct value (names and birthdays repeat a lot)."""
    values = list(values)
    keys = {v: fn(v) for v in set(values)}
    return [keys[v] for v in values]


def normalize_names(values: Iterable[str | None]) -> list[str | None]:
    """:func:`name_key` over a column (``name`` and ``name_kana`` alike)."""
    return _per_distinct(name_key, values)


def swapped_names(values: Iterable[str | None]) -> list[str | None]:
    """The key with the two name parts swapped, for values written as exactly two parts; else ``None``.

    "Taro Yamada" → ``yamadataro``; "太郎 山田" → ``山田太郎``. A name with no separator cannot be split
    without guessing, so it has no alternative.
    """
    out: list[str | None] = []
    for v in values:
        tokens = name_tokens(v)
        out.append(tokens[1] + tokens[0] if len(tokens) == 2 and tokens[0] != tokens[1] else None)
    return out


def phone_e164(value: str | int | None) -> str | None:
    """One phone number as E.164 (region JP), or ``None`` when it is not a possible number."""
    if value is None:
        return None
    text = nfkc(str(value))
    if not text:
        return None
    compact = text.translate(_PHONE_SEPARATORS)
    if (
        len(compact) in (10, 11)
        and compact.isascii()
        and compact.isdigit()
        and compact[0] == "0"
        and compact[1] > "1"
    ):
        # The usual domestic shape 0[2-9]…: exactly what phonenumbers returns for it (tested), ~50x faster.
        return "+81" + compact[1:]
    if compact.startswith("+810") and "(0)" in text:
        compact = "+81" + compact[4:]  # +81(0)90…: the trunk 0 written in brackets, as phonenumbers reads it
    if (
        len(compact) in (12, 13)
        and compact.startswith("+81")
        and compact.isascii()
        and compact[1:].isdigit()
        and compact[3] > "1"
    ):
        # The same numbers written internationally (+81 90-1234-5678): the same shortcut.
        return compact
    text = _PHONE_EXT.sub("", text)  # 内線 / ext: the line, not the person
    compact = _PHONE_PUNCT.sub("", text)
    if compact.startswith("+81(0)") or compact.startswith("81(0)"):
        compact = compact.replace("(0)", "", 1)
    try:
        number = phonenumbers.parse(compact, "JP")
    except NumberParseException:
        return None
    if number.country_code == 81:
        # Japanese subscriber numbers have 9 (landline, 0120) or 10 (mobile, 050, 0800) digits after the
        # trunk 0. Possible-length rather than full validation: the operator ranges change over time and
        # an unallocated-looking number in a dump is still that person's number.
        if not (phonenumbers.is_possible_number(number) and 9 <= len(str(number.national_number)) <= 10):
            return None
    elif not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalize_phones(values: Iterable[str | int | None]) -> list[str | None]:
    """:func:`phone_e164` over a column."""
    return [phone_e164(v) for v in values]


def email_key(value: str | None) -> str | None:
    """NFKC, strip, casefold; ``None`` unless it looks like ``local@domain``."""
    if value is None:
        return None
    text = nfkc(value).casefold()
    if text.startswith("mailto:"):
        text = text[7:]
    return text if _EMAIL.match(text) else None


def normalize_emails(values: Iterable[str | None]) -> list[str | None]:
    """:func:`email_key` over a column."""
    return [email_key(v) for v in values]


_ERAS = {"明治": 1867, "大正": 1911, "昭和": 1925, "平成": 1988, "令和": 2018, "m": 1867, "t": 1911}
_ERAS |= {"s": 1925, "h": 1988, "r": 2018}
_DATE_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ t].*)?")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_ERA = re.compile(
    r"(明治|大正|昭和|平成|令和|[mtshr])\s*(\d{1,2}|元)\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
)


def birthday_iso(value: str | date | None) -> str | None:
    """A date of birth as ``YYYY-MM-DD`` (1985/01/02, 1985-1-2, 1985年1月2日, 昭和60年1月2日, S60.1.2,
    19850102, an ISO timestamp); ``None`` when it is not a real calendar date."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    text = nfkc(value).casefold()
    year: int | None = None
    if (m := _DATE_YMD.fullmatch(text)) or (m := _DATE_COMPACT.fullmatch(text)):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _DATE_ERA.fullmatch(text):
        year = _ERAS[m[1]] + (1 if m[2] == "元" else int(m[2]))
        month, day = int(m[3]), int(m[4])
    if year is None:
        return None
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def normalize_birthdays(values: Iterable[str | date | None]) -> list[str | None]:
    """:func:`birthday_iso` over a column."""
    return _per_distinct(birthday_iso, values)


def address_key(value: str | None) -> str | None:
    """NFKC without any spaces (addresses are kept for display and review, not indexed)."""
    if value is None:
        return None
    return "".join(nfkc(value).split()) or None


NORMALIZERS: dict[str, Callable[[Sequence[str | None]], list[str | None]]] = {
    "name": normalize_names,
    "name_kana": normalize_names,
    "phone": normalize_phones,
    "email": normalize_emails,
    "birthday": normalize_birthdays,
    "address": lambda values: [address_key(v) for v in values],
}


def normalize_field(field: str, values: Sequence[str | None]) -> list[str | None]:
    """The keys of one column of ``field`` (one of :data:`NORMALIZERS`)."""
    try:
        fn = NORMALIZERS[field]
    except KeyError:
        raise ValueError(f"no normaliser for field {field!r}") from None
    return fn(values)
