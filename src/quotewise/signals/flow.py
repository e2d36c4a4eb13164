"""Order flow: book imbalance, trade-flow imbalance, order-flow imbalance (OFI) and a top-of-book tape.

- Book imbalance ``(Qb - Qa) / (Qb + Qa)`` in [-1, 1] at the touch, or summed over ``n`` levels.
- Trade-flow imbalance ``(buy volume - sell volume) / total`` over recent trades. Trades are events
  of kind TRADE or EXECUTE; their ``side`` is the resting side, so a buyer-initiated trade (one
  that lifts the ask) has ``side == -1``.
- OFI, Cont, Kukanov & Stoikov (2014), "The price impact of order book events", J. Financial
  Econometrics 12(1), eq. (2): for consecutive top-of-book states ``n-1 -> n``

      e_n = 1[b_n >= b_{n-1}] Qb_n - 1[b_n <= b_{n-1}] Qb_{n-1}
          - 1[a_n <= a_{n-1}] Qa_n + 1[a_n >= a_{n-1}] Qa_{n-1}

  and OFI over an interval is the sum of ``e_n``. Their stylised book (depth D at every level)
  gives a mid move of ``tick * OFI / (2 D)``, which is how the strategy turns OFI into a price.
- :class:`TopTape` rebuilds the top of the book after every event the strategy has seen since its
  last decision (a private replay of ``view.events`` on a copy of the book), so OFI and the
  depth of each trade are computed per event, not on the coarser decision grid.
"""

from __future__ import annotations

from collections import deque

import numba as nb
import numpy as np

from quotewise.book import core
from quotewise.book.orderbook import OrderBook
from quotewise.book.view import MAX_VIEW_EVENTS, MarketView
from quotewise.model.events import ASK, BID, EXECUTE, TRADE
from quotewise.signals.fair_value import vwap

# Columns of a top-of-book tape row; an empty side has price -1 and size 0.
TB, TBS, TA, TAS = 0, 1, 2, 3


def book_imbalance(bid_size: float, ask_size: float) -> float:
    """``(Qb - Qa) / (Qb + Qa)`` in [-1, 1]; 0 when both are empty."""
    total = bid_size + ask_size
    return 0.0 if total <= 0 else (bid_size - ask_size) / total


def depth_imbalance(book: OrderBook, levels: int) -> float:
    """Book imbalance over the best ``levels`` occupied levels of each side."""
    _, bids = book.levels(BID, levels)
    _, asks = book.levels(ASK, levels)
    return book_imbalance(float(bids.sum()), float(asks.sum()))


# Columns of trade_rows' value array.
TP, TV, TS = 0, 1, 2


@nb.njit(cache=True)
def trade_rows(events):
    """The trade prints (TRADE, EXECUTE) among ``events``: local times, and rows of (price, size,
    aggressor sign), the sign +1 for a buyer-initiated trade (resting side -1)."""
    n = 0
    for i in range(events.shape[0]):
        if events[i]["kind"] == TRADE or events[i]["kind"] == EXECUTE:
            n += 1
    t = np.empty(n, np.int64)
    x = np.empty((n, 3), np.float64)
    j = 0
    for i in range(events.shape[0]):
        if events[i]["kind"] == TRADE or events[i]["kind"] == EXECUTE:
            t[j] = events[i]["local_ts"]
            x[j, TP] = events[i]["price"]
            x[j, TV] = events[i]["size"]
            x[j, TS] = -events[i]["side"]
            j += 1
    return t, x


def trade_flow_imbalance(events: np.ndarray) -> float:
    """(buy - sell) / (buy + sell) volume of the trades among ``events``; 0 without volume."""
    _, x = trade_rows(events)
    total = float(x[:, TV].sum())
    return 0.0 if total <= 0 else float(np.dot(x[:, TS], x[:, TV])) / total


