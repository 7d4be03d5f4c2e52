"""Dump reader: formats, encodings, messy and missing headers, split names, broken files, streaming."""

from __future__ import annotations

import csv
import inspect
import json
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from appwarden.attribution.columns import CONTACT, recognise_header
from appwarden.attribution.formats import DumpError
from appwarden.attribution.reader import Dump, read_dump
from appwarden.errors import InvalidInput

PEOPLE = [
    (
        "山田 太郎",
        "ヤマダ タロウ",
        "090-1234-5678",
        "taro@example.jp",
        "1985/01/02",
        "東京都千代田区丸の内1-1",
    ),
    (
        "高橋 花子",
        "タカハシ ハナコ",
        "080-2222-3333",
        "hana@example.jp",
        "1990-03-04",
        "大阪府大阪市北区梅田2-2",
    ),
    ("佐藤 健", "サトウ ケン", "070-4444-5555", "ken@example.jp", "1979/12/31", "北海道札幌市中央区3-3"),
    (
        "渡邉 美咲",
        "ワタナベ ミサキ",
        "03-1234-5678",
        "misaki@example.jp",
        "2001-7-7",
        "福岡県福岡市博多区4-4",
    ),
]
HEADER = ["氏名", "フリガナ", "TEL", "メールアドレス", "生年月日", "住所", "ランク"]
FIELDS = ["name", "name_kana", "phone", "email", "birthday", "address"]


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def table(header: bool = True) -> list[list[str]]:
    body = [[*p, "gold"] for p in PEOPLE]
    return [HEADER, *body] if header else body


def all_values(dump: Dump) -> dict[str, list[list[str | None]]]:
    """Every batch's columns concatenated (fine for the small files of these tests)."""
    out: dict[str, list[list[str | None]]] = {}
    for batch in dump:
        for field, cols in batch.values.items():
            merged = out.setdefault(field, [[] for _ in cols])
            for acc, col in zip(merged, cols, strict=True):
                acc.extend(col)
    return out


def assert_people(dump: Dump) -> None:
    values = all_values(dump)
    for i, field in enumerate(FIELDS):
        assert values[field][0] == [p[i] for p in PEOPLE], field
    assert dump.rows_read == len(PEOPLE)


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("cp932", "cp932"),
        ("shift_jis", "cp932"),
        ("euc_jp", "euc_jp"),
        ("utf-16", "utf-16"),  # Python writes a BOM
    ],
)
def test_csv_in_each_encoding(tmp_path: Path, encoding: str, detected: str) -> None:
    dump = read_dump(write_csv(tmp_path / "leak.csv", table(), encoding=encoding))
    assert (dump.format, dump.encoding, dump.has_header) == ("csv", detected, True)
    assert dump.column_map() == dict(zip(HEADER[:6], FIELDS, strict=True))
    assert dump.ignored == ["ランク"]
    assert_people(dump)


@pytest.mark.parametrize("encoding", ["cp932", "euc_jp"])
def test_legacy_encodings_told_apart_on_kana_only_text(tmp_path: Path, encoding: str) -> None:
    """Kana-only content is where Shift_JIS and EUC-JP bytes both decode: plausibility must decide."""
    rows = [["カナ", "電話"]] + [[p[1], p[2]] for p in PEOPLE] * 3
    dump = read_dump(write_csv(tmp_path / "kana.csv", rows, encoding=encoding))
    assert dump.encoding == encoding
    assert all_values(dump)["name_kana"][0][:4] == [p[1] for p in PEOPLE]


def test_legacy_bytes_deep_in_an_ascii_head_are_found(tmp_path: Path) -> None:
    """The encoding is decided on chunks spread through the file, not the head alone."""
    rows = [["name", "phone"]] + [["Taro Yamada", f"090-0000-{i % 10000:04d}"] for i in range(20_000)]
    rows += [[p[0], p[2]] for p in PEOPLE]
    dump = read_dump(write_csv(tmp_path / "late.csv", rows, encoding="cp932"))
    assert dump.encoding == "cp932"
    assert all_values(dump)["name"][0][-4:] == [p[0] for p in PEOPLE]


