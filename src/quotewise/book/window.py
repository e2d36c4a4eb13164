"""A window over a wide dense book: far levels are logged, not written, until something needs them.

A depth stream updates levels far from the touch (Binance spot BTCUSDT at a 0.01 tick: two thirds of
its events more than 1,000 ticks away, over a 20M-tick range). Written into the dense arrays, each
first write to a page of them costs the kernel a fresh zeroed page; most of spot's backtest was
that. With a window, the exchange's book applies events only at indexes ``WLO..WHI - 1`` (state
slots of :mod:`quotewise.book.core`). A SET below the window on the bid side, or above it on the ask
side, while the window holds a level of that side, goes to the side's far log, in order, and
nothing else happens: such a level is not the touch then, cannot cross the other side (which rests
inside the window or beyond it on its own side), and holds none of our orders.

The window follows the touch (:func:`recentre`, between two wake-ups of the engine): the log's rows
that come inside are written then. Everything the window cannot answer exactly opens it for good
(:func:`open_window`: the log replayed in order, the window made the whole array): an event outside
it that is not such a far SET, a side left with no level in the window while its log holds levels,
an order of ours outside it. A CLEAR of a side drops that side's log (:func:`core.clear_side`). So a
run gives the same book, touch and fills with or without a window; the window changes what it costs.

The far log is a ``(2, capacity, 2)`` int64 array: per side (0 bid, 1 ask) rows of (index, size).
When a side's log is full the engine returns to Python, which keeps the last row per level
(:func:`compacted`) and grows the array if that is not enough. The engine takes ``far=None`` for a
plain book and compiles without any of this (sim/loop.py).
"""

import numba as nb
import numpy as np

from quotewise.book import core
from quotewise.model.events import ADD, ASK, BID, CLEAR, SET, TRADE

HALF_WIDTH = 1 << 15  # ticks each side of the touch: 256 KB of each array; recentred as the touch moves
MIN_TICKS = 1 << 20  # a book narrower than this is plain: its pages cost little, a window saves nothing
LOG_ROWS = 1 << 16  # far-log rows per side to start with; grown by Python when compaction is not enough

# what handle_far did with an event
APPLY = 0  # nothing: apply the event as usual (the window may have opened)
LOGGED = 1  # a far SET, logged (or one that empties an empty level): the book's touch is unchanged
LOG_FULL = 2  # a far SET with no room in its log: return to Python before this event


def new_log() -> np.ndarray:
    return np.zeros((2, LOG_ROWS, 2), np.int64)


def is_wide(st: np.ndarray) -> bool:
    """Whether the book ``st`` is wide enough to gain by a window."""
    return int(st[core.N]) >= MIN_TICKS


def place(st: np.ndarray, events: np.ndarray) -> bool:
    """Window the book ``st``, to take ``events`` from the start, around where they start
    (:func:`centre_of`) when it is wide enough to gain by it; returns whether it did."""
    n = int(st[core.N])
    if not is_wide(st) or st[core.BID_LO] < n or st[core.ASK_HI] >= 0:
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
    if (
        kind == SET
        and size == 0
        and ((side == BID and ix >= st[core.WHI]) or (side == ASK and ix < st[core.WLO]))
    ):
        # a level beyond the window on the far side of the touch is empty (setting one opens the
        # window): emptying it again changes nothing (Binance streams do, for levels long gone)
        return LOGGED
    below = side == BID and ix < st[core.WLO] and st[core.BB] >= st[core.WLO]
    above = side == ASK and ix >= st[core.WHI] and st[core.BA] < st[core.WHI]
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
    if (st[core.BB] < st[core.WLO] and st[core.FAR_BIDS] > 0) or (
        st[core.BA] >= st[core.WHI] and st[core.FAR_ASKS] > 0
    ):
        open_window(bid, ask, st, far)


@nb.njit(cache=True, inline="always")
def drifted(st):
    """Whether the touch has come within an eighth of the window's width of one of its edges (never
    for a window that is the whole array, or one that does not hold both sides)."""
    lo = st[core.WLO]
    hi = st[core.WHI]
    if (lo == 0 and hi == st[core.N]) or st[core.BB] < lo or st[core.BA] >= hi:
        return False
    margin = (hi - lo) >> 3
    return st[core.BB] - lo < margin or hi - 1 - st[core.BA] < margin


@nb.njit(cache=True, _nrt=False)
def recentre(bid, ask, st, far, keep_lo, keep_hi):
    """Centre a :func:`drifted` window on the touch again, unless indexes ``keep_lo..keep_hi`` (our
    resting orders; none when ``keep_lo > keep_hi``) would fall outside it. The log's rows now
    inside go into the arrays, in order. Levels left outside keep their values in the arrays; later
    updates to them are logged and replayed after those values, and no scan reaches them while the
    window holds a level of their side (:func:`check_sides`)."""
    width = st[core.WHI] - st[core.WLO]
    new_lo = min(max((st[core.BB] + st[core.BA]) // 2 - width // 2, 0), st[core.N] - width)
    new_hi = new_lo + width
    if keep_lo <= keep_hi and (keep_lo < new_lo or keep_hi >= new_hi):
        return
    for s in range(2):
        slot = core.FAR_BIDS if s == 0 else core.FAR_ASKS
        kept = 0
        for k in range(st[slot]):
            i = far[s, k, 0]
            if new_lo <= i < new_hi:
                if s == 0:
                    core._set_bid(bid, ask, st, i, far[s, k, 1])
                else:
                    core._set_ask(bid, ask, st, i, far[s, k, 1])
            else:
                far[s, kept, 0] = i
                far[s, kept, 1] = far[s, k, 1]
                kept += 1
        st[slot] = kept
    st[core.WLO] = new_lo
    st[core.WHI] = new_hi


@nb.njit(cache=True, inline="always")
def apply_windowed(bid, ask, st, far, kind, side, price, size):
    """For a replay that cannot stop for Python (the model's feature pass): a far SET logged (True),
    else the window opened if the event needs it (False: apply the event as usual). A full log
    opens the window."""
    ix = price - st[core.BASE]
    if ix >= st[core.WLO] and ix < st[core.WHI]:
        return False
    done = handle_far(bid, ask, st, far, kind, side, ix, size)
    if done == LOG_FULL:
        open_window(bid, ask, st, far)
        return False
    return done == LOGGED


@nb.njit(cache=True)
def hold_levels(bid, ask, st, far, levels):
    """Open the window unless each side's best ``levels`` occupied levels (or all it has) are in it:
    a scan that reached the window's edge would miss far levels, or find stale ones."""
    found = 0
    i = st[core.BB]
    while i >= st[core.WLO] and found < levels:
        found += bid[i] > 0
        i -= 1
    if found < levels and (st[core.FAR_BIDS] > 0 or st[core.BID_LO] < st[core.WLO]):
        open_window(bid, ask, st, far)
        return
    found = 0
    i = st[core.BA]
    while i < st[core.WHI] and found < levels:
        found += ask[i] > 0
        i += 1
    if found < levels and (st[core.FAR_ASKS] > 0 or st[core.ASK_HI] >= st[core.WHI]):
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
