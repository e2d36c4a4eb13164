"""The hedge: after each making fill, bring the book's net exposure back to zero with an order on
the hedge instrument, executed against the replayed hedge book (docs/portfolio.md). ``taker``: a
market order; ``passive``: a limit order at our side's best price, filled only from the hedge data's
own trades behind the queue that was there when it joined, its remainder sent as a market order after
a timeout.

Our orders do not change the replayed book, and passive fills are read from the tape, so running the
hedge after the making runs, from their fills and a replay of the hedge instrument's events, is exact
under the simulator's rules: the book each hedge meets is the book the simulator would have shown.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quotewise.backtest.source import DataSource
from quotewise.book.orderbook import OrderBook
from quotewise.model.events import ADD, ASK, BID, CLEAR, EXECUTE, SET, TRADE
from quotewise.model.instrument import Instrument

BOOK_PAD_TICKS = 1_000
MAX_WALK_LEVELS = 5_000


def base_per_unit(inst: Instrument, price: float) -> float:
    """Base-asset units one unit of size is exposed to: ``contract_size`` (linear, quanto) or
    ``contract_size / price`` (inverse: each contract is a fixed quote amount)."""
    return inst.contract_size / price if inst.inverse else inst.contract_size


def walk_book(
    book: OrderBook, side: int, lots: int, used: dict[tuple[int, int], int] | None = None
) -> list[tuple[int, int]]:
    """The (price ticks, lots) a taker order of ``lots`` takes: a buy (+1) lifts the asks from the
    best up, a sell (-1) hits the bids from the best down; ``used`` (book side, price) -> lots we took
    earlier and the tape has not shown leaving (fill rule 9, docs/fill-rules.md) is not there for us.
    What the book lacks stays unfilled."""
    book_side = ASK if side > 0 else BID
    prices, sizes = book.levels(book_side, MAX_WALK_LEVELS)
    taken: list[tuple[int, int]] = []
    left = lots
    for price, size in zip(prices.tolist(), sizes.tolist(), strict=True):
        if left <= 0:
            break
        take = min(left, size - (used or {}).get((book_side, price), 0))
        if take > 0:
            taken.append((price, take))
            left -= take
    return taken


class BookClock:
    """The hedge instrument's book replayed forward in time: ``advance(t)`` applies every event with
    ``exch_ts <= t``. ``used`` holds the liquidity our hedges took: it comes back only as the tape
    shows that much size leaving the level, or when the level empties (fill rule 9)."""

    def __init__(self, source: DataSource) -> None:
        lo = max(source.price_lo - BOOK_PAD_TICKS, 0)
        self.book = OrderBook(lo, source.price_hi + BOOK_PAD_TICKS)
        self.used: dict[tuple[int, int], int] = {}
        self._chunks: Iterator[np.ndarray] = iter(source.chunks())
        self._chunk: np.ndarray | None = None
        self._pos = 0
        self.listener: Callable[[np.ndarray], None] | None = None  # sees each batch before it applies

    def advance(self, t: int) -> None:
        while True:
            if self._chunk is None or self._pos >= len(self._chunk):
                self._chunk = next(self._chunks, None)
                self._pos = 0
                if self._chunk is None:
                    return
                continue
            ts = self._chunk["exch_ts"]
            end = int(np.searchsorted(ts, t, side="right"))
            if end > self._pos:
                if self.listener is not None:
                    self.listener(self._chunk[self._pos : end])
                self._apply(self._chunk[self._pos : end])
                self._pos = end
            if end < len(self._chunk):
                return

    def take(self, side: int, taken: list[tuple[int, int]]) -> None:
        """Mark the levels a hedge took as used."""
        book_side = ASK if side > 0 else BID
        for price, lots in taken:
            self.used[(book_side, price)] = self.used.get((book_side, price), 0) + lots

    def _apply(self, events: np.ndarray) -> None:
        """Apply events; those that touch a used level one at a time, to see size leave it."""
        if not self.used:
            self.book.apply(events)
            return
        touching = events["kind"] == CLEAR
        for side, price in self.used:
            touching |= (events["side"] == side) & (events["price"] == price)
        start = 0
        for k in np.flatnonzero(touching).tolist():
            if not self.used:
                break
            self.book.apply(events[start:k])
            before = {key: self.book.size_at(*key) for key in self.used}
            self.book.apply(events[k : k + 1])
            start = k + 1
            for key, old in before.items():
                new = self.book.size_at(*key)
                left = self.used[key] - max(old - new, 0)
                if new == 0 or left <= 0:
                    del self.used[key]
                else:
                    self.used[key] = left
        self.book.apply(events[start:])

    def finish(self) -> None:
        self.advance(np.iinfo(np.int64).max)

    def mid_price(self, inst: Instrument) -> float:
        mid = self.book.mid
        return math.nan if mid is None else mid * inst.tick_size


@dataclass
class MakingLeg:
    """One quoting instrument's fills (time order) and how many hedge units one unit of it needs."""

    name: str
    instrument: Instrument
    fills: pd.DataFrame
    ratio: Callable[[int], float] = field(default=lambda t: 1.0)
    mid: Callable[[int], float] | None = None  # its mid at a time between fills (None: the last fill's)


