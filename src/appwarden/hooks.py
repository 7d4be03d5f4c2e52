"""Announcements a lower package makes and a higher one answers, connected in one place.

A package may only import the packages below it (the layers in ``pyproject.toml``), yet some writes
must be answered in the same transaction by a package above: a consent issues canaries, an opened
incident takes the canary alerts raised before it, a customer write refreshes the blind index. The
lower package declares a :class:`Hook` and calls it; ``appwarden.wiring.wire`` registers the answers.
Registration is explicit — never an import side effect — so the wiring module lists every such seam.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Hook(Generic[P]):
    """A named announcement: ``hook(...)`` calls every registered answer in registration order.

    Answers run in the caller's transaction (they get its session), so an exception in one undoes
    the announcing write too. An announcement nobody answers means composition never ran (a derived
    index or a canary would be silently missing), so it raises instead: fail closed.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._answers: list[Callable[P, object]] = []

    def register(self, answer: Callable[P, object]) -> None:
        """Add ``answer``; registering the same one again is a no-op (composition may run twice)."""
        if answer not in self._answers:
            self._answers.append(answer)

    def registered(self) -> tuple[Callable[P, object], ...]:
        """The answers registered so far, in order."""
        return tuple(self._answers)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        if not self._answers:
            raise RuntimeError(
                f"{self.name!r} announced before it was wired: call appwarden.wiring.wire() in the entry "
                "point (the app factory and the CLI do)"
            )
        for answer in self._answers:
            answer(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, {len(self._answers)} answers)"