def test_tsv(tmp_path: Path) -> None:
    dump = read_dump(write_csv(tmp_path / "leak.txt", table(), delimiter="\t", encoding="cp932"))
    assert (dump.format, dump.encoding) == ("tsv", "cp932")
    assert_people(dump)


def _records() -> list[dict[str, str]]:
    return [dict(zip(HEADER, [*p, "gold"], strict=True)) for p in PEOPLE]


@pytest.mark.parametrize("wrapped", [False, True])
def test_json_array_and_data_wrapper(tmp_path: Path, wrapped: bool) -> None:
    body = {"count": 4, "data": _records()} if wrapped else _records()
    path = tmp_path / "leak.json"
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
    dump = read_dump(path)
    assert dump.format == "json"
    assert_people(dump)


@pytest.mark.parametrize("encoding", ["utf-8", "cp932", "utf-16"])
def test_json_lines(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "leak.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in _records()]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    dump = read_dump(path)
    assert (dump.format, dump.encoding) == ("jsonl", encoding)
    assert_people(dump)


def test_json_in_shift_jis_and_nested_objects(tmp_path: Path) -> None:
    records = [
        {"person": {"name": p[0], "kana": p[1]}, "contact": {"tel": p[2], "mail": p[3]}, "birthday": p[4]}
        for p in PEOPLE
    ]
    path = tmp_path / "nested.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="cp932")
    dump = read_dump(path)
    assert dump.encoding == "cp932"
    assert dump.column_map() == {
        "person.name": "name",
        "person.kana": "name_kana",
        "contact.tel": "phone",
        "contact.mail": "email",
        "birthday": "birthday",
    }
    values = all_values(dump)
    assert values["phone"][0] == [p[2] for p in PEOPLE]


def test_xlsx_with_numbers_and_dates(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.title = "表紙"  # an empty cover sheet comes first
    ws = wb.create_sheet("会員")
    ws.append(["会員名", "携帯電話", "E-mail", "誕生日", "ポイント"])
    for p in PEOPLE:
        y, m, d = (int(x) for x in p[4].replace("/", "-").split("-"))
        # Excel keeps phones as numbers (leading zero lost) and birthdays as dates.
        ws.append([p[0], int(p[2].replace("-", "")), p[3], datetime(y, m, d), 100])
    path = tmp_path / "leak.xlsx"
    wb.save(path)
    dump = read_dump(path)
    assert (dump.format, dump.encoding) == ("xlsx", None)
    assert dump.column_map() == {
        "会員名": "name",
        "携帯電話": "phone",
        "E-mail": "email",
        "誕生日": "birthday",
    }
    values = all_values(dump)
    assert values["phone"][0][0] == "9012345678"
    assert values["birthday"][0][0] == "1985-01-02"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        *[
            (h, ("name", 0))
            for h in [
                "氏名",
                "名前",
                "お名前",
                "顧客名",
                "会員名",
                "name",
                "Full Name",
                "NAME",
                "お名前（漢字）",
            ]
        ],
        *[
            (h, ("name_kana", 0))
            for h in ["フリガナ", "カナ", "氏名カナ", "ふりがな", "お名前（カナ）", "Kana", "ﾌﾘｶﾞﾅ"]
        ],
        *[
            (h, ("phone", 0))
            for h in ["電話番号", "TEL", "Tel.", "携帯", "携帯電話", "phone", "Mobile", "電話番号（自宅）"]
        ],
        *[
            (h, ("email", 0))
            for h in ["メール", "メールアドレス", "E-mail", "email", "Ｅ－ｍａｉｌ", "携帯メール"]
        ],
        *[(h, ("address", 0)) for h in ["住所", "address", "ご住所"]],
        *[(h, ("birthday", 0)) for h in ["生年月日", "誕生日", "birthday", "Date of Birth"]],
        ("姓", ("name", 1)),
        ("名", ("name", 2)),
        ("Last Name", ("name", 1)),
        ("first_name", ("name", 2)),
        ("セイ", ("name_kana", 1)),
        ("メイ", ("name_kana", 2)),
        ("連絡先", (CONTACT, 0)),
        ("店舗名", None),
        ("ポイント", None),
        ("", None),
    ],
)
def test_messy_headers(header: str, expected: tuple[str, int] | None) -> None:
    assert recognise_header(header) == expected


