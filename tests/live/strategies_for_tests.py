"""Strategies that misbehave, for the engine's isolation tests (loaded as file.py:Class)."""

from __future__ import annotations

import inspect
import time

from quotewise.book.view import MarketView
from quotewise.quoting.base import QuoteSet, Strategy


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
    """Takes 30 ms per decision (a slow model) and quotes nothing."""

    name = "sleepy"

    def quotes(self, view: MarketView) -> QuoteSet:
        time.sleep(0.03)
        return QuoteSet()
