"""Python-facing order books over the numba core: an L2 book by price and an L3 book by order id.

:class:`OrderBook` wraps the dense arrays of :mod:`quotewise.book.core` so that tools, tests and
analytics read the book exactly as the backtest engine sees it. :class:`L3Book` adds the order map
needed for FIFO queue position while keeping its aggregate levels in a core book, so both views
agree by construction. :func:`replay_top_levels` replays events and records the visible top of the
book at chosen points, in LOBSTER's column layout, which is how readers are checked against the
book files that ship with the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from quotewise.book.core import (
    BA,
    BASE,
    BB,
    CROSS_FIXES,
    NEG_CLAMPS,
    OUT_OF_RANGE,
    N,
    apply_event,
    apply_events,
    best_ask,
    best_bid,
    level_size,
    new_book,
    top_levels,
)
from quotewise.model.events import (
    ADD,
    ASK,
    BID,
    CLEAR,
    DELETE,
    EVENT_DTYPE,
    EXECUTE,
    REDUCE,
    TRADE,
)

# LOBSTER's placeholders for missing levels. They are sentinels, not prices, so they are kept
# verbatim whatever the price unit (ticks here, dollars x 10000 in the files).
EMPTY_ASK = 9_999_999_999
EMPTY_BID = -9_999_999_999


def _as_events(events: np.ndarray) -> np.ndarray:
    """A 1-d EVENT_DTYPE view of one record or an array of them."""
    arr = np.asarray(events)
    if arr.dtype != EVENT_DTYPE:
        raise TypeError(f"expected events of EVENT_DTYPE, got dtype {arr.dtype}")
    return arr.reshape(-1)


def event_price_range(events: np.ndarray) -> tuple[int, int]:
    """Lowest and highest price of the events that carry one (CLEAR has none)."""
    events = _as_events(events)
    prices = events["price"][events["kind"] != CLEAR]
    if prices.size == 0:
        raise ValueError("no priced events to size a book from")
    return int(prices.min()), int(prices.max())


def _side(side: int) -> int:
    if side not in (BID, ASK):
        raise ValueError(f"side must be +1 (bid) or -1 (ask), got {side}")
    return side


class OrderBook:
    """Aggregate (L2) book over ticks ``lo_tick..hi_tick``; prices in ticks, sizes in lots."""

    def __init__(self, lo_tick: int, hi_tick: int) -> None:
        self.bid, self.ask, self.st = new_book(lo_tick, hi_tick)

    @classmethod
    def over(cls, bid: np.ndarray, ask: np.ndarray, st: np.ndarray) -> OrderBook:
        """A view over existing core arrays (no copy): how strategies read the engine's book."""
        book = cls.__new__(cls)
        book.bid, book.ask, book.st = bid, ask, st
        return book

    @classmethod
    def for_events(cls, events: np.ndarray, margin: int = 0) -> OrderBook:
        """A book wide enough for every price in ``events`` plus ``margin`` ticks each way."""
        lo, hi = event_price_range(events)
        return cls(max(lo - margin, 0), hi + margin)

    @property
    def lo_tick(self) -> int:
        return int(self.st[BASE])

    @property
    def hi_tick(self) -> int:
        return int(self.st[BASE]) + self.bid.shape[0] - 1

    def apply(self, events: np.ndarray) -> None:
        """Apply one event record or an array of them, in order."""
        apply_events(self.bid, self.ask, self.st, _as_events(events))

    @property
    def best_bid(self) -> int | None:
        p = int(best_bid(self.st))
        return None if p < 0 else p

    @property
    def best_ask(self) -> int | None:
        p = int(best_ask(self.st))
        return None if p < 0 else p

    def size_at(self, side: int, price: int) -> int:
        """Resting size at one level (0 when empty or off the book's range)."""
        return int(level_size(self.bid, self.ask, self.st, _side(side), price))

    def touch(self) -> tuple[int | None, int, int | None, int]:
        """Best bid, its size, best ask, its size (None and 0 for an empty side), as a view carries them."""
        bb, ba = self.best_bid, self.best_ask
        return (
            bb,
            0 if bb is None else self.size_at(BID, bb),
            ba,
            0 if ba is None else self.size_at(ASK, ba),
        )

    def copy_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the core arrays: a private book that starts as this one (a replay's resync)."""
        return self.bid.copy(), self.ask.copy(), self.st.copy()

    @property
    def two_sided(self) -> bool:
        """Both sides have a level (read straight from the state, no compiled call)."""
        st = self.st
        return bool(st[BB] >= 0 and st[BA] < st[N])

    @property
    def mid(self) -> float | None:
        """Mid price in ticks; None unless both sides are present."""
        bb, ba = self.best_bid, self.best_ask
        return None if bb is None or ba is None else (bb + ba) / 2

    @property
    def spread(self) -> int | None:
        bb, ba = self.best_bid, self.best_ask
        return None if bb is None or ba is None else ba - bb

    def levels(self, side: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` occupied levels of ``side`` (best first): prices and sizes, at most ``n`` each."""
        prices = np.zeros(n, np.int64)
        sizes = np.zeros(n, np.int64)
        k = top_levels(self.bid, self.ask, self.st, _side(side), n, prices, sizes)
        return prices[:k], sizes[:k]

    def depth(self, side: int, ticks: int) -> int:
        """Total size on ``side`` priced within ``ticks`` of that side's best price (inclusive)."""
        if ticks < 0:
            raise ValueError(f"ticks must be >= 0, got {ticks}")
        if _side(side) == BID:
            top = int(self.st[BB])
            return 0 if top < 0 else int(self.bid[max(top - ticks, 0) : top + 1].sum())
        top = int(self.st[BA])  # == len(ask) when the side is empty: an empty slice
        return int(self.ask[top : top + ticks + 1].sum())

    def _top_sizes(self) -> tuple[int, int, int, int] | None:
        bb, ba = self.best_bid, self.best_ask
        if bb is None or ba is None:
            return None
        return bb, self.size_at(BID, bb), ba, self.size_at(ASK, ba)

    @property
    def weighted_mid(self) -> float | None:
        """Size-weighted mid (microprice): leans toward the side with less size, where the next
        trade is more likely to move the price."""
        top = self._top_sizes()
        if top is None:
            return None
        bb, bsz, ba, asz = top
        return (bb * asz + ba * bsz) / (bsz + asz)

    @property
    def imbalance(self) -> float | None:
        """Top-of-book imbalance in [-1, 1]: (bid size - ask size) / (bid size + ask size)."""
        top = self._top_sizes()
        if top is None:
            return None
        _, bsz, _, asz = top
        return (bsz - asz) / (bsz + asz)

    @property
    def is_crossed(self) -> bool:
        bb, ba = self.best_bid, self.best_ask
        return bb is not None and ba is not None and bb >= ba

    @property
    def counters(self) -> dict[str, int]:
        """Fixes the core made: crossed levels removed, updates off the range, sizes clamped at 0."""
        return {
            "cross_fixes": int(self.st[CROSS_FIXES]),
            "out_of_range": int(self.st[OUT_OF_RANGE]),
            "neg_clamps": int(self.st[NEG_CLAMPS]),
        }


@dataclass(slots=True)
class _Order:
    side: int
    price: int
    remaining: int


@dataclass
class L3Counters:
    """What the L3 book could not match exactly (all zero on complete, consistent data)."""

    unknown_orders: int = 0  # REDUCE/DELETE/EXECUTE of an id not live: applied to the level only
    duplicate_adds: int = 0  # ADD of a live id: the old order is replaced
    size_mismatches: int = 0  # removal larger than the order, or a DELETE of another size
    mismatched_orders: int = 0  # event side/price differs from the order's: the order is still hit
    orders_dropped: int = 0  # known orders given up because their level held less than they did


class L3Book:
    """Book by order id with FIFO queues per level; aggregate levels live in a core L2 book.

    Every event updates the aggregate level exactly as :class:`OrderBook` would, so the two views
    never disagree. Volume at a level not owned by a known order (snapshot or revealed levels,
    orders from before the data began) is "anonymous": aggregate minus known orders. It arrived
    before any order we saw added, so it stands ahead of all of them. When a level holds less
    than its known orders (a SET, a crossing fix, or an unknown-id removal says so), we cannot tell
    which of them left, so all of them become anonymous volume (counted in ``orders_dropped``).
    Orders keep their place through partial cancels and executions (price-time priority).
    """

    def __init__(self, lo_tick: int, hi_tick: int) -> None:
        self.l2 = OrderBook(lo_tick, hi_tick)
        self._orders: dict[int, _Order] = {}
        self._queues: dict[tuple[int, int], dict[int, None]] = {}  # insertion order is FIFO
        self._known: dict[tuple[int, int], int] = {}  # lots of known orders per level
        self.counters = L3Counters()

    @classmethod
    def for_events(cls, events: np.ndarray, margin: int = 0) -> L3Book:
        lo, hi = event_price_range(events)
        return cls(max(lo - margin, 0), hi + margin)

    def __len__(self) -> int:
        return len(self._orders)

    def order(self, order_id: int) -> tuple[int, int, int] | None:
        """(side, price, remaining size) of a live order, or None."""
        o = self._orders.get(order_id)
        return None if o is None else (o.side, o.price, o.remaining)

    def orders_at(self, side: int, price: int) -> list[tuple[int, int]]:
        """(order id, remaining) of the known orders at a level, front of the queue first."""
        return [(oid, self._orders[oid].remaining) for oid in self._queues.get((side, price), {})]

    def anonymous(self, side: int, price: int) -> int:
        """Level volume that belongs to no known order."""
        return self.l2.size_at(side, price) - self._known.get((side, price), 0)

    def queue_ahead(self, order_id: int) -> int:
        """Lots ahead of ``order_id`` at its price: anonymous volume plus earlier known orders."""
        o = self._orders.get(order_id)
        if o is None:
            raise KeyError(f"order {order_id} is not live in the book")
        ahead = self.anonymous(o.side, o.price)
        for oid in self._queues[(o.side, o.price)]:
            if oid == order_id:
                break
            ahead += self._orders[oid].remaining
        return ahead

    def apply(self, events: np.ndarray) -> None:
        """Apply one event record or an array of them, in order."""
        for e in _as_events(events):
            self._apply_one(
                int(e["kind"]), int(e["side"]), int(e["price"]), int(e["size"]), int(e["order_id"])
            )

    def _apply_one(self, kind: int, side: int, price: int, size: int, oid: int) -> None:
        if kind == TRADE:
            return
        fixes = int(self.l2.st[CROSS_FIXES])
        apply_event(self.l2.bid, self.l2.ask, self.l2.st, kind, side, price, size)
        if kind == CLEAR:
            for key in [k for k in self._queues if side == 0 or k[0] == side]:
                self._drop_level(key)
            return
        if not self.l2.lo_tick <= price <= self.l2.hi_tick:
            return  # the core skipped it (counted there); so do we
        if kind == ADD:
            self._add(side, price, size, oid)
        elif kind in (REDUCE, DELETE, EXECUTE):
            self._remove(side, price, size, oid, whole=kind == DELETE)
        # a crossing fix may have emptied any opposite level, otherwise only this one changed
        crossed = int(self.l2.st[CROSS_FIXES]) != fixes
        for key in list(self._queues) if crossed else [(side, price)]:
            if key in self._known and self.l2.size_at(*key) < self._known[key]:
                self._drop_level(key)

    def _drop_level(self, key: tuple[int, int]) -> None:
        queue = self._queues.pop(key)
        for oid in queue:
            del self._orders[oid]
        del self._known[key]
        self.counters.orders_dropped += len(queue)

    def _unlink(self, oid: int) -> None:
        o = self._orders.pop(oid)
        key = (o.side, o.price)
        del self._queues[key][oid]
        self._known[key] -= o.remaining
        if not self._queues[key]:
            del self._queues[key], self._known[key]

    def _add(self, side: int, price: int, size: int, oid: int) -> None:
        if oid in self._orders:
            self.counters.duplicate_adds += 1
            self._unlink(oid)
        key = (side, price)
        self._orders[oid] = _Order(side, price, size)
        self._queues.setdefault(key, {})[oid] = None
        self._known[key] = self._known.get(key, 0) + size

    def _remove(self, side: int, price: int, size: int, oid: int, whole: bool) -> None:
        o = self._orders.get(oid)
        if o is None:
            self.counters.unknown_orders += 1
            return
        if (o.side, o.price) != (side, price):
            self.counters.mismatched_orders += 1
        if size > o.remaining or (whole and size != o.remaining):
            self.counters.size_mismatches += 1
        if whole or size >= o.remaining:
            self._unlink(oid)
        else:
            o.remaining -= size
            self._known[(o.side, o.price)] -= size


@nb.njit(cache=True)
def _record_top(bid, ask, st, n_levels, row, pbuf, sbuf):
    k = top_levels(bid, ask, st, ASK, n_levels, pbuf, sbuf)
    for j in range(n_levels):
        row[4 * j] = pbuf[j] if j < k else EMPTY_ASK
        row[4 * j + 1] = sbuf[j] if j < k else 0
    k = top_levels(bid, ask, st, BID, n_levels, pbuf, sbuf)
    for j in range(n_levels):
        row[4 * j + 2] = pbuf[j] if j < k else EMPTY_BID
        row[4 * j + 3] = sbuf[j] if j < k else 0


@nb.njit(cache=True, _nrt=False)  # see quotewise.book.core.apply_events
def _replay_top_levels(events, row_ends, n_levels, bid, ask, st, out, pbuf, sbuf):
    n_rows = row_ends.shape[0]
    r = 0
    while r < n_rows and row_ends[r] < 0:
        _record_top(bid, ask, st, n_levels, out[r], pbuf, sbuf)
        r += 1
    for k in range(events.shape[0]):
        if r >= n_rows:
            break
        e = events[k]
        apply_event(bid, ask, st, e["kind"], e["side"], e["price"], e["size"])
        while r < n_rows and row_ends[r] == k:
            _record_top(bid, ask, st, n_levels, out[r], pbuf, sbuf)
            r += 1


def replay_top_levels(
    events: np.ndarray, row_ends: np.ndarray, n_levels: int, lo: int, hi: int
) -> np.ndarray:
    """Replay ``events`` on a fresh book over ticks ``lo..hi``; row ``r`` of the result is the top
    ``n_levels`` of the book right after event ``row_ends[r]`` (non-decreasing; -1 = before any).

    Columns follow LOBSTER's orderbook files: ask price, ask size, bid price, bid size per level.
    Prices are in ticks (the events' unit); empty levels hold LOBSTER's sentinels ``EMPTY_ASK`` /
    ``EMPTY_BID`` with size 0, so a LOBSTER file converted to ticks with its sentinels kept
    (:func:`quotewise.data.lobster.read_lobster_book`) compares with ``==``.
    """
    ends = np.ascontiguousarray(row_ends, dtype=np.int64)
    if ends.size and (np.any(np.diff(ends) < 0) or ends[-1] >= len(events)):
        raise ValueError("row_ends must be non-decreasing event indices below len(events)")
    bid, ask, st = new_book(lo, hi)
    out = np.empty((len(ends), 4 * n_levels), np.int64)
    pbuf, sbuf = np.zeros(n_levels, np.int64), np.zeros(n_levels, np.int64)
    _replay_top_levels(_as_events(events), ends, int(n_levels), bid, ask, st, out, pbuf, sbuf)
    return out


def replay_mids(
    events: np.ndarray, lo: int, hi: int, tick_size: float, times: np.ndarray, clock: str = "exch_ts"
) -> np.ndarray:
    """The mid (price units) of a book over ticks ``lo..hi`` after every event whose ``clock`` time is
    at or before each of ``times`` (``local_ts``: received by then); NaN while a side is empty."""
    if not len(events):
        return np.full(len(times), np.nan)
    stamps = np.maximum.accumulate(events[clock])  # a local clock may step back: keep what was seen
    ends = np.searchsorted(stamps, times, side="right") - 1
    top = replay_top_levels(events, ends, 1, lo, hi)
    ask, bid = top[:, 0], top[:, 2]
    return np.where((ask != EMPTY_ASK) & (bid != EMPTY_BID), (ask + bid) / 2 * tick_size, np.nan)