@pytest.mark.parametrize(("column", "field"), [(2, "phone"), (3, "email")])
def test_contact_column_decided_by_content(tmp_path: Path, column: int, field: str) -> None:
    rows = [["名前", "連絡先"]] + [[p[0], p[column]] for p in PEOPLE]
    dump = read_dump(write_csv(tmp_path / "c.csv", rows))
    assert dump.column_map() == {"名前": "name", "連絡先": field}


def test_headerless_file_recognised_by_content(tmp_path: Path) -> None:
    dump = read_dump(write_csv(tmp_path / "noheader.csv", table(header=False), encoding="cp932"))
    assert dump.has_header is False
    assert dump.column_map() == {f"column {i + 1}": f for i, f in enumerate(FIELDS)}
    assert dump.ignored == ["column 7"]
    assert_people(dump)


def test_headerless_romaji_names(tmp_path: Path) -> None:
    rows = [["Taro Yamada", "090-1234-5678"], ["Hanako Takahashi", "080-2222-3333"]]
    dump = read_dump(write_csv(tmp_path / "romaji.csv", rows))
    assert dump.has_header is False
    assert dump.column_map() == {"column 1": "name", "column 2": "phone"}


def test_unknown_headers_recognised_by_content(tmp_path: Path) -> None:
    rows = [["col_a", "col_b", "col_c"]] + [[p[2], p[3], p[1]] for p in PEOPLE]
    dump = read_dump(write_csv(tmp_path / "u.csv", rows))
    assert dump.has_header is True
    assert dump.column_map() == {"col_a": "phone", "col_b": "email", "col_c": "name_kana"}
    assert next(iter(dump)).column("phone") == [p[2] for p in PEOPLE]


def test_store_and_id_columns_are_ignored_by_name_not_guessed_from_content(tmp_path: Path) -> None:
    # A store called 「千代田区店」 looks like an address; its header says it is the store, not the person.
    rows = [["顧客名", "電話番号", "登録店舗", "会員番号"]]
    rows += [[p[0], p[2], "坂本通信 千代田区神田店", f"M{i:05d}"] for i, p in enumerate(PEOPLE)]
    dump = read_dump(write_csv(tmp_path / "store.csv", rows, encoding="cp932"))
    assert dump.column_map() == {"顧客名": "name", "電話番号": "phone"}
    assert next(iter(dump)).column("address") is None


def test_split_name_columns_are_joined(tmp_path: Path) -> None:
    rows = [["セイ", "メイ", "姓", "名", "電話番号"]]
    rows += [[*p[1].split(), *p[0].split(), p[2]] for p in PEOPLE]
    dump = read_dump(write_csv(tmp_path / "split.csv", rows))
    batch = next(iter(dump))
    assert batch.values["name"] == [[p[0] for p in PEOPLE]]
    assert batch.column("name_kana") == [p[1] for p in PEOPLE]
    assert batch.column("email") is None


def test_blank_lines_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "氏名,電話番号,メモ\n\n山田 太郎,090-1234-5678\n,,\n佐藤 健,070-4444-5555,x,extra\n", encoding="utf-8"
    )
    batch = next(iter(read_dump(path)))
    assert batch.column("name") == ["山田 太郎", "佐藤 健"]
    assert batch.column("phone") == ["090-1234-5678", "070-4444-5555"]


def _bad(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DumpError) as info:
        list(read_dump(path))
    err = info.value
    assert isinstance(err, InvalidInput) and err.status == 422
    assert "\n" not in err.detail and name in err.detail
    return err.code


