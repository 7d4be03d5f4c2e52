"""What ``ledger verify`` reports: each problem with its position, and the summary people read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from appwarden.ledger.chain import GENESIS


@dataclass
class Problem:
    """One thing wrong with the ledger, at ``position`` (an entry's seq; 0 for the chain as a whole)."""

    # altered | inserted | removed | index_mismatch; against checkpoints: truncated | wiped | rewritten |
    # checkpoint_refused
    kind: str
    position: int
    detail: str
    count: int = 1
    key: dict[str, Any] | None = None


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`."""

    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    index_keys: int = 0
    problems: list[Problem] = field(default_factory=list)
    # Per checkpoint given: source, origin, size, hash, status (extends | refused | a problem kind), detail.
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line for people."""
        extends = [c for c in self.checkpoints if c["status"] == "extends"]
        anchored = ""
        if extends:
            largest = max(c["size"] for c in extends)
            count = "1 signed checkpoint" if len(extends) == 1 else f"{len(extends)} signed checkpoints"
            anchored = f"; extends {count}, the largest at {largest:,}"
        if self.intact:
            head = f"head {self.head_seq} {self.head_hash[:16]}…"
            return f"ledger intact: {self.entries} entries, {head}{anchored}"
        kinds: dict[str, int] = {}
        for problem in self.problems:
            kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        if set(kinds) == {"checkpoint_refused"}:
            return f"checkpoint REFUSED: {found}; the ledger itself verifies ({self.entries} entries)"
        return f"ledger TAMPERED: {found} (of {self.entries} entries, head {self.head_seq})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "index_keys": self.index_keys,
            "problems": [asdict(p) for p in self.problems],
            "checkpoints": self.checkpoints,
        }