class TradeWindow:
    """The trades of the last ``window_ns`` (by local time): VWAP and trade-flow imbalance."""

    def __init__(self, window_ns: int) -> None:
        if window_ns <= 0:
            raise ValueError(f"window must be positive, got {window_ns} ns")
        self.window_ns = window_ns
        self._t = np.zeros(0, np.int64)
        self._x = np.zeros((0, 3), np.float64)

    def update(self, now: int, events: np.ndarray | None) -> None:
        """Add the trades among ``events`` and drop those older than the window."""
        if events is not None and len(events):
            t, x = trade_rows(events)
            if len(t):
                self._t = np.concatenate((self._t, t))
                self._x = np.concatenate((self._x, x))
        cut = int(np.searchsorted(self._t, now - self.window_ns, side="right"))
        if cut:
            self._t, self._x = self._t[cut:], self._x[cut:]

    def vwap(self) -> float | None:
        """VWAP of the window's trades in ticks, or None when there were none."""
        return vwap(self._x[:, TP], self._x[:, TV])

    def imbalance(self) -> float:
        total = float(self._x[:, TV].sum())
        return 0.0 if total <= 0 else float(np.dot(self._x[:, TS], self._x[:, TV])) / total


@nb.njit(cache=True, inline="always")
def ofi_step(b0, qb0, a0, qa0, b1, qb1, a1, qa1):
    """Cont, Kukanov & Stoikov (2014) eq. (2): the order flow of one move of the touch from
    (bid ``b0`` x ``qb0``, ask ``a0`` x ``qa0``) to (``b1`` x ``qb1``, ``a1`` x ``qa1``)."""
    e = 0.0
    if b1 >= b0:
        e += qb1
    if b1 <= b0:
        e -= qb0
    if a1 <= a0:
        e -= qa1
    if a1 >= a0:
        e += qa0
    return e


@nb.njit(cache=True)
def ofi_increments(tops):
    """CKS ``e_n`` for each transition of a tape ``(n + 1, 4)`` -> ``(n,)``; 0 where a side is empty."""
    n = tops.shape[0] - 1
    out = np.zeros(max(n, 0), np.float64)
    for i in range(n):
        b0, qb0, a0, qa0 = tops[i, TB], tops[i, TBS], tops[i, TA], tops[i, TAS]
        b1, qb1, a1, qa1 = tops[i + 1, TB], tops[i + 1, TBS], tops[i + 1, TA], tops[i + 1, TAS]
        if b0 < 0 or b1 < 0 or a0 < 0 or a1 < 0:
            continue
        out[i] = ofi_step(b0, qb0, a0, qa0, b1, qb1, a1, qa1)
    return out


def ofi(tops: np.ndarray) -> float:
    """Order-flow imbalance over a tape: the sum of its increments (lots)."""
    return float(ofi_increments(tops).sum())


@nb.njit(cache=True)
def _touch_depth(tops):
    """Sum of ``(Qb + Qa) / 2`` over the two-sided rows after row 0, and how many there are."""
    total = 0.0
    rows = 0
    for i in range(1, tops.shape[0]):
        if tops[i, TB] >= 0 and tops[i, TA] >= 0:
            total += (tops[i, TBS] + tops[i, TAS]) / 2.0
            rows += 1
    return total, rows


@nb.njit(cache=True, _nrt=False)  # see quotewise.book.core.apply_events
def _replay_tops(bid, ask, st, events, out):
    """Apply ``events`` to the book, writing the top of the book after each into ``out[1:]``."""
    for k in range(events.shape[0]):
        e = events[k]
        core.apply_event(bid, ask, st, e["kind"], e["side"], e["price"], e["size"])
        bb = core.best_bid(st)
        ba = core.best_ask(st)
        out[k + 1, TB] = bb
        out[k + 1, TBS] = core.level_size(bid, ask, st, BID, bb) if bb >= 0 else 0
        out[k + 1, TA] = ba
        out[k + 1, TAS] = core.level_size(bid, ask, st, ASK, ba) if ba >= 0 else 0