def _truncated_json() -> bytes:
    return json.dumps(_records(), ensure_ascii=False).encode()[:-30]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("empty.csv", b"", "dump_empty"),
        ("blank.csv", b"  \r\n\n ", "dump_empty"),
        ("header-only.csv", "氏名,電話番号\n".encode(), "dump_empty"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "dump_binary"),
        ("garbage.csv", b"name,phone\n" + b"\xff\xfe\xfd\x80\x81" * 50, "dump_undecodable"),
        ("numbers.csv", b"a,b,c\n1,2,3\n4,5,6\n", "dump_no_fields"),
        ("truncated.json", _truncated_json(), "dump_truncated"),
        ("broken.json", b'[{"name": "x",, }]', "dump_invalid_json"),
        ("truncated.jsonl", b'{"name": "\xe5\xb1\xb1\xe7\x94\xb0"}\n{"name": "x', "dump_truncated"),
        ("empty-array.json", b"[]", "dump_empty"),
        ("no-array.json", b'{\n"a": 1\n}', "dump_no_records"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "dump_unsupported"),
        ("corrupt.xlsx", b"PK\x03\x04" + b"not really a zip" * 10, "dump_unreadable"),
    ],
)
def test_broken_files_name_their_problem(tmp_path: Path, name: str, content: bytes, code: str) -> None:
    assert _bad(tmp_path, name, content) == code


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DumpError) as info:
        read_dump(tmp_path / "nope.csv")
    assert info.value.code == "dump_not_found"


def test_bad_bytes_past_the_sample_fail_while_streaming(tmp_path: Path) -> None:
    """Corruption the sample missed surfaces from the iterator as a one-line DumpError, not a traceback."""
    path = tmp_path / "late-garbage.csv"
    rows = "".join(f"山田 太郎,090-0000-{i % 10000:04d}\n" for i in range(100_000)).encode()
    cut = rows.index(b"\n", len(rows) * 3 // 5) + 1  # 60% in: between the sampled chunks (at 50% and 75%)
    path.write_bytes("氏名,電話\n".encode() + rows[:cut] + b"\xff\xff\n" + rows[cut:])
    dump = read_dump(path)
    assert dump.encoding == "utf-8"
    with pytest.raises(DumpError) as info:
        for _ in dump:
            pass
    assert info.value.code == "dump_undecodable" and "\n" not in info.value.detail


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_streams_in_bounded_batches(tmp_path: Path, fmt: str) -> None:
    """The first batch arrives after reading a small part of the file, and batches are a lazy generator."""
    n, batch_rows = 200_000, 10_000
    path = tmp_path / f"big.{fmt}"
    with path.open("w", encoding="utf-8") as fh:
        if fmt == "csv":
            fh.write("氏名,電話番号\n")
            fh.writelines(f"会員 {i},090-{i // 10000:04d}-{i % 10000:04d}\n" for i in range(n))
        else:
            rows = (json.dumps({"氏名": f"会員 {i}", "TEL": f"090-0000-{i % 10000:04d}"}) for i in range(n))
            if fmt == "jsonl":
                fh.writelines(r + "\n" for r in rows)
            else:
                fh.write("[")
                fh.write(",\n".join(rows))
                fh.write("]")
    seen: list[tuple[int, int]] = []
    dump = read_dump(path, on_progress=lambda done, total: seen.append((done, total)))
    batches = dump.batches(batch_rows)
    assert inspect.isgenerator(batches)
    first = next(batches)
    total = path.stat().st_size
    assert len(first) == batch_rows and first.start == 0
    assert seen and seen[-1][1] == total
    assert seen[-1][0] < total / 4  # only a bounded prefix has been read so far
    count, last = len(first), first
    for batch in batches:
        assert len(batch) <= batch_rows
        count, last = count + len(batch), batch
    assert count == n and dump.rows_read == n
    assert last.column("name") == [f"会員 {i}" for i in range(n - batch_rows, n)]
    assert seen[-1][0] == total
