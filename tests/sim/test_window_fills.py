"""The engine with a windowed exchange book (quotewise.book.window) on hand-built streams: a far level
becomes the touch when the window's last level on its side goes, an order of ours outside the window
sees the far level's queue, and a CLEAR forgets the far levels it removed."""

from __future__ import annotations

import os

import pytest
from simkit import INST, MS, T0, at, book, events, fills, run

from quotewise.book import core, window
from quotewise.sim.exchange import SimConfig, SimExchange

BUY, SELL = 1, -1


@pytest.fixture(autouse=True)
def narrow_window(monkeypatch):
    """Every simkit book (ticks 0..1,000) windowed 5 ticks each side of its first price, 100."""
    monkeypatch.setattr(window, "MIN_TICKS", 0)
    monkeypatch.setattr(window, "HALF_WIDTH", 5)


def test_the_far_bid_is_the_touch_once_the_windows_last_bid_goes():
    rows = [*book(), (2, "set", 1, 50, 7), (4, "set", 1, 100, 0)]
    seen_bids = []
    ex, _ = run(rows, at(5, lambda ex: seen_bids.append(ex.best_bid())))
    assert seen_bids == [50]
    assert ex.xbook.st[core.WHI] == ex.xbook.st[core.N]  # the window opened


def test_a_sell_into_the_far_bid_fills_there():
    rows = [*book(), (2, "set", 1, 50, 7), (4, "set", 1, 100, 0)]
    _, seen = run(rows, at(6, lambda ex: ex.place(SELL, 50, 3, post_only=False)))
    assert [(price, qty, maker) for _, price, qty, maker in fills(seen)] == [(50, 3, False)]


def test_far_levels_stay_in_the_log_while_the_window_holds_the_touch():
    rows = [*book(), (2, "set", 1, 50, 7), (3, "set", -1, 300, 2), (4, "set", 1, 99, 4)]
    ex, _ = run(rows, lambda ex: None)
    st = ex.xbook.st
    assert (st[core.WLO], st[core.WHI]) == (95, 106)
    assert ex.xbook.bid[50] == 0 and st[core.FAR_BIDS] == 1
    assert ex.best_bid() == 100


def test_an_order_outside_the_window_queues_behind_the_far_level():
    """Our bid at 60 joins 5 lots resting there (a logged far level): a 3-lot trade does not reach it."""
    rows = [*book(), (2, "set", 1, 60, 5), (10, "trade", 1, 60, 3), (12, "trade", 1, 60, 3)]
    _, seen = run(rows, at(5, lambda ex: ex.place(BUY, 60, 1)))
    (fill,) = fills(seen)  # the second trade: 3 more lots, 2 past the 5 ahead
    assert fill[1:] == (60, 1, True)
    assert next(r for r in seen if r.kind == "fill").exch_ts == T0 + 12 * MS


def test_a_clear_forgets_the_far_levels_of_its_side():
    # a CLEAR priced inside the window (the price of a CLEAR means nothing) still drops the far bids
    rows = [*book(), (2, "set", 1, 50, 7), (3, "clear", 1, 100, 0)]
    rows += [(4, "set", 1, 100, 3), (5, "set", 1, 100, 0)]
    ex, _ = run(rows, lambda ex: None)
    assert ex.best_bid() is None


def test_a_restored_order_outside_the_window_opens_it():
    """A paper venue restarted: the market is replayed without our orders (the window stays narrow),
    then our resting bid at 60 comes back, and the far level it rests at must be in the book."""
    rows = [*book(), (2, "set", 1, 60, 5)]
    first, _ = run(rows, at(5, lambda ex: ex.place(BUY, 60, 1)))
    replayed, _ = run(rows, lambda ex: None)
    st = replayed.xbook.st
    assert st[core.WLO] > 0 and replayed.xbook.bid[60] == 0  # logged, not written
    replayed.restore_orders(first.snapshot_orders())
    assert st[core.WLO] == 0 and st[core.WHI] == st[core.N] and replayed.xbook.bid[60] == 5


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc")
def test_closing_or_restoring_a_wide_book_writes_only_where_our_orders_rested(monkeypatch):
    """A book 20M ticks wide (spot BTCUSDT at 0.01): its footprint arrays are 160 MB each, and the
    market's end and a restore clear only our orders' levels instead of writing every page."""
    monkeypatch.setattr(window, "HALF_WIDTH", 1 << 15)  # the real window
    monkeypatch.setattr(window, "MIN_TICKS", 1 << 20)
    mid = 10_000_000
    rows = [
        (0, "set", 1, mid, 10),
        (0, "set", -1, mid + 1, 10),
        (1, "set", 1, mid, 9),
        (20, "set", 1, mid, 8),
    ]

    def exchange() -> SimExchange:
        config = SimConfig(entry_latency_ns=MS, response_latency_ns=MS, interval_ns=MS)
        ex = SimExchange(INST, 0, 20_000_000, config)
        ex.feed(events(rows))
        return ex

    def replay(ex: SimExchange, place: bool) -> list:
        seen = []
        while ex.advance():
            seen.extend(ex.responses())
            if ex.decision_due:
                if place and ex.best_bid() == mid and not ex.ords["state"].any():
                    ex.place(BUY, mid, 1)
                ex.schedule_next_decision()
        return seen

    first = exchange()
    replay(first, place=True)
    snap = first.snapshot_orders()
    before = resident_mb()
    first.close_market("the data has ended")
    assert resident_mb() - before < 20
    assert [r.kind for r in first.pending_responses()] == ["cancelled"]
    assert not first.footprint.mine_bid.any()

    again = exchange()
    replay(again, place=False)
    before = resident_mb()
    again.restore_orders(snap)
    assert resident_mb() - before < 20
    assert again.footprint.mine_bid[mid] == 1
