"""A window over a wide dense book: far levels are logged, not written, until something needs them.

A depth stream updates levels far from the touch (Binance spot BTCUSDT at a 0.01 tick: two thirds of
its events more than 1,000 ticks away, over a 20M-tick range). Written into the dense arrays, each
first write to a page of them costs the kernel a fresh zeroed page; most of spot's backtest was
that. With a window, the exchange's book applies events only at indexes ``WLO..WHI - 1`` (state
slots of :mod:`quotewise.book.core`); a SET below the window on the bid side or above it on the ask
side, while the window holds a level of that side, goes to the side's far log, in order, and
nothing else happens: such a level cannot be the touch then, cannot cross the other side (which rests inside
the window or beyond it on its own side), and holds none of our orders (an order of ours outside
the window opens it first). Everything else the window cannot answer exactly opens it: the log is
replayed into the arrays in order and the window becomes the whole array, so a run gives the same
book, touch and fills whether or not a window was used; the window only changes what it costs.
What opens it: an event outside it that is not such a far SET, a side whose levels in the window
are all gone while its far log holds levels, and an order of ours outside it. A CLEAR of a side
drops that side's log (its far levels are gone too).

The far log is a ``(2, capacity, 2)`` int64 array: per side (0 bid, 1 ask) rows of (index, size).
When a side's log is full the engine returns to Python, which keeps the last row per level
(:func:`compacted`) and grows the array if that is not enough.
"""

import numba as nb
import numpy as np

from quotewise.book import core
from quotewise.model.events import ADD, ASK, BID, CLEAR, SET, TRADE

HALF_WIDTH = 1 << 17  # ticks each side of the first price: 2 MB of each array, wider than most days' range
MIN_TICKS = 1 << 20  # a book narrower than this is plain: its pages cost little, a window saves nothing
LOG_ROWS = 1 << 16  # far-log rows per side to start with; grown by Python when compaction is not enough

# what handle_far did with an event
APPLY = 0  # nothing: apply the event as usual (the window may have opened)
LOGGED = 1  # a far SET, logged: the book's touch is unchanged
LOG_FULL = 2  # a far SET with no room in its log: return to Python before this event


def new_log() -> np.ndarray:
    return np.zeros((2, LOG_ROWS, 2), np.int64)


def place(st: np.ndarray, events: np.ndarray) -> bool:
    """Window the book ``st``, to take ``events`` from the start, around where they start
    (:func:`centre_of`) when it is wide enough to gain by it; returns whether it did."""
    n = int(st[core.N])
    if n < MIN_TICKS or st[core.BID_LO] < n or st[core.ASK_HI] >= 0:
        return False  # narrow, or levels were set before: a window needs every far level logged
    centre = centre_of(events)
    if centre is None:
        return False
    centre -= int(st[core.BASE])
    st[core.WLO] = max(centre - HALF_WIDTH, 0)
    st[core.WHI] = min(centre + HALF_WIDTH + 1, n)
    return bool(st[core.WLO] > 0 or st[core.WHI] < n)


def centre_of(events: np.ndarray, head: int = 4096) -> int | None:
    """Where a book over ``events`` starts out: between the first bid and the first ask added (a
    snapshot lists each side from its best level), else the first trade (None: neither). Looks at
    the first ``head`` events, then at all of them if those have neither."""
    part = events[:head]
    adds = (part["kind"] == SET) | (part["kind"] == ADD)
    bids = np.flatnonzero(adds & (part["side"] == BID))
    asks = np.flatnonzero(adds & (part["side"] == ASK))
    if len(bids) and len(asks):
        return (int(part["price"][bids[0]]) + int(part["price"][asks[0]])) // 2
    trades = np.flatnonzero(part["kind"] == TRADE)
    if len(trades):
        return int(part["price"][trades[0]])
    return centre_of(events, len(events)) if len(part) < len(events) else None


@nb.njit(cache=True, _nrt=False)
def open_window(bid, ask, st, far):
    """Replay both far logs into the arrays, in order, and make the window the whole array."""
    for s in range(2):
        rows = st[core.FAR_BIDS] if s == 0 else st[core.FAR_ASKS]
        for k in range(rows):
            if s == 0:
                core._set_bid(bid, ask, st, far[0, k, 0], far[0, k, 1])
            else:
                core._set_ask(bid, ask, st, far[1, k, 0], far[1, k, 1])
    st[core.FAR_BIDS] = 0
    st[core.FAR_ASKS] = 0
    st[core.WLO] = 0
    st[core.WHI] = st[core.N]


@nb.njit(cache=True, _nrt=False)
def handle_far(bid, ask, st, far, kind, side, ix, size):
    """An event at index ``ix`` outside the window (see the module docstring)."""
    if kind == CLEAR or ix < 0 or ix >= st[core.N]:
        # a CLEAR's price means nothing (it drops the side's far log itself, core.clear_side); an
        # event off the array is counted as out of range, as in a plain book
        return APPLY
    below = side == BID and ix < st[core.WLO] and st[core.BB] >= 0
    above = side == ASK and ix >= st[core.WHI] and st[core.BA] < st[core.N]
    if kind == SET and size >= 0 and (below or above):
        s = 0 if side == BID else 1
        slot = core.FAR_BIDS if side == BID else core.FAR_ASKS
        k = st[slot]
        if k >= far.shape[1]:
            return LOG_FULL
        far[s, k, 0] = ix
        far[s, k, 1] = size
        st[slot] = k + 1
        return LOGGED
    open_window(bid, ask, st, far)
    return APPLY


@nb.njit(cache=True)
def check_sides(bid, ask, st, far):
    """After an event that left a side with no level in the window: its best comes from the far log."""
    if (st[core.BB] < 0 and st[core.FAR_BIDS] > 0) or (st[core.BA] >= st[core.N] and st[core.FAR_ASKS] > 0):
        open_window(bid, ask, st, far)


@nb.njit(cache=True, inline="always")
def is_full(st, far):
    return st[core.FAR_BIDS] >= far.shape[1] or st[core.FAR_ASKS] >= far.shape[1]


def compacted(st: np.ndarray, far: np.ndarray) -> np.ndarray:
    """A full far log with only the last row per level kept (all a replay needs); twice as long when
    that frees less than half of it."""
    kept = []
    for s, slot in ((0, core.FAR_BIDS), (1, core.FAR_ASKS)):
        rows = far[s, : int(st[slot])]
        # the last row of each level, in the order of those last rows
        _, first_of_reversed = np.unique(rows[::-1, 0], return_index=True)
        last = np.sort(len(rows) - 1 - first_of_reversed)
        kept.append(rows[last])
    size = far.shape[1]
    while max(len(k) for k in kept) * 2 > size:
        size *= 2
    out = np.zeros((2, size, 2), np.int64) if size != far.shape[1] else far
    for s, slot in ((0, core.FAR_BIDS), (1, core.FAR_ASKS)):
        out[s, : len(kept[s])] = kept[s]
        st[slot] = len(kept[s])
    return out
