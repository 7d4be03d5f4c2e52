"""Japanese line breaking (禁則処理) for report PDFs: pure function tests over fixed-width characters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appwarden.incident.linebreak import NO_LINE_END, NO_LINE_START, break_spans, is_wide, wrap_runs


def _width(char: str, bold: bool = False) -> float:
    # Full-width characters are one em, the rest half an em: what a Japanese font's metrics look like.
    return 1.0 if is_wide(char) else 0.5


def _lines(text: str, width: float) -> list[str]:
    return ["".join(t for t, _ in line) for line in wrap_runs([(text, False)], _width, width)]


def test_closing_punctuation_is_pushed_down_with_the_character_before_it() -> None:
    # Five per line: a plain character break would start line 2 with 「、」.
    assert _lines("あいうえお、かきくけこ。", 5) == ["あいうえ", "お、かきく", "けこ。"]
    # The same for a closing bracket and a full stop that would fall at a line start.
    assert _lines("未実施（準備中）。本人へ", 7) == ["未実施（準備", "中）。本人へ"]


def test_an_opening_bracket_never_ends_a_line() -> None:
    assert _lines("あいうえ「かき」", 5) == ["あいうえ", "「かき」"]


def test_latin_words_and_numbers_stay_whole_and_spaces_are_dropped_at_breaks() -> None:
    assert _lines("提供は API経由 です", 4) == ["提供は", "API経由", "です"]
    assert _lines("電話番号 114,951人", 6) == ["電話番号", "114,951人"]
    # A run longer than the line with no break in it is cut where it overflows (an id, a URL).
    assert _lines("co_ABCDEFGHIJ", 3) == ["co_ABC", "DEFGHI", "J"]


def test_lines_fill_the_width_instead_of_breaking_at_the_first_space() -> None:
    text = "調査中。委託先が提供するアプリに API経由で提供された個人データが外部に流出したおそれがある。"
    lines = _lines(text, 12)
    assert all(sum(_width(c) for c in line) > 12 - 2 for line in lines[:-1]), lines
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_bold_runs_keep_their_style_across_a_break() -> None:
    lines = wrap_runs([("貴社の会員のうち", False), ("10,000人", True), ("のデータ", False)], _width, 10)
    assert lines == [[("貴社の会員のうち", False)], [("10,000人", True), ("のデータ", False)]]
    assert wrap_runs([("一行目\n二行目", False)], _width, 10) == [[("一行目", False)], [("二行目", False)]]


_japanese = st.text(
    alphabet=st.sampled_from(
        list("漏えい等報告書速報案氏名電話番号会員アプリ ABC12") + sorted(NO_LINE_START)[:20]
    )
    | st.sampled_from(sorted(NO_LINE_END)),
    max_size=120,
)


@given(text=_japanese, width=st.integers(min_value=3, max_value=30))
def test_any_text_keeps_every_character_and_obeys_the_rules_where_it_can(text: str, width: int) -> None:
    chars = list(text)
    spans = break_spans(chars, [_width(c) for c in chars], width)
    kept = "".join(text[a:b] for a, b in spans)
    assert kept.replace(" ", "") == text.replace(" ", "")  # only spaces at breaks are dropped
    for n, (a, b) in enumerate(spans):
        line = text[a:b]
        assert line and line[0] != " " and line[-1] != " "
        if n > 0 and line[0] in NO_LINE_START:
            # Only a forced break may start a line with a closing mark: after a one-character line, or
            # after spaces (a space before 「、」 is no place to break either).
            prev_a, prev_b = spans[n - 1]
            assert prev_b - prev_a == 1 or " " in text[prev_b:a], (text, spans)
