"""What a strategy sees at a decision: the touch, the book behind it, the events since last time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quotewise.book.orderbook import OrderBook
from quotewise.model.instrument import Instrument

MAX_VIEW_EVENTS = 100_000  # a view carries at most this many of the events seen since the last decision


@dataclass
class MarketView:
    """What a strategy sees at a decision: the book as of ``time`` and what it knows of itself.

    ``position`` is what the fill reports received so far say (lots). ``book`` reads the live book
    (depth, weighted mid, imbalance); ``events`` holds the market events that became visible since
    the previous decision (at most the last :data:`MAX_VIEW_EVENTS`), for flow signals.
    """

    time: int
    instrument: Instrument
    best_bid: int | None
    best_ask: int | None
    bid_size: int
    ask_size: int
    position: int
    book: OrderBook | None = None
    events: np.ndarray | None = None

    @property
    def mid(self) -> float | None:
        """Mid price in ticks (may be a half tick), or None when a side is empty."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2.0
