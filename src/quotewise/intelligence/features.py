"""Order-flow features and next-mid-move labels, computed in one streaming numba pass over the events.

The pass keeps an aggregate book (:mod:`quotewise.book.core`) and closes a *timestamp group* when
the first event with a later ``local_ts`` arrives (or the stream ends): every event stamped ``t`` is
applied before anything is measured at ``t``, and nothing stamped after ``t`` is read. At each group
end with a two-sided book it records a snapshot of cumulative quantities in a ring buffer; a window
``W`` feature is the difference between the snapshot now and the last snapshot at or before
``t - W``. A sample is taken at each mid-price change (``sample="mid"``) or every ``stride`` events
(``sample="stride"``; at the first group end after the stride is reached). Labels come afterwards
from the list of mid changes: the sign of the first mid change after ``t`` if it happens by
``t + horizon``. Formulas and sources: docs/intelligence.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numba as nb
import numpy as np

from quotewise.book import core, window
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import ASK, BID, EXECUTE, TRADE, empty_events
from quotewise.signals.flow import ofi_step

FEATURES = (
    "imbalance_1",
    "imbalance_3",
    "imbalance_5",
    "ofi",
    "trade_flow",
    "spread_ticks",
    "volatility_bps",
    "depletion_bid",
    "depletion_ask",
    "log_ms_since_trade",
    "last_move",
)
N_FEATURES = len(FEATURES)
SAMPLINGS = ("mid", "stride")

# times (int64 array, exact nanoseconds)
C_TS = 0  # local_ts of the open group, -1 before any event
C_LAST_TRADE = 1  # local_ts of the latest trade, -1 before any
C_NEXT_GRID = 2  # grid sampling: the next grid time (local ns) to sample at, -1 when off
C_GRID_STEP = 3  # grid sampling: the grid's step (ns)
CLOCK_LEN = 4
END = np.iinfo(np.int64).max  # a time after every event

# scalar state (float64 array): cumulative sums and the previous group's top of the book
S_OFI = 2  # cumulative CKS OFI (lots)
S_DEPTH = 3  # cumulative (Qb + Qa) / 2 over group ends
S_GROUPS = 4  # number of two-sided group ends
S_BUY = 5  # cumulative buyer-initiated volume
S_SELL = 6  # cumulative seller-initiated volume
S_SQ = 7  # cumulative squared mid returns (bps^2)
S_BB, S_QB, S_BA, S_QA = 8, 9, 10, 11  # previous two-sided group end's touch, S_BB = -1 before any
S_LAST_MOVE = 12  # sign of the latest mid change
S_SINCE_SAMPLE = 13  # events since the last sample (stride sampling)
S_HEAD = 14  # ring buffer: index of the oldest snapshot
S_COUNT = 15  # ring buffer: snapshots held
S_DROPPED = 16  # snapshots dropped because the ring was full (the window was cut short)
STATE_LEN = 17

# ring snapshot columns
R_OFI, R_DEPTH, R_GROUPS, R_BUY, R_SELL, R_SQ, R_BB, R_QB, R_BA, R_QA = range(10)
RING_COLS = 10
RING_CAPACITY = 1 << 16


@dataclass(frozen=True)
class FeatureConfig:
    """How samples are taken and labelled; saved with a model so that evaluation computes the same."""

    horizon_ns: int = 1_000_000_000
    window_ns: int = 1_000_000_000
    sample: str = "stride"
    stride: int = 20

    def __post_init__(self) -> None:
        if self.horizon_ns <= 0:
            raise ConfigError(f"horizon must be positive, got {self.horizon_ns} ns")
        if self.window_ns <= 0:
            raise ConfigError(f"feature window must be positive, got {self.window_ns} ns")
        if self.sample not in SAMPLINGS:
            raise ConfigError(f"sampling {self.sample!r} is not one of {', '.join(SAMPLINGS)}")
        if self.stride <= 0:
            raise ConfigError(f"stride must be a positive number of events, got {self.stride}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Samples:
    """Feature rows (every sample, labelled or not, in time order) and their labels.

    ``label`` is +1 (next mid change up), -1 (down) or 0 (excluded: no change within the horizon, or
    ``censored``: the data ends first)."""

    ts: np.ndarray
    mid2: np.ndarray  # bid + ask in ticks (twice the mid)
    x: np.ndarray  # (n, N_FEATURES) float64
    label: np.ndarray  # int8
    censored: np.ndarray  # bool: excluded because the data ends before the horizon
    n_trades: int
    n_events: int
    dropped_snapshots: int = 0
    names: tuple[str, ...] = field(default=FEATURES)

    @property
    def labelled(self) -> np.ndarray:
        return self.label != 0

    @property
    def no_change(self) -> np.ndarray:
        """Excluded because the mid did not change within the horizon."""
        return (self.label == 0) & ~self.censored


def new_state(
    grid_origin: int = -1, grid_step: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scalar state, clock (exact times), ring times and ring snapshots of a fresh pass. With a grid
    (``grid_origin`` + k ``grid_step``, local ns) the pass samples once per grid time instead of by
    stride or mid change: the features of the last group closed at or before it (what a decision at
    that time sees)."""
    state = np.zeros(STATE_LEN, np.float64)
    state[S_BB] = -1
    clock = np.array([-1, -1, grid_origin if grid_step > 0 else -1, grid_step], np.int64)
    return state, clock, np.zeros(RING_CAPACITY, np.int64), np.zeros((RING_CAPACITY, RING_COLS), np.float64)


