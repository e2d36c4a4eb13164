"""A venue that records what a maker sends, a two-sided book update and a built-in maker, for the maker
and lane tests."""

from __future__ import annotations

import time

import numpy as np

from quotewise.live.maker import Maker
from quotewise.live.scheduler import Scheduler
from quotewise.live.store import Store
from quotewise.model.events import EVENT_DTYPE, SET
from quotewise.model.instrument import Instrument
from quotewise.quoting.loader import make_strategy

SYMMETRIC = {"spread": "1tick", "interval": "1us"}  # one tick from the mid, deciding on every update


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


def symmetric_maker(name: str, venue: RecordingVenue, store: Store, scheduler: Scheduler | None) -> Maker:
    return Maker(name, venue, store, make_strategy("symmetric", SYMMETRIC), scheduler=scheduler)
