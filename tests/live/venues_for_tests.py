"""A venue that records what a maker sends, and a two-sided book update, for the maker and lane tests."""

from __future__ import annotations

import time

import numpy as np

from quotewise.model.events import EVENT_DTYPE, SET
from quotewise.model.instrument import Instrument


class RecordingVenue:
    instrument = Instrument(symbol="T", tick_size=0.01, lot_size=1.0)
    price_range = (9_000, 11_000)

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.next_id = 1

    @property
    def now(self) -> int:
        return time.time_ns()

    def subscribe(self, listener) -> None:
        self.listener = listener

    def place(self, side, price, size, post_only=True, reject_reason=0) -> int:
        self.sent.append(("place", side, price))
        self.next_id += 1
        return self.next_id - 1

    def cancel(self, order_id) -> bool:
        self.sent.append(("cancel", order_id))
        return True


def book(bid: int, ask: int) -> np.ndarray:
    ev = np.zeros(2, dtype=EVENT_DTYPE)
    ev["kind"], ev["side"], ev["price"], ev["size"] = SET, [1, -1], [bid, ask], 10
    return ev
