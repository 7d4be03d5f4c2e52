"""Announcements a lower package makes and a higher one answers, connected in one place.

A package may only import the packages below it (the layers in ``pyproject.toml``), yet some writes
must be answered in the same transaction by a package above: a consent issues canaries, an opened
incident takes the canary alerts raised before it, a customer write refreshes the blind index. The
lower package declares a :class:`Hook` and calls it; ``appwarden.wiring.wire`` registers the answers.
Registration is explicit — never an import side effect — so the wiring module lists every such seam.

Some views must also show what higher packages know (an app list shows each app's risk, which the
monitor computes from the ledger, screening and its alerts): the lower package declares a
:class:`Question` and gets every registered answer's return value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Seam(Generic[P, R]):
    """A named slot that higher packages answer, registered by ``wiring.wire``: :class:`Hook` or
    :class:`Question`. Nobody answering means composition never ran, so asking raises (fail closed)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._answers: list[Callable[P, R]] = []

    def register(self, answer: Callable[P, R]) -> None:
        """Add ``answer``; registering the same one again is a no-op (composition may run twice)."""
        if answer not in self._answers:
            self._answers.append(answer)

    def registered(self) -> tuple[Callable[P, R], ...]:
        """The answers registered so far, in order."""
        return tuple(self._answers)

    def _answering(self) -> list[Callable[P, R]]:
        if not self._answers:
            raise RuntimeError(
                f"{self.name!r} announced before it was wired: call appwarden.wiring.wire() in the entry "
                "point (the app factory and the CLI do)"
            )
        return self._answers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self._answers)} answers)"


class Hook(Seam[P, object]):
    """A named announcement: ``hook(...)`` calls every registered answer in registration order.

    Answers run in the caller's transaction (they get its session), so an exception in one undoes
    the announcing write too. An announcement nobody answers means composition never ran (a derived
    index or a canary would be silently missing), so it raises instead: fail closed.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for answer in self._answering():
            answer(*args, **kwargs)


class Question(Seam[P, R]):
    """A named question: ``question(...)`` returns every registered answer's value, in registration
    order. Unanswered, it raises like a :class:`Hook`: a view that silently lacked a part (an app list
    without its risk) would mislead whoever reads it."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> list[R]:
        return [answer(*args, **kwargs) for answer in self._answering()]