@nb.njit(cache=True, inline="always")
def _imbalances(bid, ask, st, row, prices, sizes):
    """Book imbalance over the best 1, 3 and 5 occupied levels of each side, in [-1, 1], into
    ``row[0:3]``: one scan of each side's best 5 levels, each side summed best first."""
    n_bid = core.top_levels(bid, ask, st, BID, 5, prices, sizes[0])
    n_ask = core.top_levels(bid, ask, st, ASK, 5, prices, sizes[1])
    for out, levels in enumerate((1, 3, 5)):
        qb = 0.0
        for k in range(min(levels, n_bid)):
            qb += sizes[0, k]
        qa = 0.0
        for k in range(min(levels, n_ask)):
            qa += sizes[1, k]
        total = qb + qa
        row[out] = 0.0 if total <= 0 else (qb - qa) / total


@nb.njit(cache=True)
def _depletion(price_now, size_now, price_then, size_then, advance_sign):
    """Relative change of a touch queue since the window start: ``(Q - Q0) / (Q + Q0)`` at an unchanged
    price; +1 when the touch advanced (a new queue), -1 when it retreated (the old queue emptied)."""
    if price_now == price_then:
        total = size_now + size_then
        return 0.0 if total <= 0 else (size_now - size_then) / total
    return 1.0 if (price_now - price_then) * advance_sign > 0 else -1.0