@dataclass
class HedgeResult:
    fills: pd.DataFrame  # one row per book level taken
    orders: pd.DataFrame  # one row per hedge order
    exposure: pd.DataFrame  # net exposure after each making fill, before and after the hedge
    final_mid: float
    position: float = 0.0


@dataclass
class _Order:
    order_id: int
    decision_ts: int
    arrival_ts: int
    side: int
    lots: int
    net_before: float
    net_after: float


@dataclass
class _Resting:
    """A passive hedge resting at ``price``: ``ahead`` lots were there before us and trade first."""

    order: _Order
    price: int
    ahead: int
    expires: int
    left: int
    filled: int = 0


FLATTEN_ORDER_ID = 0  # the fills of the halt's flatten order


class Hedger:
    """Runs the hedge rule over the making fills; ``contract`` ratio: one hedge unit per unit held,
    otherwise base-asset exposure converted to hedge units and scaled by the leg's ratio. ``passive``
    mode rests each order ``timeout_ns`` before sending what is left as a market order."""

    def __init__(
        self,
        source: DataSource,
        band: float,
        latency_ns: int,
        per_unit: bool,
        mode: str = "taker",
        timeout_ns: int = 0,
    ) -> None:
        self.inst = source.instrument
        self.clock = BookClock(source)
        self.band = band
        self.latency_ns = latency_ns
        self.per_unit = per_unit
        self.passive = mode == "passive"
        self.timeout_ns = timeout_ns
        self.position_lots = 0  # filled
        self.inflight_lots = 0  # sent (or resting), not yet filled
        self.cash = 0.0
        self.pending: deque[_Order] = deque()
        self.resting: list[_Resting] = []  # in the order they were posted, so by expiry
        self.fill_rows: list[tuple] = []
        self.order_rows: list[tuple] = []
        self.next_id = 1
        if self.passive:
            self.clock.listener = self._on_events

    def hedge_units(self, leg: MakingLeg, size: float, mid: float, t: int) -> float:
        if self.per_unit:
            return size
        hedge_mid = self.clock.mid_price(self.inst)
        if self.inst.inverse and math.isnan(hedge_mid):
            hedge_mid = mid  # no hedge book yet: the same underlying's price
        base = size * base_per_unit(leg.instrument, mid) * leg.ratio(t)
        return base / base_per_unit(self.inst, hedge_mid)

    def net(self, exposure: float) -> float:
        return exposure + (self.position_lots + self.inflight_lots) * self.inst.lot_size

    def decide(self, t: int, exposure: float) -> tuple[float, float]:
        """Net before and after the hedge sent at ``t`` (none when inside the band)."""
        before = self.net(exposure)
        if abs(before) <= self.band:
            return before, before
        step = self.inst.order_lots
        lots = round(abs(before) / self.inst.lot_size / step) * step
        if lots < self.inst.min_size_lots:
            return before, before
        side = -1 if before > 0 else 1
        self.inflight_lots += side * lots
        after = self.net(exposure)
        self.pending.append(_Order(self.next_id, t, t + self.latency_ns, side, lots, before, after))
        self.next_id += 1
        return before, after

    def _next_due(self) -> int | None:
        """When the next order arrives or the oldest resting one times out."""
        times = [self.pending[0].arrival_ts] if self.pending else []
        times += [self.resting[0].expires] if self.resting else []
        return min(times) if times else None

    def execute_until(self, t: int) -> None:
        """Every arrival and timeout up to ``t``, with the passive fills the tape gives between them."""
        while (due := self._next_due()) is not None and due <= t:
            self.clock.advance(due)
            if self.pending and self.pending[0].arrival_ts <= due:
                order = self.pending.popleft()
                if self.passive and self._post(order):
                    continue
                filled = self._take(order, order.lots, due)
                self.inflight_lots -= order.side * order.lots  # what was not filled returns to the net
                self._record_order(order, filled)
            elif self.resting and self.resting[0].expires <= due:  # not filled on the way there
                rest = self.resting.pop(0)
                filled = self._take(rest.order, rest.left, due)
                self.inflight_lots -= rest.order.side * rest.left
                self._record_order(rest.order, rest.filled + filled)

    def _post(self, order: _Order) -> bool:
        """Rest ``order`` at our side's best price (False when our side of the book is empty)."""
        book = self.clock.book
        price = book.best_bid if order.side > 0 else book.best_ask
        if price is None:
            return False
        ahead = book.size_at(BID if order.side > 0 else ASK, price)
        expires = order.arrival_ts + self.timeout_ns
        self.resting.append(_Resting(order, price, ahead, expires, order.lots))
        return True

    def _on_events(self, events: np.ndarray) -> None:
        """Fill resting orders from a batch of hedge events, before the batch changes the book."""
        if not self.resting:
            return
        kind, side, price = events["kind"], events["side"], events["price"]
        trade = (kind == TRADE) | (kind == EXECUTE)
        adds = ((kind == SET) | (kind == ADD)) & (events["size"] > 0)
        hit = np.zeros(len(events), dtype=bool)
        for rest in self.resting:  # trades at or through our price, asks (bids) at or below (above) it
            reach = rest.order.side * (rest.price - price) >= 0
            hit |= reach & (trade | (adds & (side == -rest.order.side)))
        for k in np.flatnonzero(hit).tolist():
            if not self.resting:
                return
            event = events[k]
            self._match(
                int(event["exch_ts"]),
                bool(trade[k]),
                int(event["side"]),
                int(event["price"]),
                int(event["size"]),
            )

    def _match(self, ts: int, is_trade: bool, side: int, price: int, size: int) -> None:
        """One trade (or a new level on ``side`` at ``price``) against the resting orders."""
        volume = size
        for rest in list(self.resting):
            gap = rest.order.side * (rest.price - price)  # > 0: through our price
            if gap < 0 or (not is_trade and side != -rest.order.side):
                continue
            if not is_trade:
                lots = rest.left  # the opposite best reached our price: we would have been crossed
            elif gap > 0:
                lots = min(volume, rest.left)
            else:
                queue_used = min(volume, rest.ahead)
                rest.ahead -= queue_used
                lots = min(volume - queue_used, rest.left)
            if lots <= 0:
                continue
            volume -= lots if is_trade else 0
            self._fill(rest.order, rest.price, lots, ts, maker=True)
            self.inflight_lots -= rest.order.side * lots
            rest.left -= lots
            rest.filled += lots
            if rest.left == 0:
                self.resting.remove(rest)
                self._record_order(rest.order, rest.filled)

    def _take(self, order: _Order, lots: int, ts: int) -> int:
        """A market order of ``lots`` walking the book as it is at ``ts``; returns the lots filled."""
        taken = walk_book(self.clock.book, order.side, lots, self.clock.used)
        self.clock.take(order.side, taken)
        for price, size in taken:
            self._fill(order, price, size, ts, maker=False)
        return sum(size for _, size in taken)

    def _fill(self, order: _Order, price: int, lots: int, ts: int, maker: bool) -> None:
        fee = self.inst.fee(price, lots, maker=maker)
        self.cash += self.inst.cash_flow(order.side, price, lots, fee)
        self.position_lots += order.side * lots
        self.fill_rows.append(
            (
                ts,
                order.decision_ts,
                order.order_id,
                order.side,
                price * self.inst.tick_size,
                lots * self.inst.lot_size,
                fee,
                "maker" if maker else "taker",
                self.position_lots * self.inst.lot_size,
                self.cash,
                self.clock.mid_price(self.inst),
            )
        )

    def _record_order(self, order: _Order, filled: int) -> None:
        lot = self.inst.lot_size
        self.order_rows.append(
            (
                order.order_id,
                order.decision_ts,
                order.arrival_ts,
                order.side,
                order.lots * lot,
                filled * lot,
                order.net_before,
                order.net_after,
            )
        )

    def halt(self, t: int) -> None:
        """Stop at ``t``: orders still on their way or resting are dropped, and the position is closed
        by a market order through the book as it is at ``t``."""
        self.execute_until(t)
        self.clock.advance(t)
        for rest in self.resting:
            self._record_order(rest.order, rest.filled)
        for order in self.pending:
            self._record_order(order, 0)
        self.resting.clear()
        self.pending.clear()
        self.inflight_lots = 0
        if self.position_lots:
            side = -1 if self.position_lots > 0 else 1
            flatten = _Order(FLATTEN_ORDER_ID, t, t, side, abs(self.position_lots), math.nan, math.nan)
            self._take(flatten, flatten.lots, t)


