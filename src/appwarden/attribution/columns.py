"""Which dump column holds which field: by header (messy Japanese and English spellings), else by content.

A header is compared after NFKC, casefold and removal of spaces, punctuation and symbols, so
「お名前（漢字）」, "E-mail" and "Full Name" become お名前漢字, email and fullname. Exact
spellings are looked up first (:data:`HEADERS`), then a few "contains" rules; a column no header
explains is classified by what its sampled cells look like (email, phone, date, kana, address, kanji or
romaji name).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from appwarden.blind_index.normalize import birthday_iso, email_key, nfkc, phone_e164

FIELDS = ("name", "name_kana", "phone", "email", "address", "birthday")
CONTACT = "contact"  # 連絡先: phone or email, decided by content


@dataclass(frozen=True)
class Column:
    """One column of a dump: ``field`` None means ignored; ``part`` orders split names and addresses."""

    index: int
    header: str  # as written, or "column N" (1-based) for a headerless file
    field: str | None
    part: int = 0  # 0 whole value; 1 family / first address part, 2 given / later parts …
    by: str = ""  # "header" or "content"


def _spellings(field: str, part: int, words: str) -> dict[str, tuple[str, int]]:
    return {w: (field, part) for w in words.split()}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


HEADERS: dict[str, tuple[str, int]] = {
    **_spellings(
        "name",
        0,
        "氏名 名前 お名前 おなまえ 顧客名 顧客氏名 会員名 会員氏名 "
        "氏名漢字 名前漢字 お名前漢字 漢字氏名 フルネーム "
        "利用者名 契約者名 患者名 購入者名 宛名 name fullname customername membername "
        "kanjiname namekanji 姓名",
    ),
    **_spellings(
        "name_kana",
        0,
        "フリガナ ふりがな カナ かな 氏名カナ 氏名かな 氏名フリガナ 名前カナ "
        "名前フリガナ お名前カナ お名前フリガナ カナ氏名 フリガナ氏名 顧客名カナ "
        "会員名カナ よみ ヨミ 読み よみがな ヨミガナ 読み仮名 セイメイ kana namekana "
        "furigana yomi kananame",
    ),
    **_spellings("name", 1, "姓 苗字 名字 氏 lastname familyname surname 姓漢字"),
    **_spellings("name", 2, "名 firstname givenname 名漢字"),
    **_spellings("name_kana", 1, "セイ せい 姓カナ 姓かな 姓フリガナ lastnamekana familynamekana"),
    **_spellings("name_kana", 2, "メイ めい 名カナ 名かな 名フリガナ firstnamekana givennamekana"),
    **_spellings(
        "phone",
        0,
        "電話番号 電話 tel telno phone phonenumber telephone mobile mobilephone cell cellphone 携帯 携帯電話 "
        "携帯番号 携帯電話番号 自宅電話 自宅電話番号 電話番号携帯 電話番号1 tel1 連絡先電話番号 ケータイ",
    ),
    **_spellings(
        "email",
        0,
        "メール メールアドレス email mail emailaddress mailaddress eメール "
        "eメールアドレス pcメール 携帯メール アドレス",
    ),
    **_spellings("address", 0, "住所 所在地 address 現住所 ご住所 住所1 address1"),
    **_spellings("address", 1, "都道府県 prefecture"),
    **_spellings("address", 2, "市区町村 city 住所2 address2"),
    **_spellings("address", 3, "番地 町名番地 住所3 address3"),
    **_spellings("address", 4, "建物名 建物 マンション名 building"),
    **_spellings("birthday", 0, "生年月日 誕生日 birthday birthdate dateofbirth dob 生年月日西暦 誕生日西暦"),
    **_spellings(CONTACT, 0, "連絡先 contact"),
}
# Columns that name something other than a person's identifying value (the store or company a record
# belongs to, ids, points, dates of record): recognised so their content is never guessed at — a store
# called 「渋谷区店」 is not a customer's address.
NOT_PERSONAL: frozenset[str] = _words(
    "店舗 店名 店舗名 登録店舗 所属店舗 来店店舗 利用店舗 店 加盟店 加盟店名 会社 会社名 企業名 事業者名 "
    "store storename shop shopname branch company companyname merchant "
    "会員番号 顧客番号 顧客id 会員id id no 番号 ポイント 保有ポイント points point ランク 会員ランク rank "
    "登録日 登録日時 作成日 更新日 最終来店日 createdat updatedat registeredat 備考 メモ note notes "
    "性別 gender sex"
)
NOT_PERSONAL_CONTAINS: tuple[str, ...] = ("店舗", "加盟店", "store", "shop")
# Ordered "contains" rules for headers not spelled exactly as above (mail before phone: 携帯メール).
CONTAINS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("カナ", "かな", "フリガナ", "ふりがな", "kana", "furigana"), "name_kana"),
    (("メール", "mail"), "email"),
    (("電話", "tel", "phone", "携帯", "mobile"), "phone"),
    (("住所", "address"), "address"),
    (("生年月日", "誕生日", "birth"), "birthday"),
    (("氏名", "お名前", "fullname"), "name"),
)


def header_key(text: str) -> str:
    """NFKC, casefold, without spaces, punctuation or symbols."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PZSC")


