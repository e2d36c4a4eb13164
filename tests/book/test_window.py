"""A windowed book (quotewise.book.window) answers as the dense book does: the same touch after every
event, the same levels once opened, and the same backtest fill for fill."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_path
from quotewise.backtest import runner
from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import DataSource, from_event_data, from_path, synthetic
from quotewise.book import core, window
from quotewise.data.store import EventData
from quotewise.model.events import ASK, BID, CLEAR, EVENT_DTYPE, SET, TRADE
from quotewise.model.instrument import Instrument
from quotewise.quoting.loader import make_strategy
from quotewise.sim.exchange import SimConfig, SimExchange

MS = 1_000_000
TICKS = 400  # the book's range; the window is 2 x 6 + 1 ticks around tick 200
START = np.zeros(2, EVENT_DTYPE)  # a bid at 200 and an ask at 201 first: a window centred on 200
START["kind"], START["side"], START["price"] = SET, [BID, ASK], [200, 201]
RECENTRE = -1  # not an event: a recentring attempt
EVENT = st.one_of(
    st.tuples(st.just(SET), st.sampled_from([BID, ASK]), st.integers(0, TICKS - 1), st.integers(0, 3)),
    st.tuples(st.just(SET), st.sampled_from([BID, ASK]), st.integers(185, 215), st.integers(0, 3)),
    st.tuples(st.just(CLEAR), st.sampled_from([BID, ASK, 0]), st.sampled_from([0, 200]), st.just(0)),
    st.tuples(st.just(TRADE), st.sampled_from([BID, ASK]), st.integers(0, TICKS - 1), st.just(1)),
    # the engine's recentring between wake-ups, with one of our orders at a price to keep inside
    st.tuples(st.just(RECENTRE), st.just(0), st.integers(-1, TICKS - 1), st.just(0)),
)


def windowed_step(bid, ask, s, far, kind, side, price, size):
    """What the engine's loop does with one event (sim/loop.py `_exchange_until`); returns the log,
    compacted when it filled (the engine returns to Python for that)."""
    ix = price - s[core.BASE]
    if ix < s[core.WLO] or ix >= s[core.WHI]:
        done = window.handle_far(bid, ask, s, far, kind, side, ix, size)
        while done == window.LOG_FULL:
            far = window.compacted(s, far)
            done = window.handle_far(bid, ask, s, far, kind, side, ix, size)
        if done == window.LOGGED:
            return far
    core.apply_event(bid, ask, s, kind, side, price, size)
    window.check_sides(bid, ask, s, far)
    return far


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENT, max_size=200))
def test_a_windowed_book_has_the_dense_books_touch_after_every_event(events):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(window, "MIN_TICKS", 0)
        mp.setattr(window, "HALF_WIDTH", 6)
        mp.setattr(window, "LOG_ROWS", 2)  # full, compacted and grown many times
        check_against_dense(events)


def check_against_dense(events):
    dense = core.new_book(0, TICKS - 1)
    bid, ask, s = core.new_book(0, TICKS - 1)
    assert window.place(s, START)
    far = window.new_log()
    for kind, side, price, size in events:
        if kind == RECENTRE:
            keep = (price, price) if price >= 0 else (1, 0)
            # the engine recentres a drifted window holding both sides; here also one not drifted
            both = s[core.BB] >= s[core.WLO] and s[core.BA] < s[core.WHI]
            if both and (window.drifted(s) or price % 2):
                before = (s[core.WLO], s[core.WHI])
                window.recentre(bid, ask, s, far, *keep)
                moved = before != (s[core.WLO], s[core.WHI])
                assert not moved or keep[0] > keep[1] or s[core.WLO] <= price < s[core.WHI]
            continue
        core.apply_event(*dense, kind, side, price, size)
        far = windowed_step(bid, ask, s, far, kind, side, price, size)
        assert (core.best_bid(s), core.best_ask(s)) == (core.best_bid(dense[2]), core.best_ask(dense[2]))
        assert s[core.CROSS_FIXES] == dense[2][core.CROSS_FIXES]
        # inside the window the levels are the dense book's (outside, the arrays may hold older values)
        lo, hi = s[core.WLO], s[core.WHI]
        assert np.array_equal(bid[lo:hi], dense[0][lo:hi]) and np.array_equal(ask[lo:hi], dense[1][lo:hi])
    window.open_window(bid, ask, s, far)
    assert np.array_equal(bid, dense[0]) and np.array_equal(ask, dense[1])
    assert (core.best_bid(s), core.best_ask(s)) == (core.best_bid(dense[2]), core.best_ask(dense[2]))


def test_far_levels_stay_logged_while_the_window_holds_the_touch(monkeypatch):
    monkeypatch.setattr(window, "HALF_WIDTH", 6)
    bid, ask, s = core.new_book(0, TICKS - 1)
    assert window.place(s, START) is False  # a narrow book is never windowed
    monkeypatch.setattr(window, "MIN_TICKS", 0)
    assert window.place(s, START)
    far = window.new_log()
    rows = [(SET, BID, 199, 5), (SET, ASK, 201, 5), (SET, BID, 50, 7), (SET, ASK, 350, 2)]
    for kind, side, price, size in rows:
        far = windowed_step(bid, ask, s, far, kind, side, price, size)
    assert (s[core.FAR_BIDS], s[core.FAR_ASKS]) == (1, 1) and bid[50] == 0 and ask[350] == 0
    far = windowed_step(bid, ask, s, far, SET, BID, 199, 0)  # the window's last bid goes: the log is replayed
    assert core.best_bid(s) == 50 and s[core.WHI] == TICKS and ask[350] == 2


def test_a_bid_above_the_window_opens_it_and_a_clear_drops_the_log():
    bid, ask, s = core.new_book(0, TICKS - 1)
    s[core.WLO], s[core.WHI] = 190, 211
    far = window.new_log()
    for kind, side, price, size in [(SET, BID, 195, 1), (SET, ASK, 205, 1), (SET, BID, 20, 4)]:
        far = windowed_step(bid, ask, s, far, kind, side, price, size)
    far = windowed_step(bid, ask, s, far, CLEAR, BID, 0, 0)
    assert s[core.FAR_BIDS] == 0 and core.best_bid(s) == -1
    far = windowed_step(bid, ask, s, far, SET, BID, 300, 1)  # through the asks, beyond the window
    assert s[core.WLO] == 0 and s[core.WHI] == TICKS
    assert core.best_bid(s) == 300 and core.best_ask(s) == -1 and bid[20] == 0


def walking_l2(steps: int, seed: int) -> DataSource:
    """An L2 depth stream whose touch walks about 600 ticks up, then down: each millisecond a new
    touch, the levels it left removed, one more level set on each side up to 300 ticks away, and now
    and then a trade at the touch."""
    rng = np.random.default_rng(seed)
    rows = [(0, CLEAR, 0, 0, 0)]
    bids: set[int] = set()
    asks: set[int] = set()
    mid = 2_000
    for k in range(steps):
        mid += int(rng.choice([-1, 0, 1], p=[0.2, 0.4, 0.4] if k < steps // 2 else [0.4, 0.4, 0.2]))
        for p in sorted(b for b in bids if b >= mid):
            rows.append((k, SET, BID, p, 0))
            bids.discard(p)
        for p in sorted(a for a in asks if a <= mid):
            rows.append((k, SET, ASK, p, 0))
            asks.discard(p)
        rows.append((k, SET, BID, mid - 1, int(rng.integers(1, 6))))
        rows.append((k, SET, ASK, mid + 1, int(rng.integers(1, 6))))
        bids.add(mid - 1)
        asks.add(mid + 1)
        # deeper levels are set only from afar: the touch reaches them as they were last set there
        rows.append((k, SET, BID, mid - int(rng.integers(2, 300)), int(rng.integers(0, 4))))
        rows.append((k, SET, ASK, mid + int(rng.integers(2, 300)), int(rng.integers(0, 4))))
        if rng.random() < 0.3:
            side = BID if rng.random() < 0.5 else ASK
            rows.append((k, TRADE, side, mid - side, int(rng.integers(1, 4))))
    events = np.zeros(len(rows), EVENT_DTYPE)
    ms, kind, side, price, size = (np.array(c) for c in zip(*rows, strict=True))
    events["exch_ts"] = events["local_ts"] = 1_700_000_000_000_000_000 + ms * MS
    events["kind"], events["side"], events["price"], events["size"] = kind, side, price, size
    inst = Instrument(symbol="WALK", tick_size=0.01, lot_size=1.0, maker_fee=-0.0001, taker_fee=0.0005)
    return from_event_data(EventData(events, inst), "walk")


class Recorded(SimExchange):
    """The backtest's exchange, kept for a look at its book after the run."""

    made: ClassVar[list[SimExchange]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        Recorded.made.append(self)


def skew_run(monkeypatch, source, windowed: bool, half_width: int):
    monkeypatch.setattr(window, "MIN_TICKS", 0 if windowed else 1 << 62)
    monkeypatch.setattr(window, "HALF_WIDTH", half_width)
    monkeypatch.setattr(window, "LOG_ROWS", 4)
    monkeypatch.setattr(runner, "SimExchange", Recorded)
    strat = make_strategy("skew", {"spread": "1tick", "size": 1, "interval": "20ms"})
    config = SimConfig(interval_ns=strat.interval_ns, entry_latency_ns=2 * MS, response_latency_ns=MS)
    return run_backtest(source, strat, config, compiled=True)


def same_runs(windowed, plain):
    assert windowed.summary["fills"] == plain.summary["fills"] > 0
    assert windowed.fills.equals(plain.fills)
    assert windowed.orders.equals(plain.orders)
    assert windowed.equity.to_pandas().equals(plain.equity.to_pandas())  # NaN mids where a side is empty
    assert windowed.summary["book"] == plain.summary["book"]


def test_a_window_that_follows_the_touch_fills_as_the_plain_book(monkeypatch):
    """A 201-tick window over a touch that walks 600 ticks: recentred all the way, never opened."""
    source = walking_l2(4_000, seed=3)
    windowed = skew_run(monkeypatch, source, True, 100)
    st = Recorded.made[-1].xbook.st
    assert st[core.WLO] > 0 and st[core.WHI] - st[core.WLO] == 201  # still a window
    assert st[core.FAR_BIDS] + st[core.FAR_ASKS] > 0
    same_runs(windowed, skew_run(monkeypatch, source, False, 100))


@pytest.mark.parametrize("half_width", [3, 5_000])
def test_a_windowed_backtest_on_order_level_data_fills_as_the_plain_one(monkeypatch, half_width):
    """L3 events (ADDs) outside the window open it at once (3 ticks); a window as wide as the
    synthetic stream's range never needs to (5,000)."""
    source = synthetic(40_000, seed=11)
    same_runs(
        skew_run(monkeypatch, source, True, half_width), skew_run(monkeypatch, source, False, half_width)
    )


def test_spot_btcusdt_runs_windowed_and_fills_as_the_dense_book(monkeypatch):
    source = from_path(str(shared_path("binance", "spot", "btcusdt_20240808.gz")))
    strat = make_strategy("skew", {"spread": "1tick", "size": 0.001, "interval": "100ms"})
    config = SimConfig(interval_ns=strat.interval_ns, entry_latency_ns=MS, response_latency_ns=MS)
    runs = {}
    for windowed in (True, False):
        monkeypatch.setattr(window, "MIN_TICKS", 1 << 20 if windowed else 1 << 62)
        runs[windowed] = run_backtest(source, strat, config, compiled=True)
    assert runs[True].fills.equals(runs[False].fills) and runs[True].summary["fills"] > 0
    assert runs[True].orders.equals(runs[False].orders)


def predictions(monkeypatch, model, source, windowed: bool, half_width: int):
    from quotewise.intelligence.signal import grid_predictions

    monkeypatch.setattr(window, "MIN_TICKS", 0 if windowed else 1 << 62)
    monkeypatch.setattr(window, "HALF_WIDTH", half_width)
    origin = int(next(iter(source.chunks()))["local_ts"][0])
    return grid_predictions(model, source, origin, 20 * MS)


@pytest.mark.parametrize("half_width", [6, 100])
def test_the_models_feature_pass_on_a_windowed_book_predicts_as_on_the_dense_one(
    monkeypatch, synthetic_gbm, half_width
):
    """A window narrower than the 5 levels the imbalances read (6 ticks: opened) and one that follows
    the touch (100): the same predictions at every grid time, bit for bit."""
    source = walking_l2(3_000, seed=5)
    times, p = predictions(monkeypatch, synthetic_gbm, source, True, half_width)
    dense_times, dense_p = predictions(monkeypatch, synthetic_gbm, source, False, half_width)
    assert len(times) > 100 and np.array_equal(times, dense_times)
    assert np.array_equal(p, dense_p)


def test_the_models_feature_pass_on_spot_predicts_as_on_the_dense_book(monkeypatch, synthetic_gbm):
    source = from_path(str(shared_path("binance", "spot", "btcusdt_20240808.gz")))
    times, p = predictions(monkeypatch, synthetic_gbm, source, True, window.HALF_WIDTH)
    dense_times, dense_p = predictions(monkeypatch, synthetic_gbm, source, False, window.HALF_WIDTH)
    assert np.array_equal(times, dense_times) and np.array_equal(p, dense_p)
