"""Flow signals: imbalances, OFI (Cont, Kukanov & Stoikov 2014) and the top-of-book tape."""

from __future__ import annotations

import numpy as np
import pytest

from quotewise.book.orderbook import OrderBook
from quotewise.book.view import MarketView
from quotewise.model.events import ASK, BID, EXECUTE, SET, TRADE, empty_events
from quotewise.model.instrument import Instrument
from quotewise.signals.flow import (
    OfiWindow,
    TopTape,
    TradeWindow,
    book_imbalance,
    depth_imbalance,
    market_order_depths,
    ofi,
    ofi_increments,
    trade_flow_imbalance,
)

INST = Instrument(symbol="T", tick_size=0.01)
S = 1_000_000_000


def events(rows: list[tuple[int, int, int, int]], t0: int = 0) -> np.ndarray:
    """(kind, side, price, size) rows, one nanosecond apart."""
    ev = empty_events(len(rows))
    for i, (kind, side, price, size) in enumerate(rows):
        ev[i] = (t0 + i, t0 + i, price, size, 0, kind, side)
    return ev


def test_book_and_depth_imbalance():
    assert book_imbalance(3, 1) == pytest.approx(0.5)  # (3 - 1) / 4
    assert book_imbalance(0, 0) == 0.0
    book = OrderBook(90, 110)
    book.apply(events([(SET, BID, 100, 3), (SET, BID, 99, 5), (SET, ASK, 101, 2), (SET, ASK, 102, 2)]))
    # two levels: bids 3 + 5 = 8, asks 2 + 2 = 4: (8 - 4) / 12 = 1/3
    assert depth_imbalance(book, 2) == pytest.approx(1 / 3)


def test_trade_flow_imbalance_uses_the_resting_side():
    # a buyer lifts the ask (resting side -1) for 3; a seller hits the bid (+1) for 1: (3 - 1) / 4
    ev = events([(TRADE, ASK, 101, 3), (EXECUTE, BID, 100, 1), (SET, BID, 100, 9)])
    assert trade_flow_imbalance(ev) == pytest.approx(0.5)


def test_trade_window_vwap_and_expiry():
    w = TradeWindow(window_ns=2 * S)
    w.update(0, events([(TRADE, ASK, 101, 1)], t0=0))
    w.update(1 * S, events([(TRADE, BID, 98, 2)], t0=1 * S))
    # (101 * 1 + 98 * 2) / 3 = 297 / 3 = 99; imbalance (1 - 2) / 3
    assert w.vwap() == pytest.approx(99.0)
    assert w.imbalance() == pytest.approx(-1 / 3)
    w.update(2 * S, None)  # the trade at 0 is now 2 s old: out of the window
    assert w.vwap() == pytest.approx(98.0)
    w.update(4 * S, None)
    assert w.vwap() is None and w.imbalance() == 0.0


# A hand-made sequence of top-of-book states (bid, bid size, ask, ask size) and CKS e_n:
TOPS = np.array(
    [
        [100, 5, 101, 5],
        [100, 8, 101, 5],  # bid size +3:              e = 8 - 5 = +3
        [100, 8, 101, 2],  # 3 lots taken at the ask:  e = -2 + 5 = +3
        [100, 8, 102, 4],  # ask level gone, 102 best: e = +2 (the old ask queue)
        [101, 1, 102, 4],  # bid improves to 101 x 1:  e = +1
        [100, 8, 102, 4],  # that bid is cancelled:    e = -1 (worked out below)
    ],
    np.int64,
)


def test_ofi_by_hand():
    # last step: b_n = 100 < b_{n-1} = 101, so only -Qb_{n-1} = -1 counts; ask unchanged: -4 + 4 = 0
    assert ofi_increments(TOPS).tolist() == [3.0, 3.0, 2.0, 1.0, -1.0]
    assert ofi(TOPS) == pytest.approx(8.0)  # 3 + 3 + 2 + 1 - 1
    one_sided = TOPS.copy()
    one_sided[2, 2] = -1  # ask side empty in state 2: the two transitions touching it count 0
    assert ofi_increments(one_sided).tolist() == [3.0, 0.0, 0.0, 1.0, -1.0]


