"""One vocabulary: ledger entry kinds and incident timeline kinds are written through their enums.

A grep-style check over the source: a call that writes a kind (``add_timeline``, ``record_delivery`` and
the broker's ``_record``) is never given a bare string literal, so every kind written is a member of
:class:`~appwarden.incident.models.TimelineKind` or :class:`~appwarden.ledger.models.EntryKind`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from appwarden.incident.vocabulary import TimelineKind
from appwarden.ledger.vocabulary import EntryKind
from appwarden.marketplace.scopes import Mode

SRC = Path(__file__).resolve().parents[1] / "src" / "appwarden"
WRITERS = {"add_timeline", "record_delivery", "_record"}


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def test_kinds_are_never_written_as_bare_strings() -> None:
    literal_kinds = []
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue  # a migration freezes the values it needs
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _called(node) in WRITERS:
                for kw in node.keywords:
                    if kw.arg == "kind" and isinstance(kw.value, ast.Constant):
                        literal_kinds.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert literal_kinds == []


def test_values_are_the_stored_ones() -> None:
    """The enums' values are what the database and the JSON already hold."""
    assert [m.value for m in Mode] == ["raw", "masked", "token"]
    assert [k.value for k in EntryKind] == ["delivery", "detokenize", "restricted_mint", "restricted"]
    assert "kill_switch" in {k.value for k in TimelineKind}
