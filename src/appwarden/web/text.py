"""JSON request bodies hold Unicode text only.

JSON can spell a lone UTF-16 surrogate (``"\\ud800"``) that no UTF-8 encoder accepts, so such a string
would fail later — writing it to the database, rendering it — as a 500. Bodies are checked up front and
refused as 422 ``invalid_parameter`` instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError


def _surrogate_at(value: Any, where: str) -> str | None:
    """The location of the first string (key or value) in ``value`` that is not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _surrogate_at(key, where or "body") or _surrogate_at(item, f"{where}.{key}".lstrip("."))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _surrogate_at(item, f"{where}.{i}".lstrip("."))
            if found:
                return found
    return None


class Body(BaseModel):
    """Base of every JSON request body: no string in it, at any depth, holds a lone surrogate."""

    @model_validator(mode="before")
    @classmethod
    def _unicode_only(cls, data: Any) -> Any:
        where = _surrogate_at(data, "")
        if where is not None:
            raise PydanticCustomError(
                "invalid_unicode", "{where} is not valid Unicode text (lone surrogate)", {"where": where}
            )
        return data
