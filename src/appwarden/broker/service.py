"""The broker's pure core: which fields go out in which mode, masking, and page rendering.

Everything here works on plain columns (lists of values in page order) so a page is projected column
by column: one masking pass per masked field, one AES call for every pseudonym on the page.
No SQL and no HTTP here; ``api.py`` fetches the rows and records the ledger entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from appwarden.broker import pseudonym
from appwarden.errors import Forbidden, InvalidInput
from appwarden.marketplace.scopes import CUSTOMER_FIELDS, Mode

PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip
# Every prefecture name is 3 or 4 characters and none is a prefix of another, so a set lookup of the
# first 3 and 4 characters finds it (cheaper than a regex alternation on the hot path).
_PREFECTURES = frozenset(PREFECTURES)
_PHONE_SEPARATORS = re.compile(r"[-\s()]+")
MASK = "**"


# --- masking: one value in, its masked form out (None stays None) -------------------------------


def mask_name(value: str) -> str:
    """``山田 太郎`` → ``山田 **``: the family name stays, the given name is hidden.

    A name with no separator keeps only its first character (``山田太郎`` → ``山**``), since where
    the family name ends cannot be known.
    """
    parts = value.split(None, 1)  # any Unicode whitespace, the ideographic space included
    if len(parts) == 2:
        return f"{parts[0]} {MASK}"
    return f"{value.strip()[:1]}{MASK}"


def mask_phone(value: str) -> str:
    """``090-1234-5678`` → ``090-****-5678``: area/carrier prefix and last four digits only."""
    groups = value.split("-")  # the usual 090-1234-5678 shape, without a regex
    if len(groups) < 3 or not all(groups):
        groups = [g for g in _PHONE_SEPARATORS.split(value.strip()) if g]
    if len(groups) >= 3:
        return f"{groups[0]}-****-{groups[-1]}"
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 8:
        return f"{digits[:3]}-****-{digits[-4:]}"
    return "****"


def mask_email(value: str) -> str:
    """``yamada@example.com`` → ``y***@example.com``."""
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_address(value: str) -> str:
    """``東京都千代田区1-1`` → ``東京都***``: the prefecture only."""
    text = value.lstrip()
    for size in (3, 4):
        if text[:size] in _PREFECTURES:
            return f"{text[:size]}***"
    return "***"


def mask_birthday(value: date | str) -> str:
    """``1985-04-01`` → ``1985-**-**``: the year only."""
    if isinstance(value, date):
        return f"{value.year:04d}-**-**"
    return f"{str(value)[:4]}-**-**"


MASKERS: dict[str, Callable[[Any], str]] = {
    "name": mask_name,
    "name_kana": mask_name,
    "phone": mask_phone,
    "email": mask_email,
    "address": mask_address,
    "birthday": mask_birthday,
}


# --- projection -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Projection:
    """The customer fields a response carries, each with its mode, in canonical field order."""

    fields: tuple[tuple[str, Mode], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f for f, _ in self.fields)


def plan_projection(granted: Mapping[str, Mode], requested: str | None) -> Projection:
    """The fields to deliver: every granted field, or the ``fields=`` subset of them.

    An unknown field is 422 ``invalid_parameter``; a known but ungranted one is 403
    ``insufficient_scope``; an app with no customer field at all is 403 as well (it may not even
    enumerate people).
    """
    if requested is None:
        wanted = [f for f in CUSTOMER_FIELDS if f in granted]
    else:
        items = [item.strip() for item in requested.split(",")]
        if not any(items) or any(not item for item in items):
            raise InvalidInput("fields must be a comma-separated list of field names", parameter="fields")
        unknown = [item for item in items if item not in CUSTOMER_FIELDS]
        if unknown:
            raise InvalidInput(
                f"unknown field(s): {', '.join(unknown)}", parameter="fields", allowed=list(CUSTOMER_FIELDS)
            )
        ungranted = [item for item in items if item not in granted]
        if ungranted:
            raise Forbidden(
                f"this token is not granted: {', '.join(ungranted)}",
                required_scope=[f"customers.{f}:<mode>" for f in ungranted],
            )
        wanted = [f for f in CUSTOMER_FIELDS if f in items]
    if not wanted:
        raise Forbidden("this token grants no customer field", required_scope="customers.<field>:<mode>")
    return Projection(tuple((f, granted[f]) for f in wanted))


def plan_restricted_projection(
    minted: Sequence[str], granted: Mapping[str, Mode], requested: str | None
) -> Projection:
    """The fields a restricted token's response carries: its minted fields (or the ``fields=`` subset
    of them), raw.

    A field not minted is 403 ``field_not_minted`` (a new token must be minted for it, with its
    purpose); a minted field no longer granted raw (approval or consent withdrawn since) is 403
    ``insufficient_scope``: nothing is sent rather than less than was asked for.
    """
    if requested is None:
        wanted = set(minted)
    else:
        wanted = {item.strip() for item in requested.split(",")}
        if not all(wanted):
            raise InvalidInput("fields must be a comma-separated list of field names", parameter="fields")
        unknown = sorted(wanted - set(CUSTOMER_FIELDS))
        if unknown:
            raise InvalidInput(
                f"unknown field(s): {', '.join(unknown)}", parameter="fields", allowed=list(CUSTOMER_FIELDS)
            )
        not_minted = sorted(wanted - set(minted))
        if not_minted:
            raise Forbidden(
                f"this restricted token was not minted for: {', '.join(not_minted)}",
                code="field_not_minted",
                fields=not_minted,
            )
    withdrawn = sorted(f for f in wanted if granted.get(f) is not Mode.RAW)
    if withdrawn:
        raise Forbidden(
            f"no longer granted raw: {', '.join(withdrawn)}",
            required_scope=[f"customers.{f}:raw" for f in withdrawn],
        )
    return Projection(tuple((f, Mode.RAW) for f in CUSTOMER_FIELDS if f in wanted))


def present_ids(ids: Sequence[int], column: Sequence[Any]) -> list[int]:
    """The internal ids whose value in ``column`` is not null: who actually receives that field."""
    return [i for i, v in zip(ids, column, strict=True) if v is not None]


def deliveries(
    projection: Projection, ids: Sequence[int], columns: Mapping[str, Sequence[Any]]
) -> dict[tuple[str, str], list[int]]:
    """(field, mode) → the people whose value for it is in the response (nulls are not deliveries)."""
    out: dict[tuple[str, str], list[int]] = {}
    for field, mode in projection.fields:
        people = present_ids(ids, columns[field])
        if people:
            out[(field, mode.value)] = people
    return out


def render_customers(
    projection: Projection,
    ids: Sequence[int],
    columns: Mapping[str, Sequence[Any]],
    *,
    key: bytes,
    company_id: int,
) -> list[dict[str, Any]]:
    """The response rows: the app's own id plus each projected field in its mode.

    Pseudonyms for the id column and every token-mode column are made in a single AES call.
    """
    token_fields = [f for f, m in projection.fields if m is Mode.TOKEN]
    present: dict[str, np.ndarray] = {}
    for field in token_fields:
        present[field] = np.fromiter((v is not None for v in columns[field]), dtype=bool, count=len(ids))
    id_array = np.asarray(ids, dtype=np.int64)
    encoded = pseudonym.encode_column(
        key,
        company_id,
        [("id", ids), *[(f, id_array[present[f]].tolist()) for f in token_fields]],
    )
    out_columns: list[Sequence[Any]] = [encoded[0]]
    names: list[str] = ["id"]
    for field, mode in projection.fields:
        values = columns[field]
        if mode is Mode.RAW:
            out_columns.append(values)
        elif mode is Mode.MASKED:
            masker = MASKERS[field]
            out_columns.append([None if v is None else masker(v) for v in values])
        else:
            tokens = iter(encoded[1 + token_fields.index(field)])
            out_columns.append([None if v is None else next(tokens) for v in values])
        names.append(field)
    return [dict(zip(names, row, strict=True)) for row in zip(*out_columns, strict=True)]