FILL_COLUMNS = ["exch_ts", "decision_ts", "order_id", "side", "price", "size", "fee", "liquidity"]
FILL_COLUMNS += ["position", "cash", "mid"]
ORDER_COLUMNS = ["order_id", "decision_ts", "arrival_ts", "side", "size", "filled", "net_before", "net_after"]


def _fill_events(legs: list[MakingLeg]) -> pd.DataFrame:
    """Every making fill of every leg in the order they reached us (``local_ts``)."""
    frames = []
    for index, leg in enumerate(legs):
        f = leg.fills
        price = f["price"].to_numpy(dtype=float)
        mid = f["mid"].to_numpy(dtype=float, na_value=np.nan) if "mid" in f else price
        frames.append(
            pd.DataFrame(
                {
                    "ts": f["local_ts"].to_numpy(dtype=np.int64),
                    "leg": index,
                    "signed": f["side"].to_numpy(dtype=float) * f["size"].to_numpy(dtype=float),
                    "mid": np.where(np.isnan(mid), price, mid),
                }
            )
        )
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["ts", "leg"])
    return events.sort_values(["ts", "leg"], kind="stable").reset_index(drop=True)


def run_hedge(
    legs: list[MakingLeg],
    source: DataSource,
    band: float,
    latency_ns: int,
    per_unit: bool,
    mode: str = "taker",
    timeout_ns: int = 0,
    halt_ns: int | None = None,
    check_ns: int | None = None,
    end_ns: int | None = None,
) -> HedgeResult:
    """Hedge the legs' fills on ``source``'s book; see the module docstring for why this is exact.
    With ``halt_ns`` the hedge ignores fills that reach it later and closes its position then. With
    ``check_ns`` it also re-checks the exposure every ``check_ns`` from the first fill to ``end_ns``
    (the last fill when None), each leg's position valued at its mid and ratio then; such a check
    is recorded in the exposure table only when it sends an order."""
    hedger = Hedger(source, band, latency_ns, per_unit, mode, timeout_ns)
    positions = [0.0] * len(legs)
    exposures = [0.0] * len(legs)
    last_mid = [math.nan] * len(legs)
    rows: list[tuple[int, float, float]] = []
    events = _fill_events(legs)
    if halt_ns is not None:
        events = events[events["ts"] <= halt_ns].reset_index(drop=True)
    ts_all = events["ts"].to_numpy()
    legs_all = events["leg"].to_numpy()
    signed_all = events["signed"].to_numpy(dtype=float) if len(events) else np.zeros(0)
    mid_all = events["mid"].to_numpy(dtype=float) if len(events) else np.zeros(0)
    checks = _check_times(ts_all, check_ns, end_ns if halt_ns is None else halt_ns)
    c = 0
    for k in range(len(events)):
        t, i = int(ts_all[k]), int(legs_all[k])
        while c < len(checks) and checks[c] < t:
            _recheck(hedger, legs, positions, exposures, last_mid, int(checks[c]), rows)
            c += 1
        hedger.execute_until(t)
        hedger.clock.advance(t)
        positions[i] += signed_all[k]
        last_mid[i] = mid_all[k]
        exposures[i] = hedger.hedge_units(legs[i], positions[i], mid_all[k], t)
        if k + 1 < len(events) and ts_all[k + 1] == t:
            continue  # decide once the fills that arrived together are all counted
        before, after = hedger.decide(t, math.fsum(exposures))
        rows.append((t, before, after))
    for t in checks[c:]:
        _recheck(hedger, legs, positions, exposures, last_mid, int(t), rows)
    if halt_ns is not None:
        hedger.halt(halt_ns)
    else:
        hedger.execute_until(np.iinfo(np.int64).max)
        hedger.clock.finish()
    fills = pd.DataFrame(hedger.fill_rows, columns=FILL_COLUMNS)
    return HedgeResult(
        fills=fills,
        orders=pd.DataFrame(hedger.order_rows, columns=ORDER_COLUMNS),
        exposure=pd.DataFrame(rows, columns=["ts", "net", "net_after_hedge"]),
        final_mid=hedger.clock.mid_price(hedger.inst),
        position=hedger.position_lots * hedger.inst.lot_size,
    )


