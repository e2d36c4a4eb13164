"""The pieces a quoting strategy is assembled from; :mod:`quotewise.quoting.named` combines them.

Each piece answers one question, works in ticks and lots, and costs little per decision:

- :class:`FairValue`: where to centre (mid, weighted mid, micro-price, VWAP of recent trades, EMA);
- :class:`Volatility`: how fast the mid moves (rolling or EWMA), and the regime;
- :func:`half_spread`: base + volatility multiple, within min/max caps; :func:`apply_fee_floor`:
  never a bid/ask pair whose round trip loses after fees;
- :func:`inventory_band` and :func:`skew_shift`: linear skew and the normal / skew / stop / flatten
  bands;
- :func:`ladder`: levels per side, spacing and size decay;
- :class:`RequoteFilter`: leave a quote where it is unless it should move by ``threshold``;
- :class:`Pressure`: book, trade-flow and order-flow imbalance as a fair-value shift;
- :class:`AdverseSelection`: markouts of our fills widen or pause the side being picked off;
- :class:`IntensityEstimator`: ``lambda(delta) = A exp(-k delta)`` fitted online from trades.

The formulas and sources are in docs/models.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numba as nb
import numpy as np

from quotewise.book.view import MarketView
from quotewise.parsing import PriceDistance
from quotewise.quoting.base import Quote
from quotewise.quoting.models import fit_intensity, tail_counts
from quotewise.quoting.params import FvMethod, VolMethod
from quotewise.signals.fair_value import Ema, MicropriceG1, weighted_mid
from quotewise.signals.flow import OfiWindow, TradeWindow, book_imbalance, market_order_depths
from quotewise.signals.markouts import MarkoutTracker
from quotewise.signals.volatility import EwmaVol, Regime, RollingVol, vol_regime

Band = Literal["normal", "skew", "stop", "flatten"]

# The regime compares the volatility with a baseline that forgets this many times more slowly.
REGIME_BASELINE_FACTOR = 10


@dataclass(frozen=True)
class TickDistance:
    """A price distance (a :class:`~quotewise.parsing.PriceDistance` setting) on one instrument, in
    ticks: ``ticks + frac * mid``."""

    ticks: float
    frac: float

    @classmethod
    def of(cls, distance: PriceDistance, tick_size: float) -> TickDistance:
        return cls(*distance.resolve(tick_size))

    def at(self, mid_ticks: float) -> float:
        """The distance in ticks where the mid is ``mid_ticks``."""
        return self.ticks + self.frac * mid_ticks


# -- fair value and volatility -----------------------------------------------------------------


class FairValue:
    """Fair value in ticks by ``method``; the micro-price and EMA learn at every decision."""

    def __init__(self, method: FvMethod, alpha: float, trades: TradeWindow | None) -> None:
        if method == "vwap" and trades is None:
            raise ValueError("the vwap fair value needs a TradeWindow")
        self.method = method
        self.trades = trades
        self.micro = MicropriceG1() if method == "microprice" else None
        self.ema = Ema(alpha) if method == "ema" else None

    def update(self, view: MarketView) -> float:
        bb, ba = view.best_bid, view.best_ask
        assert bb is not None and ba is not None, "fair value needs both sides of the book"
        mid = (bb + ba) / 2.0
        if self.micro is not None:
            total = view.bid_size + view.ask_size
            self.micro.observe(mid, 0.5 if total <= 0 else view.bid_size / total, ba - bb)
            return self.micro.price(bb, view.bid_size, ba, view.ask_size)
        if self.ema is not None:
            return self.ema.update(mid)
        if self.method == "weighted_mid":
            return weighted_mid(bb, view.bid_size, ba, view.ask_size)
        if self.method == "vwap":
            assert self.trades is not None
            v = self.trades.vwap()
            return mid if v is None else v
        return mid


class Volatility:
    """Sigma of the mid (ticks per sqrt second) by a rolling window or EWMA, and its regime."""

    def __init__(self, method: VolMethod, window_ns: int) -> None:
        self.estimator: RollingVol | EwmaVol = (
            RollingVol(window_ns) if method == "rolling" else EwmaVol(window_ns)
        )
        self.baseline = EwmaVol(REGIME_BASELINE_FACTOR * window_ns)

    def update(self, t: int, mid: float) -> float | None:
        self.baseline.update(t, mid)
        return self.estimator.update(t, mid)

    @property
    def sigma(self) -> float | None:
        return self.estimator.sigma

    @property
    def regime(self) -> Regime | None:
        sigma, base = self.estimator.sigma, self.baseline.sigma
        return None if sigma is None or base is None else vol_regime(sigma, base)


# -- spread and fees ------------------------------------------------------------------------------


def half_spread(
    base: float, sigma: float, vol_mult: float, lo: float | None = None, hi: float | None = None
) -> float:
    """``base + vol_mult * sigma``, raised to ``lo`` then capped at ``hi`` (ticks)."""
    h = base + vol_mult * sigma
    if lo is not None:
        h = max(h, lo)
    if hi is not None:
        h = min(h, hi)
    return h


def floor_fee(post_only: bool, maker_fee: float, taker_fee: float) -> float:
    """The fee a quote can be charged: the maker fee when post-only, else the worse of the two."""
    return maker_fee if post_only else max(maker_fee, taker_fee)


def round_trip_profit(bid: float, ask: float, fee: float) -> float:
    """Money per unit from buying at ``bid`` and selling at ``ask``, each paying ``fee``."""
    return ask * (1.0 - fee) - bid * (1.0 + fee)


@nb.njit(cache=True)
def apply_fee_floor(bid: int, ask: int, fee: float) -> tuple[int, int]:
    """Widen ``bid``/``ask`` (ticks) outward by the fewest equal whole ticks so that the ask is above
    the bid and the round trip earns: ``ask (1 - fee) - bid (1 + fee) > 0``.

    Widening both by ``x`` lowers ``d = bid (1 + fee) - ask (1 - fee)`` by exactly ``2 x``, so
    ``x = floor(d / 2) + 1`` when ``d >= 0``. A rebate (``fee < 0``) would make even a zero spread
    earn, but a bid may never meet our own ask, so the floor is then one tick. Compiled, because the
    compiled quoting rule (``quotewise.quoting.kernel``) applies this same rule.
    """
    if fee >= 1:
        raise ValueError("a fee of 100% or more takes the whole notional: no spread can be profitable")
    d = bid * (1.0 + fee) - ask * (1.0 - fee)
    x = max(0 if d < 0 else math.floor(d / 2.0) + 1, math.ceil((bid - ask + 1) / 2))
    while ask + x <= bid - x or (ask + x) * (1.0 - fee) - (bid - x) * (1.0 + fee) <= 0:  # float rounding of d
        x += 1
    return bid - x, ask + x


# -- inventory ---------------------------------------------------------------------------------


def inventory_band(
    q: float, max_q: float, skew_band: float | None = None, flatten_band: float | None = None
) -> Band:
    """The band of ``|q| / max_q``: flatten beyond ``flatten_band``, stop from 1, skew from ``skew_band``."""
    x = abs(q) / max_q
    if flatten_band is not None and x > flatten_band:
        return "flatten"
    if x >= 1.0:
        return "stop"
    if skew_band is not None and x >= skew_band:
        return "skew"
    return "normal"


def skew_shift(
    q: float,
    max_q: float,
    skew: float,
    half: float,
    skew_band: float | None = None,
    skew_band_factor: float = 1.0,
) -> float:
    """Centre shift (ticks) ``-skew * half * q / max_q``, times ``skew_band_factor`` from ``skew_band``."""
    mult = skew_band_factor if skew_band is not None and abs(q) / max_q >= skew_band else 1.0
    return -skew * mult * half * q / max_q


def adding_side(q: float) -> int:
    """The side (+1 bid, -1 ask) whose fills would grow ``|q|``; 0 when flat."""
    return 1 if q > 0 else -1 if q < 0 else 0


# -- ladder and requoting ------------------------------------------------------------------------


def ladder(
    top: int, side: int, levels: int, spacing: int, size: int, decay: float, min_lots: int, step: int = 1
) -> list[Quote]:
    """``levels`` quotes from ``top`` outward, ``spacing`` ticks apart, level ``i`` sized ``size * decay^i``.

    Sizes are rounded to the venue's size step (``step`` lots) and kept at least ``min_lots``; bids at
    or below zero are left out.
    """
    out = []
    for i in range(levels):
        price = top - side * i * spacing
        if price <= 0:
            break
        out.append(Quote(price, max(min_lots, step * round(size * decay**i / step))))
    return out


class RequoteFilter:
    """Keep each side's previous top price unless the new one differs by at least ``threshold`` ticks.

    The ladder is laid out from the top, so keeping the top keeps every level (and its queue
    place). A kept price must still lie in the side's allowed range, or the new one is used.
    """

    def __init__(self) -> None:
        self.prev: dict[int, int | None] = {1: None, -1: None}

    def apply(self, side: int, price: int, threshold: float, lo: float, hi: float) -> int:
        prev = self.prev[side]
        if prev is not None and abs(price - prev) < threshold and lo <= prev <= hi:
            price = prev
        self.prev[side] = price
        return price

    def clear(self, side: int) -> None:
        """Forget a side that is not quoted now, so its next quote starts fresh."""
        self.prev[side] = None


# -- flow and adverse selection ------------------------------------------------------------------


class Pressure:
    """Expected near-term mid move (ticks) from book imbalance, trade flow and OFI.

    ``book_skew * I * S/2 + flow_skew * TFI * S/2 + ofi_skew * OFI / (2 D)``, with ``S`` the market
    spread: ``book_skew = 1`` reproduces the weighted mid, ``ofi_skew = 1`` is the stylised impact
    of Cont, Kukanov & Stoikov (2014).
    """

    def __init__(
        self,
        book_skew: float,
        flow_skew: float,
        ofi_skew: float,
        trades: TradeWindow | None,
        ofi: OfiWindow | None,
    ) -> None:
        self.book_skew = book_skew
        self.flow_skew = flow_skew
        self.ofi_skew = ofi_skew
        self.trades = trades
        self.ofi = ofi

    def shift(self, view: MarketView, spread_ticks: float) -> float:
        out = 0.0
        if self.book_skew:
            out += self.book_skew * book_imbalance(view.bid_size, view.ask_size) * spread_ticks / 2.0
        if self.flow_skew and self.trades is not None:
            out += self.flow_skew * self.trades.imbalance() * spread_ticks / 2.0
        if self.ofi_skew and self.ofi is not None:
            out += self.ofi_skew * self.ofi.price_impact_ticks()
        return out


class AdverseSelection:
    """Widens a side by ``widen`` times its adverse mean markout, and pauses it for ``pause_ns``
    when a newly matured markout brings that mean to ``-pause_ticks`` or worse."""

    def __init__(self, horizon_ns: int, widen: float, pause: TickDistance | None, pause_ns: int) -> None:
        self.tracker = MarkoutTracker(horizon_ns)
        self.widen = widen
        self.pause = pause
        self.pause_ns = pause_ns
        self.paused_until = {1: -1, -1: -1}

    def on_fill(self, t: int, side: int, price: int) -> None:
        self.tracker.on_fill(t, side, float(price))

    def update(self, now: int, mid: float) -> None:
        for side, _ in self.tracker.update(now, mid):
            mean = self.tracker.mean[side]
            if self.pause is not None and mean is not None and mean <= -self.pause.at(mid):
                self.paused_until[side] = now + self.pause_ns

    def extra(self, side: int) -> float:
        """Extra distance (ticks) for ``side``: ``widen * max(0, -mean markout)``."""
        mean = self.tracker.mean[side]
        return 0.0 if mean is None else self.widen * max(0.0, -mean)

    def paused(self, side: int, now: int) -> bool:
        return now < self.paused_until[side]


# -- fill intensity ------------------------------------------------------------------------------


class IntensityEstimator:
    """Online fit of ``lambda(delta) = A exp(-k delta)`` from the depth market orders reach.

    Each market order's depth is how far its furthest print lies beyond the mid just before it
    (prints with the same time and side are one order). A quote resting at depth ``delta`` would
    be hit by every order that reaches at least ``delta``, so ``lambda`` at each grid depth is that
    count over the elapsed time; both forget with half-life ``halflife_ns``. The grid part that every
    order reaches (inside the usual spread) says nothing about the decay and is left out of the fit.
    Results are in price units: ``A`` per second, ``k`` per unit of price.
    """

    def __init__(
        self,
        tick_size: float,
        halflife_ns: int,
        grid_ticks: np.ndarray | None = None,
        min_orders: float = 20.0,
        refit_ns: int = 1_000_000_000,
    ) -> None:
        self.tick_size = tick_size
        self.halflife_ns = halflife_ns
        self.grid_ticks = 0.5 * np.arange(1, 41) if grid_ticks is None else np.asarray(grid_ticks, np.float64)
        self.min_orders = min_orders
        self.refit_ns = refit_ns
        self._fit: tuple[float, float] | None = None
        self._fit_t: int | None = None
        self.counts = np.zeros(len(self.grid_ticks))
        self.orders = 0.0
        self.elapsed_s = 0.0
        self._last_t: int | None = None

    def update(self, now: int, tops: np.ndarray, events: np.ndarray | None) -> None:
        """Decay, then add the market orders among ``events`` (``tops`` is their top-of-book tape)."""
        if self._last_t is not None and now > self._last_t:
            dt = now - self._last_t
            w = 2.0 ** (-dt / self.halflife_ns)
            self.counts *= w
            self.orders *= w
            self.elapsed_s = self.elapsed_s * w + dt / 1e9
        self._last_t = now if self._last_t is None else max(now, self._last_t)
        if events is None or not len(events):
            return
        depths = market_order_depths(events, tops)
        if len(depths):
            self.counts += tail_counts(depths, self.grid_ticks)
            self.orders += len(depths)

    def fit(self, now: int) -> tuple[float, float] | None:
        """``(A, k)`` in price units, or None until ``min_orders`` market orders have been seen.

        Refitted at most once per ``refit_ns``: the counts forget over minutes, so the fit moves
        slowly.
        """
        if self._fit_t is not None and now - self._fit_t < self.refit_ns:
            return self._fit
        if self.orders < self.min_orders or self.elapsed_s <= 0:
            return None
        full = np.flatnonzero(self.counts >= self.orders * (1.0 - 1e-9))
        j0 = int(full[-1]) if len(full) else 0
        counts = self.counts[j0:]
        self._fit = fit_intensity(
            self.grid_ticks[j0:] * self.tick_size,
            counts / self.elapsed_s,
            np.where(counts >= 1.0, counts, 0.0),
        )
        self._fit_t = now
        return self._fit
