"""Strategies that misbehave, for the engine's isolation tests (loaded as file.py:Class)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

from quotewise.book.view import MarketView
from quotewise.quoting.base import QuoteSet, Strategy, StrategyParams


class Exploding(Strategy):
    name = "exploding"

    def quotes(self, view: MarketView) -> QuoteSet:
        raise RuntimeError("this strategy always fails")


def raised_at() -> str:
    """Where :class:`Exploding` raises, as a traceback names it."""
    lines, first = inspect.getsourcelines(Exploding.quotes)
    line = first + next(i for i, text in enumerate(lines) if "raise" in text)
    return f'File "{inspect.getsourcefile(Exploding)}", line {line}, in quotes'


class Sleepy(Strategy):
    """Takes 30 ms per decision (a slow model) and quotes nothing. ``watch``, when a test sets it,
    is read before and after each decision; the pairs go to ``seen``."""

    name = "sleepy"
    watch: Callable[[], int] | None = None

    def __init__(self, params: StrategyParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self.seen: list[tuple[int, int]] = []

    def quotes(self, view: MarketView) -> QuoteSet:
        before = self.watch() if self.watch is not None else 0
        time.sleep(0.03)
        if self.watch is not None:
            self.seen.append((before, self.watch()))
        return QuoteSet()
