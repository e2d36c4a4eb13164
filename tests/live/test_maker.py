"""A maker with a built-in strategy decides inside the venue's callback when idle; past the
engine-wide budget, or with a Python strategy, its task decides instead."""

from __future__ import annotations

import time

import numpy as np
import pytest

from quotewise.live import maker as maker_module
from quotewise.live.maker import InlineBudget, Maker
from quotewise.live.store import Store, db_url
from quotewise.model.events import EVENT_DTYPE, SET
from quotewise.model.instrument import Instrument
from quotewise.quoting.loader import make_strategy


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


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "m.db")))
    yield s
    s.close()


def test_a_built_in_strategy_quotes_within_the_callback(store, monkeypatch):
    monkeypatch.setattr(maker_module, "INLINE", InlineBudget(1_000))
    venue = RecordingVenue()
    maker = Maker("m1", venue, store, make_strategy("symmetric", {"spread": "1tick", "interval": "1us"}))
    maker.on_market(book(9_999, 10_001))
    assert ("place", 1, 9_999) in venue.sent and ("place", -1, 10_001) in venue.sent
    assert maker.decisions == 1
    venue.sent.clear()
    maker.on_market(book(10_004, 10_006))  # the touch moved: old quotes cancelled, new ones placed
    assert [s[0] for s in venue.sent].count("cancel") == 2 and ("place", 1, 10_004) in venue.sent


def test_a_python_strategy_or_an_exhausted_budget_waits_for_the_task(store, monkeypatch):
    monkeypatch.setattr(maker_module, "INLINE", InlineBudget(1_000))
    venue = RecordingVenue()
    ladder = Maker("m2", venue, store, make_strategy("ladder", {"spread": "1tick", "interval": "1us"}))
    ladder.on_market(book(9_999, 10_001))
    assert venue.sent == [] and ladder.decisions == 0  # the ladder runs its Python quotes() in the task

    monkeypatch.setattr(maker_module, "INLINE", InlineBudget(0))
    venue = RecordingVenue()
    busy = Maker("m3", venue, store, make_strategy("symmetric", {"spread": "1tick", "interval": "1us"}))
    busy.on_market(book(9_999, 10_001))
    assert venue.sent == [] and busy.decisions == 0 and busy._wake.is_set()
