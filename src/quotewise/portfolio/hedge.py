"""The taker hedge: after each making fill, bring the book's net exposure back to zero with a market
order on the hedge instrument, executed against the replayed hedge book (docs/portfolio.md).

Taker hedges never rest and our orders do not change the replayed book, so running the hedge after
the making runs, from their fills and a replay of the hedge instrument's events, is exact under the
simulator's rules: the book each hedge meets is the book the simulator would have shown at that time.
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
from quotewise.model.events import ASK, BID, CLEAR
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


class Hedger:
    """Runs the hedge rule over the making fills; ``contract`` ratio: one hedge unit per unit held,
    otherwise base-asset exposure converted to hedge units and scaled by the leg's ratio."""

    def __init__(self, source: DataSource, band: float, latency_ns: int, per_unit: bool) -> None:
        self.inst = source.instrument
        self.clock = BookClock(source)
        self.band = band
        self.latency_ns = latency_ns
        self.per_unit = per_unit
        self.position_lots = 0  # filled
        self.inflight_lots = 0  # sent, not yet at the venue
        self.cash = 0.0
        self.pending: deque[_Order] = deque()
        self.fill_rows: list[tuple] = []
        self.order_rows: list[tuple] = []
        self.next_id = 1

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

    def execute_until(self, t: int) -> None:
        while self.pending and self.pending[0].arrival_ts <= t:
            self._execute(self.pending.popleft())

    def _execute(self, order: _Order) -> None:
        self.clock.advance(order.arrival_ts)
        mid = self.clock.mid_price(self.inst)
        filled = 0
        taken = walk_book(self.clock.book, order.side, order.lots, self.clock.used)
        self.clock.take(order.side, taken)
        for price, lots in taken:
            fee = self.inst.fee(price, lots, maker=False)
            self.cash += self.inst.cash_flow(order.side, price, lots, fee)
            self.position_lots += order.side * lots
            filled += lots
            self.fill_rows.append(
                (
                    order.arrival_ts,
                    order.decision_ts,
                    order.order_id,
                    order.side,
                    price * self.inst.tick_size,
                    lots * self.inst.lot_size,
                    fee,
                    "taker",
                    self.position_lots * self.inst.lot_size,
                    self.cash,
                    mid,
                )
            )
        self.inflight_lots -= order.side * order.lots  # what was not filled returns to the net
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
    legs: list[MakingLeg], source: DataSource, band: float, latency_ns: int, per_unit: bool
) -> HedgeResult:
    """Hedge the legs' fills on ``source``'s book; see the module docstring for why this is exact."""
    hedger = Hedger(source, band, latency_ns, per_unit)
    positions = [0.0] * len(legs)
    exposures = [0.0] * len(legs)
    rows: list[tuple[int, float, float]] = []
    events = _fill_events(legs)
    ts_all = events["ts"].to_numpy()
    legs_all = events["leg"].to_numpy()
    signed_all = events["signed"].to_numpy(dtype=float) if len(events) else np.zeros(0)
    mid_all = events["mid"].to_numpy(dtype=float) if len(events) else np.zeros(0)
    for k in range(len(events)):
        t, i = int(ts_all[k]), int(legs_all[k])
        hedger.execute_until(t)
        hedger.clock.advance(t)
        positions[i] += signed_all[k]
        exposures[i] = hedger.hedge_units(legs[i], positions[i], mid_all[k], t)
        if k + 1 < len(events) and ts_all[k + 1] == t:
            continue  # decide once the fills that arrived together are all counted
        before, after = hedger.decide(t, math.fsum(exposures))
        rows.append((t, before, after))
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
