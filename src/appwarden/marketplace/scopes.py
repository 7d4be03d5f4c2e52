"""Scopes: ``customers.<field>:<mode>`` plus a few resource scopes. Pure functions only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from appwarden.errors import InvalidInput
from appwarden.platform.customer_rows import PERSON_FIELDS

# Every person field of the platform's customer row is a scope (the platform owns the list).
CUSTOMER_FIELDS: tuple[str, ...] = PERSON_FIELDS
PII_FIELDS: frozenset[str] = frozenset(CUSTOMER_FIELDS[:6])
RESOURCE_SCOPES: frozenset[str] = frozenset({"transactions:read", "products:read", "stores:read"})

# What the ``masked`` mode hands over, per field: a sample value and its masked form as the broker
# masks it (``tests/test_consent_disclosure.py`` holds them to ``broker.service.MASKERS``). Consent and
# console pages show the field's own example, never another field's.
MASKED_EXAMPLES: dict[str, tuple[str, str]] = {
    "name": ("山田 太郎", "山田 **"),
    "name_kana": ("ヤマダ タロウ", "ヤマダ **"),
    "phone": ("090-1234-5678", "090-****-5678"),
    "email": ("yamada@example.com", "y***@example.com"),
    "address": ("東京都千代田区1-1", "東京都***"),
    "birthday": ("1985-04-01", "1985-**-**"),
}


class Mode(StrEnum):
    """How a field is delivered: in full, masked, or as a per-app pseudonym."""

    RAW = "raw"
    MASKED = "masked"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class FieldScope:
    field: str
    mode: Mode

    def __str__(self) -> str:
        return f"customers.{self.field}:{self.mode.value}"


def parse_scope(text: str) -> FieldScope | str:
    """Parse one scope: a :class:`FieldScope` for customer fields, the string for resource scopes."""
    if text in RESOURCE_SCOPES:
        return text
    head, sep, mode = text.partition(":")
    resource, dot, field = head.partition(".")
    if not (sep and dot) or resource != "customers":
        raise InvalidInput(f"unknown scope {text!r}", code="invalid_scope")
    if field not in CUSTOMER_FIELDS:
        raise InvalidInput(f"unknown customer field {field!r} in scope {text!r}", code="invalid_scope")
    try:
        parsed = Mode(mode)
    except ValueError:
        raise InvalidInput(f"unknown mode {mode!r} in scope {text!r}", code="invalid_scope") from None
    if field not in PII_FIELDS and parsed is not Mode.RAW:
        # Points, rank and gender are not identifying; masking or tokenising them means nothing.
        raise InvalidInput(f"field {field!r} is only delivered raw", code="invalid_scope")
    return FieldScope(field, parsed)


def parse_scopes(scopes: Iterable[str] | str) -> list[str]:
    """Validate and normalise a scope list (space-separated string or iterable), keeping order.

    A field may be granted in one mode only.
    """
    items = scopes.split() if isinstance(scopes, str) else list(scopes)
    seen_fields: dict[str, str] = {}
    out: list[str] = []
    for item in items:
        parsed = parse_scope(item)
        if isinstance(parsed, FieldScope):
            previous = seen_fields.get(parsed.field)
            if previous is not None and previous != str(parsed):
                raise InvalidInput(
                    f"field {parsed.field!r} requested in two modes ({previous}, {parsed})",
                    code="invalid_scope",
                )
            seen_fields[parsed.field] = str(parsed)
        if str(parsed) not in out:
            out.append(str(parsed))
    return out


def field_modes(scopes: Iterable[str]) -> dict[str, Mode]:
    """Map each customer field in ``scopes`` to its mode (resource scopes ignored)."""
    result: dict[str, Mode] = {}
    for item in scopes:
        parsed = parse_scope(item)
        if isinstance(parsed, FieldScope):
            result[parsed.field] = parsed.mode
    return result


def effective_scopes(approved: Iterable[str], consented: Iterable[str]) -> list[str]:
    """What the broker may deliver: the app's approved scopes ∩ the company's consent, nothing else."""
    allowed = set(approved)
    return [s for s in consented if s in allowed]