@nb.njit(cache=True)
def market_order_depths(events, tops):
    """Depth (ticks beyond the mid just before it) that each market order among ``events`` reached.

    Prints with the same exchange time and side are one market order; its depth is that of its
    furthest print. The mid before event ``i`` is tape row ``i`` when the tape is per event
    (``len(tops) == len(events) + 1``), else row 0 (the previous decision's). Negative depths (a
    print inside a stale spread) count as 0; prints while a side is empty are skipped.
    """
    out = np.zeros(events.shape[0], np.float64)
    aligned = tops.shape[0] == events.shape[0] + 1
    n = 0
    last_ts = -1
    last_side = 0
    for i in range(events.shape[0]):
        kind = events[i]["kind"]
        if kind != TRADE and kind != EXECUTE:
            continue
        r = i if aligned else 0
        if tops[r, TB] < 0 or tops[r, TA] < 0:
            continue
        side = events[i]["side"]
        ts = events[i]["exch_ts"]
        d = max(-side * (events[i]["price"] - (tops[r, TB] + tops[r, TA]) / 2.0), 0.0)
        if n > 0 and ts == last_ts and side == last_side:
            out[n - 1] = max(out[n - 1], d)
        else:
            out[n] = d
            n += 1
            last_ts = ts
            last_side = side
    return out[:n]


class TopTape:
    """The top of the book after each event seen since the previous decision.

    :meth:`update` returns an ``(n + 1, 4)`` int64 array: row 0 is the state at the previous
    decision, row ``i`` the state after event ``i - 1``. It replays ``view.events`` on a private
    book; when the events were truncated (more than :data:`MAX_VIEW_EVENTS` since the last
    decision) or the replay disagrees with the live book, it re-copies the live book (counted in
    ``resyncs``) and returns only the current state for that decision. Without a book or events
    (a view built by hand) the tape is the decision-grid snapshot.
    """

    def __init__(self) -> None:
        self._book: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last = [-1, 0, -1, 0]
        self.resyncs = 0

    def update(self, view: MarketView) -> np.ndarray:
        now = [
            -1 if view.best_bid is None else view.best_bid,
            view.bid_size,
            -1 if view.best_ask is None else view.best_ask,
            view.ask_size,
        ]
        book, events = view.book, view.events
        if book is None or events is None:
            out = np.array((self._last, now), np.int64)
        elif self._book is None and len(events) < MAX_VIEW_EVENTS:
            self._book = core.new_book(book.lo_tick, book.hi_tick)  # the live book starts empty too
            out = self._replay(events)
        elif self._book is None or len(events) >= MAX_VIEW_EVENTS:
            out = self._resync(book, now)
        else:
            out = self._replay(events)
        if out[-1].tolist() != now:
            out = self._resync(book, now) if book is not None else np.array((self._last, now), np.int64)
        self._last = now
        return out

    def _replay(self, events: np.ndarray) -> np.ndarray:
        assert self._book is not None
        out = np.empty((len(events) + 1, 4), np.int64)
        out[0] = self._last
        _replay_tops(*self._book, events, out)
        return out

    def _resync(self, book: OrderBook, now: list[int]) -> np.ndarray:
        self._book = book.copy_arrays()
        self.resyncs += 1
        return np.array((now, now), np.int64)


class OfiWindow:
    """OFI summed over the last ``window_ns`` and the mean touch depth D over the same tape rows."""

    def __init__(self, window_ns: int) -> None:
        if window_ns <= 0:
            raise ValueError(f"window must be positive, got {window_ns} ns")
        self.window_ns = window_ns
        self._parts: deque[tuple[int, float, float, int]] = deque()  # (time, ofi, depth sum, rows)
        self.value = 0.0
        self._depth_sum = 0.0
        self._rows = 0

    def update(self, now: int, tops: np.ndarray) -> None:
        """Add one decision's tape (its increments are stamped with the decision time)."""
        e = ofi(tops)
        depth, rows = _touch_depth(tops)
        self._parts.append((now, e, depth, rows))
        self.value += e
        self._depth_sum += depth
        self._rows += rows
        while self._parts and self._parts[0][0] <= now - self.window_ns:
            _, e, depth, rows = self._parts.popleft()
            self.value -= e
            self._depth_sum -= depth
            self._rows -= rows

    @property
    def depth(self) -> float:
        return self._depth_sum / self._rows if self._rows else 0.0

    def price_impact_ticks(self) -> float:
        """CKS stylised impact ``OFI / (2 D)`` in ticks; 0 before any depth is seen."""
        d = self.depth
        return 0.0 if d <= 0 else self.value / (2.0 * d)