def recognise_header(text: str | None) -> tuple[str, int] | None:
    """``(field, part)`` for a header cell, ``None`` if it names nothing we know."""
    if not text:
        return None
    key = header_key(text)
    if key in HEADERS:
        return HEADERS[key]
    if not_personal(text):
        return None
    for needles, field in CONTAINS:
        if any(n in key for n in needles):
            return field, 0
    return None


def not_personal(text: str | None) -> bool:
    """Whether a header names a column that is not about the person (store, company, id, points …)."""
    if not text:
        return False
    key = header_key(text)
    return key in NOT_PERSONAL or any(n in key for n in NOT_PERSONAL_CONTAINS)


_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\u30fb\u309d\u309e\u30fd\u30fe\s]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff々〆ヶ]")
_KANJI_NAME = re.compile(r"[\u3400-\u9fff\uf900-\ufaff々〆ヶ\u3041-\u3096\u30a1-\u30fa\u30fc\s]{2,16}")
_ROMAJI_NAME = re.compile(r"[a-z]+(?:[ .'-]+[a-z]+){1,3}")
_PHONE_LIKE = re.compile(r"\+?[\d\-\s().]{9,24}(?:\s*(?:内線|ext\.?|x)\s*\d+)?")
_PREFECTURE = re.compile(r"(北海道|東京都|京都府|大阪府|[\u4e00-\u9fff]{2,3}県)")
_ADDRESS_HINT = re.compile(r"[市区町村郡丁目番地号]")
_DATE_HINT = re.compile(r"[-/.年]|^\d{8}$|^[明大昭平令mtshr]", re.IGNORECASE)


def classify(value: str | None) -> str | None:
    """The kind of value a cell looks like: a field name, or ``None`` when it is nothing recognisable."""
    if not value:
        return None
    text = nfkc(value)
    if "@" in text:
        return "email" if email_key(text) else None
    if _PHONE_LIKE.fullmatch(text) and (text.startswith(("0", "+")) or "(" in text):
        return "phone" if phone_e164(text) else None
    if any(ch.isdigit() for ch in text):
        if _DATE_HINT.search(text) and (iso := birthday_iso(text)) and "1900" <= iso[:4] <= "2030":
            return "birthday"
        if _PREFECTURE.search(text) or (_CJK.search(text) and _ADDRESS_HINT.search(text)):
            return "address"
        return None
    if _PREFECTURE.match(text) or (len(text) > 8 and _ADDRESS_HINT.search(text) and _CJK.search(text)):
        return "address"
    if _KANA.fullmatch(text) and len(text.replace(" ", "")) >= 2:
        return "name_kana"
    if _KANJI_NAME.fullmatch(text) and _CJK.search(text):
        return "name"
    if _ROMAJI_NAME.fullmatch(text.casefold()):
        return "name"
    return None


def content_kind(cells: Sequence[str | None], *, share: float = 0.6) -> str | None:
    """The kind at least ``share`` of a column's non-empty sampled cells have, else ``None``."""
    present = [c for c in cells if c]
    if not present:
        return None
    kind, count = Counter(classify(c) for c in present).most_common(1)[0]
    return kind if kind is not None and count >= share * len(present) else None


def looks_like_header(first: Sequence[str | None], kinds: Sequence[str | None]) -> bool:
    """Whether the first row is a header row rather than the first record.

    A header if any cell is a known header; not one if any cell is a phone, email or date, or if a cell
    is the same kind of value as the rest of its column (a name over names). Otherwise (unknown words
    over unrecognised values) a header.
    """
    if any(recognise_header(c) for c in first):
        return not any(classify(c) in ("phone", "email", "birthday") for c in first)
    for cell_value, kind in zip(first, kinds, strict=False):
        this = classify(cell_value)
        if this in ("phone", "email", "birthday") or (this is not None and this == kind):
            return False
    return True


def map_columns(headers: Sequence[str | None] | None, sample: Sequence[Sequence[str | None]]) -> list[Column]:
    """Columns for a dump with ``headers`` (``None`` when headerless) and sampled data rows.

    Header first; 連絡先 and unknown or missing headers by content. Fields may repeat (two phone
    columns); split names and addresses carry their ``part``.
    """
    width = max([len(headers or ())] + [len(r) for r in sample]) if (headers or sample) else 0
    columns: list[Column] = []
    for i in range(width):
        header = (headers[i] if headers and i < len(headers) else None) or ""
        label = header or f"column {i + 1}"
        known = recognise_header(header) if headers else None
        if known and known[0] != CONTACT:
            columns.append(Column(i, label, known[0], known[1], "header"))
            continue
        if headers and not_personal(header):
            columns.append(Column(i, label, None, 0, "header"))  # ignored, by its name
            continue
        kind = content_kind([row[i] if i < len(row) else None for row in sample])
        if known and kind not in ("phone", "email"):
            kind = None  # 連絡先 holding something else
        columns.append(Column(i, label, kind, 0, "content" if kind else ""))
    return columns
