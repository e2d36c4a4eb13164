"""Strategies that misbehave, for the engine's isolation tests (loaded as file.py:Class)."""

from __future__ import annotations

import time

from quotewise.quoting.base import MarketView, QuoteSet, Strategy


class Exploding(Strategy):
    name = "exploding"

    def quotes(self, view: MarketView) -> QuoteSet:
        raise RuntimeError("this strategy always fails")


class Sleepy(Strategy):
    """Takes 30 ms per decision (a slow model) and quotes nothing."""

    name = "sleepy"

    def quotes(self, view: MarketView) -> QuoteSet:
        time.sleep(0.03)
        return QuoteSet()
