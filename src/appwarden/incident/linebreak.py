"""Line breaking for Japanese documents (禁則処理, after JIS X 4051): a line may break between any two
Japanese characters, and at spaces, but never inside a Latin word or number, never before closing
punctuation (、。」）…, small kana, ー) and never after an opening bracket (「（…).

fpdf2 breaks only at spaces (or anywhere, in its character mode), which leaves 「、」 and 「。」 at the start
of lines and, when justified, wide gaps around the few spaces of a Japanese sentence. The PDF renderer
breaks its lines here instead and hands fpdf2 lines that already fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# 行頭禁則: closing brackets, commas and full stops, middle dots, ?!, iteration marks, the prolonged sound
# mark and small kana — none may begin a line.
NO_LINE_START = frozenset(
    "、。，．,.)）]］}｝〕〉》」』】〙〗〟’”｠»"
    "・：；:;？！?!‼⁇⁈⁉"
    "ヽヾゝゞ々〻ー"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
    "%％"
)
# 行末禁則: opening brackets may not end a line.
NO_LINE_END = frozenset("(（[［{｛〔〈《「『【〘〖〝‘“｟«")

Run = tuple[str, bool]  # (text, bold)


def is_wide(char: str) -> bool:
    """Japanese (CJK, kana, full-width forms, CJK punctuation): a line may break on either side."""
    return ord(char) >= 0x2E80


def can_break_before(chars: Sequence[str], i: int) -> bool:
    """Whether a line may end just before ``chars[i]`` (0 < i < len(chars))."""
    before, after = chars[i - 1], chars[i]
    if after == " ":
        return False  # break after the spaces, which then hang at the end of the line and are dropped
    if after in NO_LINE_START or before in NO_LINE_END:
        return False
    return before == " " or is_wide(before) or is_wide(after)


def break_spans(chars: Sequence[str], widths: Sequence[float], max_width: float) -> list[tuple[int, int]]:
    """Greedy line breaking: ``[start, end)`` of each line; leading and trailing spaces are left out.

    When a character overflows, the line ends at the last allowed break before it, so a closing mark that
    does not fit is pushed to the next line together with the character before it (追い出し). Only a run
    with no allowed break at all (a URL longer than the line) is cut where it overflows, still before any
    closing marks that follow it.
    """
    spans: list[tuple[int, int]] = []
    n = len(chars)
    start = 0
    while start < n:
        while start < n and chars[start] == " ":
            start += 1
        if start >= n:
            break
        width = 0.0
        end = n
        last_break = None
        for i in range(start, n):
            if i > start and can_break_before(chars, i):
                last_break = i
            # Spaces may hang past the margin: they are dropped at the end of a line.
            if i > start and chars[i] != " " and width + widths[i] > max_width:
                if last_break is not None:
                    end = last_break
                else:  # forced: still keep closing marks off the next line's start if the line allows
                    end = i
                    while end - 1 > start and chars[end] in NO_LINE_START:
                        end -= 1
                break
            width += widths[i]
        stop = end
        while stop > start and chars[stop - 1] == " ":
            stop -= 1
        spans.append((start, stop))
        start = end
    return spans


def wrap_runs(
    runs: Sequence[Run], width_of: Callable[[str, bool], float], max_width: float
) -> list[list[Run]]:
    """Break styled text into lines of at most ``max_width``; ``"\\n"`` in the text forces a break.

    ``width_of(char, bold)`` measures one character in the current font and size. Each line comes back
    as runs of the same style, so bold text keeps its boldness across a break.
    """
    lines: list[list[Run]] = []
    paragraph: list[tuple[str, bool]] = []
    for text, bold in [*runs, ("\n", False)]:
        for char in text:
            if char != "\n":
                paragraph.append((char, bold))
                continue
            chars = [c for c, _ in paragraph]
            widths = [width_of(c, b) for c, b in paragraph]
            for start, stop in break_spans(chars, widths, max_width) or [(0, 0)]:
                line: list[Run] = []
                for c, b in paragraph[start:stop]:
                    if line and line[-1][1] == b:
                        line[-1] = (line[-1][0] + c, b)
                    else:
                        line.append((c, b))
                lines.append(line)
            paragraph = []
    return lines
