"""Fair value: where the next trade price is centred, from the top of the book and recent trades.

- ``mid_price``: (best bid + best ask) / 2.
- ``weighted_mid``: ``(b * Qa + a * Qb) / (Qb + Qa)``, which leans toward the side with less size.
  Writing the imbalance as ``I = Qb / (Qb + Qa)`` and the spread as ``S = a - b`` it is
  ``mid + S * (I - 1/2)``.
- :class:`MicropriceG1`: Stoikov (2018), "The micro-price: a high-frequency estimator of future
  prices", Quantitative Finance 18(12). The micro-price is ``mid + g(I, S)``; its first-order term
  ``g1(I, S) = E[M(tau1) - M(t) | I(t) = I, S(t) = S]`` (``tau1`` the next time the mid changes) is
  estimated from data by binning imbalance and spread and averaging the next mid change, with the
  paper's symmetrisation (every sample also counts as ``(1 - I, S, -dM)``). The weighted mid is the
  special case ``g = S * (I - 1/2)``; it is the prior each bin starts from and is pulled away from
  as data arrives.
- ``vwap`` of recent trades (see :class:`quotewise.signals.flow.TradeWindow`) and :class:`Ema`.
"""

from __future__ import annotations

import numpy as np


def mid_price(best_bid: float, best_ask: float) -> float:
    """The mid: halfway between the best prices."""
    return (best_bid + best_ask) / 2.0


def weighted_mid(best_bid: float, bid_size: float, best_ask: float, ask_size: float) -> float:
    """Size-weighted mid; equals the mid when both sizes are zero (no information either way)."""
    total = bid_size + ask_size
    if total <= 0:
        return mid_price(best_bid, best_ask)
    return (best_bid * ask_size + best_ask * bid_size) / total


def imbalance01(bid_size: float, ask_size: float) -> float:
    """Stoikov's imbalance ``I = Qb / (Qb + Qa)`` in [0, 1]; 1/2 when both sides are empty."""
    total = bid_size + ask_size
    return 0.5 if total <= 0 else bid_size / total


def vwap(prices: np.ndarray, sizes: np.ndarray) -> float | None:
    """Volume-weighted average price, or None without volume."""
    volume = float(np.sum(sizes))
    if volume <= 0:
        return None
    return float(np.dot(prices, sizes)) / volume


def _bins(imb: np.ndarray, spread: np.ndarray, n_imbalance: int, n_spread: int) -> tuple[np.ndarray, ...]:
    i = np.minimum((np.asarray(imb, np.float64) * n_imbalance).astype(np.int64), n_imbalance - 1)
    s = np.minimum(np.asarray(spread, np.int64), n_spread) - 1
    return s, i


def fit_g1(
    imb: np.ndarray, spread: np.ndarray, next_dmid: np.ndarray, n_imbalance: int = 10, n_spread: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of the next mid change per (spread, imbalance) bin, symmetrised.

    ``imb`` in [0, 1]; ``spread`` in ticks (>= 1; the last bin holds ``n_spread`` and wider);
    ``next_dmid`` the change of the mid at its next change, in ticks. ``sums / counts`` is g1.
    """
    s, i = _bins(imb, spread, n_imbalance, n_spread)
    d = np.asarray(next_dmid, np.float64)
    sums = np.zeros((n_spread, n_imbalance))
    counts = np.zeros((n_spread, n_imbalance))
    np.add.at(sums, (s, i), d)
    np.add.at(counts, (s, i), 1.0)
    # symmetrisation: (I, S, dM) and (1 - I, S, -dM) are equally likely
    return sums - sums[:, ::-1], counts + counts[:, ::-1]


class MicropriceG1:
    """Online estimate of Stoikov's first-order micro-price adjustment, sampled at each decision.

    A sample (I, S) taken while the mid is M is resolved when the mid next differs from M, by the
    change. Samples waiting for the same mid are kept as counts per bin, so resolving them is one
    table update. ``prior_weight`` is how many samples the weighted-mid prior is worth in a bin.
    """

    def __init__(self, n_imbalance: int = 10, n_spread: int = 5, prior_weight: float = 20.0) -> None:
        self.n_imbalance = n_imbalance
        self.n_spread = n_spread
        self.prior_weight = prior_weight
        self.sums = np.zeros((n_spread, n_imbalance))
        self.counts = np.zeros((n_spread, n_imbalance))
        self._pending = np.zeros((n_spread, n_imbalance))
        self._pending_mid: float | None = None

    def _bin(self, imb: float, spread_ticks: int) -> tuple[int, int]:
        return min(spread_ticks, self.n_spread) - 1, min(int(imb * self.n_imbalance), self.n_imbalance - 1)

    def observe(self, mid: float, imb: float, spread_ticks: int) -> None:
        """Record the book at a decision: resolve the samples waiting for a mid change, add this one."""
        if self._pending_mid is not None and mid != self._pending_mid:
            d = mid - self._pending_mid
            self.sums += (self._pending - self._pending[:, ::-1]) * d
            self.counts += self._pending + self._pending[:, ::-1]
            self._pending[:] = 0.0
        self._pending_mid = mid
        if spread_ticks >= 1:
            self._pending[self._bin(imb, spread_ticks)] += 1.0

    def adjustment(self, imb: float, spread_ticks: int) -> float:
        """g1(I, S) in ticks: the bin's mean next mid change, shrunk toward ``S * (I - 1/2)``."""
        if spread_ticks < 1:
            return 0.0
        cell = self._bin(imb, spread_ticks)
        prior = spread_ticks * (imb - 0.5)
        return float((self.sums[cell] + self.prior_weight * prior) / (self.counts[cell] + self.prior_weight))

    def price(self, best_bid: int, bid_size: float, best_ask: int, ask_size: float) -> float:
        """The micro-price ``mid + g1(I, S)`` in ticks."""
        return mid_price(best_bid, best_ask) + self.adjustment(
            imbalance01(bid_size, ask_size), best_ask - best_bid
        )


class Ema:
    """Exponential moving average ``x <- alpha * v + (1 - alpha) * x``, seeded by the first value."""

    def __init__(self, alpha: float) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.value: float | None = None

    def update(self, v: float) -> float:
        self.value = v if self.value is None else self.alpha * v + (1.0 - self.alpha) * self.value
        return self.value