def test_tape_replays_events_and_gives_the_same_ofi():
    # the same story as TOPS, told as L2 events (with a trade print and a level below the touch)
    ev = events(
        [
            (SET, BID, 100, 5),
            (SET, ASK, 101, 5),
            (SET, BID, 100, 8),
            (TRADE, ASK, 101, 3),  # the print: the book changes on the next event
            (SET, ASK, 101, 2),
            (SET, ASK, 102, 4),  # below the touch: the top does not change
            (SET, ASK, 101, 0),
            (SET, BID, 101, 1),
            (SET, BID, 101, 0),
        ]
    )
    live = OrderBook(90, 110)
    live.apply(ev)
    view = MarketView(10, INST, 100, 102, 8, 4, 0, book=live, events=ev)
    tape = TopTape()
    tops = tape.update(view)
    assert tops.shape == (len(ev) + 1, 4)
    assert tops[0].tolist() == [-1, 0, -1, 0]  # before anything
    assert tops[1].tolist() == [100, 5, -1, 0]  # one side only
    assert tops[-1].tolist() == [100, 8, 102, 4]
    assert ofi(tops) == pytest.approx(8.0)  # transitions with an empty side add nothing
    assert tape.resyncs == 0
    # the depth a market order reached: the buy print at 101 with the mid at 100.5 -> 0.5 tick
    assert market_order_depths(ev, tops).tolist() == [0.5]


def test_tape_resyncs_when_it_disagrees_with_the_live_book():
    live = OrderBook(90, 110)
    live.apply(events([(SET, BID, 100, 5), (SET, ASK, 101, 5)]))
    tape = TopTape()
    ev = events([(SET, BID, 100, 5)])  # the ask event was not shown: the replay misses it
    tops = tape.update(MarketView(10, INST, 100, 101, 5, 5, 0, book=live, events=ev))
    assert tape.resyncs == 1
    assert tops.tolist() == [[100, 5, 101, 5], [100, 5, 101, 5]]  # this decision carries no flow
    nxt = events([(SET, BID, 100, 7)], t0=20)
    live.apply(nxt)
    tops = tape.update(MarketView(30, INST, 100, 101, 7, 5, 0, book=live, events=nxt))
    assert tape.resyncs == 1 and ofi(tops) == pytest.approx(2.0)  # back in step: +2 at the bid


def test_market_order_depths_group_a_sweep():
    # one buy order sweeps 101 and 102 (same time, same side) with the mid at 100.5: depth 1.5;
    # then a sell of 1 lot at 100: depth 0.5
    ev = empty_events(3)
    ev[0] = (5, 5, 101, 2, 0, EXECUTE, ASK)
    ev[1] = (5, 5, 102, 1, 0, EXECUTE, ASK)
    ev[2] = (6, 6, 100, 1, 0, EXECUTE, BID)
    tops = np.array([[100, 5, 101, 2]], np.int64).repeat(2, axis=0)  # one state: the decision's
    assert market_order_depths(ev, tops).tolist() == [1.5, 0.5]


def test_ofi_window_and_cks_impact():
    w = OfiWindow(window_ns=2 * S)
    w.update(1 * S, TOPS)
    # OFI 8; mean touch depth over rows 1..5: ((8+5) + (8+2) + (8+4) + (1+4) + (8+4)) / 2 / 5 = 52 / 10
    assert w.value == pytest.approx(8.0)
    assert w.depth == pytest.approx(5.2)
    assert w.price_impact_ticks() == pytest.approx(8.0 / (2 * 5.2))
    w.update(3 * S, TOPS[:1].repeat(2, axis=0))  # nothing new; the first part is now 2 s old
    assert w.value == 0.0