def _check_times(fill_ts: np.ndarray, check_ns: int | None, end_ns: int | None) -> np.ndarray:
    """Every ``check_ns`` after the first fill, up to ``end_ns`` (the last fill when None)."""
    if check_ns is None or not len(fill_ts):
        return np.zeros(0, np.int64)
    start = int(fill_ts[0])
    end = int(fill_ts[-1]) if end_ns is None else int(end_ns)
    return np.arange(start + check_ns, end + 1, check_ns, dtype=np.int64)


def _recheck(
    hedger: Hedger,
    legs: list[MakingLeg],
    positions: list[float],
    exposures: list[float],
    last_mid: list[float],
    t: int,
    rows: list[tuple[int, float, float]],
) -> None:
    """Re-value every leg's position at ``t`` and hedge when that left the band."""
    hedger.execute_until(t)
    hedger.clock.advance(t)
    for i, leg in enumerate(legs):
        if positions[i]:
            mid = leg.mid(t) if leg.mid is not None else math.nan
            mid = mid if math.isfinite(mid) else last_mid[i]
            exposures[i] = hedger.hedge_units(leg, positions[i], mid, t)
    before, after = hedger.decide(t, math.fsum(exposures))
    if after != before:
        rows.append((t, before, after))


def rolling_beta(
    making_mid: np.ndarray, hedge_mid: np.ndarray, grid: np.ndarray, window: int, min_obs: int
) -> Callable[[int], float]:
    """Beta of the making instrument's 1-grid-step log returns on the hedge's, over the ``window``
    returns that end at or before ``t`` (1.0 until ``min_obs`` returns are known or when the hedge
    did not move)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rm = np.diff(np.log(making_mid))
        rh = np.diff(np.log(hedge_mid))
    ok = np.isfinite(rm) & np.isfinite(rh)
    rm, rh = np.where(ok, rm, 0.0), np.where(ok, rh, 0.0)
    n = np.concatenate([[0], np.cumsum(ok)])
    sums = [np.concatenate([[0.0], np.cumsum(x)]) for x in (rm, rh, rm * rh, rh * rh)]
    betas = np.ones(len(grid))
    for j in range(1, len(grid)):  # returns 0..j-1 end at grid[j]
        lo = max(0, j - window)
        count = n[j] - n[lo]
        if count < min_obs:
            continue
        sm, sh, smh, shh = (s[j] - s[lo] for s in sums)
        var = shh / count - (sh / count) ** 2
        if var > 0:
            betas[j] = (smh / count - sm * sh / count**2) / var

    def at(t: int) -> float:
        j = int(np.searchsorted(grid, t, side="right")) - 1
        return float(betas[j]) if j >= 0 else 1.0

    return at