@nb.njit(cache=True, inline="always")
def _close_group(book, stream, outs, scratch, n_out, n_ch, next_ts, far):
    """Measure the book at the end of the group stamped ``clock[C_TS]`` (the next group is stamped
    ``next_ts``; ``scratch``: arrays for the imbalances; ``far``: a windowed book's far log, opened
    when the best 5 levels of a side may lie outside the window); returns the new counts. Inlined: as
    a call, passing its arrays cost a third of the group closes' time."""
    bid, ask, st = book
    state, clock, ring_t, ring_x, window_ns, stride, by_mid = stream
    x_out, t_out, m_out, ch_t, ch_m = outs
    prices, sizes = scratch
    t = clock[C_TS]
    bb = core.best_bid(st)
    ba = core.best_ask(st)
    if bb < 0 or ba < 0:
        return n_out, n_ch
    qb = float(bid[st[core.BB]])  # the touch is on the book: no range check
    qa = float(ask[st[core.BA]])
    changed = False
    mid2 = bb + ba
    if state[S_BB] >= 0:
        pb, pqb, pa, pqa = state[S_BB], state[S_QB], state[S_BA], state[S_QA]
        state[S_OFI] += ofi_step(pb, pqb, pa, pqa, bb, qb, ba, qa)
        prev2 = pb + pa
        if mid2 != prev2:
            changed = True
            r = (mid2 - prev2) / prev2 * 1e4
            state[S_SQ] += r * r
            state[S_LAST_MOVE] = 1.0 if mid2 > prev2 else -1.0
            ch_t[n_ch] = t
            ch_m[n_ch] = mid2
            n_ch += 1
    state[S_DEPTH] += (qb + qa) / 2.0
    state[S_GROUPS] += 1.0
    state[S_BB], state[S_QB], state[S_BA], state[S_QA] = bb, qb, ba, qa

    # push the snapshot, then drop those the window no longer needs (keep the last one <= t - W)
    count = np.int64(state[S_COUNT])
    head = np.int64(state[S_HEAD])
    cap = ring_t.shape[0]
    if count == cap:
        head = (head + 1) % cap
        count -= 1
        state[S_DROPPED] += 1
    j = (head + count) % cap
    ring_t[j] = t
    ring_x[j, R_OFI] = state[S_OFI]
    ring_x[j, R_DEPTH] = state[S_DEPTH]
    ring_x[j, R_GROUPS] = state[S_GROUPS]
    ring_x[j, R_BUY] = state[S_BUY]
    ring_x[j, R_SELL] = state[S_SELL]
    ring_x[j, R_SQ] = state[S_SQ]
    ring_x[j, R_BB], ring_x[j, R_QB], ring_x[j, R_BA], ring_x[j, R_QA] = bb, qb, ba, qa
    count += 1
    while count >= 2 and ring_t[(head + 1) % cap] <= t - window_ns:
        head = (head + 1) % cap
        count -= 1
    state[S_HEAD] = head
    state[S_COUNT] = count

    take = changed if by_mid else state[S_SINCE_SAMPLE] >= stride
    grid = clock[C_NEXT_GRID]
    if grid >= 0:
        # grid sampling: once when a grid time falls before the next group, then the first grid time
        # at or after that group (the grid times in between see this same book)
        take = grid < next_ts
        if take:
            step = clock[C_GRID_STEP]
            clock[C_NEXT_GRID] = grid + (next_ts - grid + step - 1) // step * step if next_ts < END else END
    if not take:
        return n_out, n_ch
    state[S_SINCE_SAMPLE] = 0
    row = x_out[n_out]
    if far is not None:
        window.hold_levels(bid, ask, st, far, 5)
    _imbalances(bid, ask, st, row, prices, sizes)
    groups = state[S_GROUPS] - ring_x[head, R_GROUPS]
    depth = (state[S_DEPTH] - ring_x[head, R_DEPTH]) / groups if groups > 0 else (qb + qa) / 2.0
    ofi = state[S_OFI] - ring_x[head, R_OFI]
    row[3] = ofi / depth if depth > 0 else 0.0
    buy = state[S_BUY] - ring_x[head, R_BUY]
    sell = state[S_SELL] - ring_x[head, R_SELL]
    row[4] = (buy - sell) / (buy + sell) if buy + sell > 0 else 0.0
    row[5] = ba - bb
    row[6] = np.sqrt(max(state[S_SQ] - ring_x[head, R_SQ], 0.0))
    row[7] = _depletion(bb, qb, ring_x[head, R_BB], ring_x[head, R_QB], 1)
    row[8] = _depletion(ba, qa, ring_x[head, R_BA], ring_x[head, R_QA], -1)
    since = (t - clock[C_LAST_TRADE]) / 1e6 if clock[C_LAST_TRADE] >= 0 else 60_000.0
    row[9] = np.log1p(min(max(since, 0.0), 60_000.0))
    row[10] = state[S_LAST_MOVE]
    t_out[n_out] = t
    m_out[n_out] = mid2
    return n_out + 1, n_ch


