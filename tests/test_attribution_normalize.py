"""Normalisation: every written shape of the same value gives the same key; different values do not."""

from __future__ import annotations

import random
from datetime import date

import phonenumbers
import pytest

from appwarden.blind_index.normalize import (
    VARIANT_KANJI,
    birthday_iso,
    email_key,
    name_key,
    normalize_field,
    normalize_names,
    normalize_phones,
    phone_e164,
    swapped_names,
)

MOBILE = "+819012345678"


@pytest.mark.parametrize(
    "written",
    [
        "090-1234-5678",
        "09012345678",
        "090 1234 5678",
        "+81 90-1234-5678",
        "+81-90-1234-5678",
        "+819012345678",
        "+81(0)90-1234-5678",
        "+81 (0) 90 1234 5678",
        "０９０－１２３４－５６７８",  # full-width digits and hyphen-minus
        "０９０ー１２３４ー５６７８",  # katakana long vowel mark used as a dash
        "090−1234−5678",  # U+2212 minus sign
        "090‐1234‐5678",  # U+2010 hyphen
        "090–1234–5678",  # en dash
        "090ｰ1234ｰ5678",  # half-width long vowel mark
        "(090) 1234-5678",
        "（090）1234-5678",
        "090.1234.5678",
        "090-1234-5678 内線12",
        "090-1234-5678内線 305",
        "090-1234-5678 ext. 12",
        "090-1234-5678 x12",
        " 090-1234-5678 ",
        "9012345678",  # a spreadsheet that ate the leading zero
    ],
)
def test_every_phone_shape_is_the_same_e164(written: str) -> None:
    assert phone_e164(written) == MOBILE


def test_landlines_and_free_dial() -> None:
    assert normalize_phones(["03-1234-5678", "06(1234)5678", "0120-123-456", "050-1234-5678"]) == [
        "+81312345678",
        "+81612345678",
        "+81120123456",
        "+815012345678",
    ]


@pytest.mark.parametrize("junk", [None, "", "  ", "abc", "123", "090-1234", "090-1234-5678-9999-1", "なし"])
def test_not_a_phone_is_none(junk: str | None) -> None:
    assert phone_e164(junk) is None


def test_fast_path_agrees_with_phonenumbers() -> None:
    """The domestic shortcut must return exactly what phonenumbers would, for every prefix and length."""
    rng = random.Random(5)
    for _ in range(3000):
        digits = (
            "0"
            + str(rng.randint(2, 9))
            + "".join(rng.choice("0123456789") for _ in range(rng.choice((8, 9))))
        )
        parsed = phonenumbers.parse(digits, "JP")
        expected = (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_possible_number(parsed)
            else None
        )
        written = f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
        assert phone_e164(written) == expected == "+81" + digits[1:]
        international = f"+81 {digits[1:3]}-{digits[3:7]}-{digits[7:]}"
        assert phone_e164(international) == expected
        assert phone_e164(f"+81(0){digits[1:3]}-{digits[3:7]}-{digits[7:]}") == expected


def test_different_phones_differ() -> None:
    assert phone_e164("090-1234-5678") != phone_e164("090-1234-5679")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("山田 太郎", "山田太郎"),
        ("山田　太郎", "山田太郎"),  # U+3000 ideographic space
        ("山田\u00a0 太郎", "山田太郎"),
        (" 山田・太郎 ", "山田太郎"),
        ("髙橋 一郎", "高橋 一郎"),
        ("山﨑 花子", "山崎 花子"),
        ("渡邊 健", "渡辺 健"),
        ("渡邉 健", "渡辺 健"),
        ("齋藤 愛", "斎藤 愛"),
        ("齊藤 愛", "斎藤 愛"),
        ("濵田 実", "浜田 実"),
        ("德永 翔", "徳永 翔"),
        ("ＴＡＲＯ　ＹＡＭＡＤＡ", "taro yamada"),
        ("Taro  Yamada", "TARO YAMADA"),
        ("やまだ たろう", "ヤマダ タロウ"),
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ　タロウ"),  # half-width katakana with a voiced mark
        ("ヤマダ・タロウ", "やまだたろう"),
    ],
)
def test_name_spellings_share_a_key(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)
    assert name_key(a) is not None


def test_different_names_and_scripts_stay_apart() -> None:
    keys = normalize_names(["山田 太郎", "山田 次郎", "山田", "ヤマダ タロウ", "yamada taro", None, "  "])
    assert len(set(keys[:5])) == 5  # kanji and kana are never equated: no reading is guessed
    assert keys[5:] == [None, None]


def test_variant_table_folds_to_everyday_forms() -> None:
    for variant, everyday in VARIANT_KANJI.items():
        assert variant != everyday
        assert name_key(variant + "田") == name_key(everyday + "田")


def test_swapped_name_order() -> None:
    assert swapped_names(["Taro Yamada"]) == [name_key("Yamada Taro")]
    assert swapped_names(["太郎　山田"]) == [name_key("山田 太郎")]
    # One part, three parts or an unsplittable name: no alternative (nothing is guessed).
    assert swapped_names(["山田太郎", "Mary Ann Smith", None, "太郎 太郎"]) == [None, None, None, None]


@pytest.mark.parametrize(
    "written",
    [" Taro.Yamada@Example.JP ", "taro.yamada@example.jp", "ＴＡＲＯ．ＹＡＭＡＤＡ＠ＥＸＡＭＰＬＥ．ＪＰ"],
)
def test_email_case_width_and_whitespace(written: str) -> None:
    assert email_key(written) == "taro.yamada@example.jp"


def test_not_an_email_is_none() -> None:
    assert [email_key(v) for v in [None, "", "taro", "a b@c.jp", "@example.jp"]] == [None] * 5


@pytest.mark.parametrize(
    "written",
    [
        "1985/01/02",
        "1985/1/2",
        "1985-1-2",
        "1985-01-02",
        "1985.01.02",
        "1985年1月2日",
        "1985 年 1 月 2 日",
        "昭和60年1月2日",
        "S60.1.2",
        "19850102",
        "１９８５／０１／０２",
        "1985-01-02T00:00:00",
        "1985-01-02 00:00:00",
    ],
)
def test_birthday_shapes(written: str) -> None:
    assert birthday_iso(written) == "1985-01-02"


def test_birthday_eras_and_nonsense() -> None:
    assert birthday_iso("平成元年1月8日") == "1989-01-08"
    assert birthday_iso("令和2年5月1日") == "2020-05-01"
    assert birthday_iso(date(1985, 1, 2)) == "1985-01-02"
    assert [birthday_iso(v) for v in ["1985/02/30", "hello", "", None, "12345678"]] == [None] * 5


def test_normalize_field_dispatch() -> None:
    assert normalize_field("phone", ["09012345678"]) == [MOBILE]
    assert normalize_field("name_kana", ["やまだ"]) == ["ヤマダ"]
    with pytest.raises(ValueError, match="gender"):
        normalize_field("gender", ["male"])