def flow_pass(
    events: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    st: np.ndarray,
    state: np.ndarray,
    clock: np.ndarray,
    ring_t: np.ndarray,
    ring_x: np.ndarray,
    window_ns: int,
    stride: int,
    by_mid: bool,
    flush: bool,
    far: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``events`` (one chunk) and measure every group that closes; with ``flush`` also close the
    last open group (the end of the stream). Returns sample times, mids, feature rows, and the times and
    mids of the mid changes seen. ``far``: the far log of a windowed book (:mod:`quotewise.book.window`;
    a full log opens the window here, the pass does not stop for Python to compact it)."""
    cap = events.shape[0] + 1
    # room for a sample and a mid change per event; only the first n of each are written and returned
    x_out = np.empty((cap, N_FEATURES), np.float64)
    t_out, m_out, ch_t, ch_m = (np.empty(cap, np.int64) for _ in range(4))
    scratch = (np.empty(5, np.int64), np.empty((2, 5), np.int64))
    args = (state, clock, ring_t, ring_x, window_ns, stride, by_mid, flush)
    n_out, n_ch = _flow_pass(events, bid, ask, st, *args, x_out, t_out, m_out, ch_t, ch_m, *scratch, far)
    return t_out[:n_out], m_out[:n_out], x_out[:n_out], ch_t[:n_ch], ch_m[:n_ch]


@nb.njit(cache=True, _nrt=False)  # see quotewise.book.core.apply_events
def _flow_pass(
    events,
    bid,
    ask,
    st,
    state,
    clock,
    ring_t,
    ring_x,
    window_ns,
    stride,
    by_mid,
    flush,
    x_out,
    t_out,
    m_out,
    ch_t,
    ch_m,
    prices,
    sizes,
    far,
):
    """:func:`flow_pass` into the caller's arrays; returns the numbers of samples and mid changes."""
    book = (bid, ask, st)
    stream = (state, clock, ring_t, ring_x, window_ns, stride, by_mid)
    outs = (x_out, t_out, m_out, ch_t, ch_m)
    scratch = (prices, sizes)
    n_out = 0
    n_ch = 0
    t_open = clock[C_TS]  # the open group's time and the stride count, in registers between closes
    since = state[S_SINCE_SAMPLE]
    for k in range(events.shape[0]):
        e = events[k]
        ts = e["local_ts"]
        if ts != t_open:
            if t_open >= 0:
                state[S_SINCE_SAMPLE] = since
                if far is not None:  # noqa: SIM102 (a plain book, far None, compiles without this)
                    if window.drifted(st):
                        window.recentre(bid, ask, st, far, 1, 0)
                n_out, n_ch = _close_group(book, stream, outs, scratch, n_out, n_ch, ts, far)
                since = state[S_SINCE_SAMPLE]
            t_open = ts
            clock[C_TS] = ts
        kind = e["kind"]
        if kind == TRADE or kind == EXECUTE:
            if e["side"] == ASK:
                state[S_BUY] += e["size"]
            else:
                state[S_SELL] += e["size"]
            clock[C_LAST_TRADE] = ts
        logged = False  # a plain book (far None) compiles without the window's checks
        if far is not None:
            logged = window.apply_windowed(bid, ask, st, far, kind, e["side"], e["price"], e["size"])
        if logged:
            since += 1
            continue
        core.apply_event(bid, ask, st, kind, e["side"], e["price"], e["size"])
        if far is not None:  # noqa: SIM102 (as above)
            if st[core.BB] < st[core.WLO] or st[core.BA] >= st[core.WHI]:
                window.check_sides(bid, ask, st, far)
        since += 1
    state[S_SINCE_SAMPLE] = since
    if flush and clock[C_TS] >= 0:
        n_out, n_ch = _close_group(book, stream, outs, scratch, n_out, n_ch, END, far)
        clock[C_TS] = -1
    return n_out, n_ch


def label_samples(
    ts: np.ndarray,
    mid2: np.ndarray,
    change_ts: np.ndarray,
    change_mid2: np.ndarray,
    horizon_ns: int,
    end_ts: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Sign of the first mid change strictly after each sample time, when it comes within the horizon.

    Returns labels (+1, -1, 0 = excluded) and which samples are censored: no change before the data
    ends, which comes before ``t + horizon`` (the others labelled 0 saw no change within the horizon)."""
    j = np.searchsorted(change_ts, ts, side="right")
    has_next = j < len(change_ts)
    jj = np.minimum(j, max(len(change_ts) - 1, 0))
    label = np.zeros(len(ts), np.int8)
    if len(change_ts):
        within = has_next & (change_ts[jj] - ts <= horizon_ns)
        label[within] = np.sign(change_mid2[jj][within] - mid2[within]).astype(np.int8)
    return label, (label == 0) & (ts + horizon_ns > end_ts)


def compute_samples(
    chunks: Iterable[np.ndarray],
    price_lo: int,
    price_hi: int,
    config: FeatureConfig,
    progress: Callable[[int], None] | None = None,
) -> Samples:
    """Features and labels of a whole event stream, chunk by chunk (state carried across chunks)."""
    bid, ask, st = core.new_book(price_lo, price_hi)
    state, clock, ring_t, ring_x = new_state()
    parts: list[tuple[np.ndarray, ...]] = []
    n_events = n_trades = 0
    end_ts = -1
    by_mid = config.sample == "mid"
    empty = empty_events(0)
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        kinds = chunk["kind"]
        n_trades += int(np.count_nonzero((kinds == TRADE) | (kinds == EXECUTE)))
        n_events += len(chunk)
        end_ts = int(chunk["local_ts"][-1])
        args = (state, clock, ring_t, ring_x, config.window_ns, config.stride, by_mid)
        parts.append(flow_pass(chunk, bid, ask, st, *args, False))
        if progress is not None:
            progress(len(chunk))
    if n_events == 0:
        raise DataError("the data holds no events")
    parts.append(flow_pass(empty, bid, ask, st, *args, True))
    ts, mid2, x, ch_t, ch_m = (np.concatenate([p[i] for p in parts]) for i in range(5))
    label, censored = label_samples(ts, mid2, ch_t, ch_m, config.horizon_ns, end_ts)
    return Samples(ts, mid2, x, label, censored, n_trades, n_events, int(state[S_DROPPED]))
