"""Volatility of the mid, sampled at quote decisions, and a low/medium/high regime.

The mid is modelled as arithmetic (as Avellaneda-Stoikov do), so a "return" is a mid change in
ticks and volatility is ``sigma`` in ticks per square-root second: the standard deviation of the
mid's change over one second. Both estimators divide squared changes by the time they took
(realised variance per second, no mean removed, the usual choice at high frequency), so an uneven
decision grid (the backtest skips decisions while nothing happens) does not bias them.

- :class:`RollingVol`: ``sigma^2 = sum(dM^2) / sum(dt)`` over the changes of the last ``window``.
- :class:`EwmaVol`: ``v <- w * v + (1 - w) * dM^2 / dt`` with ``w = 2^(-dt / halflife)``
  (RiskMetrics-style exponential weighting, in time rather than in samples).
- :func:`vol_regime`: the ratio of the current estimate to a slow baseline, cut at two levels.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

NS_PER_S = 1e9

Regime = Literal["low", "medium", "high"]


class RollingVol:
    """Realised volatility over a sliding time window (ticks per sqrt second)."""

    def __init__(self, window_ns: int) -> None:
        if window_ns <= 0:
            raise ValueError(f"window must be positive, got {window_ns} ns")
        self.window_ns = window_ns
        self._samples: deque[tuple[int, float, float]] = deque()  # (time, dM^2, dt seconds)
        self._sq = 0.0
        self._dt = 0.0
        self._last: tuple[int, float] | None = None

    def update(self, t: int, mid: float) -> float | None:
        """Add the mid at time ``t`` (ns); returns the current sigma."""
        if self._last is not None and t > self._last[0]:
            dm = mid - self._last[1]
            dt = (t - self._last[0]) / NS_PER_S
            self._samples.append((t, dm * dm, dt))
            self._sq += dm * dm
            self._dt += dt
        if self._last is None or t > self._last[0]:
            self._last = (t, mid)
        while self._samples and self._samples[0][0] <= t - self.window_ns:
            _, sq, dt = self._samples.popleft()
            self._sq -= sq
            self._dt -= dt
        return self.sigma

    @property
    def sigma(self) -> float | None:
        if not self._samples or self._dt <= 0:
            return None
        return math.sqrt(max(self._sq, 0.0) / self._dt)


class EwmaVol:
    """Exponentially weighted realised volatility with a half-life in time (ticks per sqrt second)."""

    def __init__(self, halflife_ns: int) -> None:
        if halflife_ns <= 0:
            raise ValueError(f"half-life must be positive, got {halflife_ns} ns")
        self.halflife_ns = halflife_ns
        self.var: float | None = None
        self._last: tuple[int, float] | None = None

    def update(self, t: int, mid: float) -> float | None:
        if self._last is not None and t > self._last[0]:
            dm = mid - self._last[1]
            dt_ns = t - self._last[0]
            rate = dm * dm / (dt_ns / NS_PER_S)
            w = 2.0 ** (-dt_ns / self.halflife_ns)
            self.var = rate if self.var is None else w * self.var + (1.0 - w) * rate
        if self._last is None or t > self._last[0]:
            self._last = (t, mid)
        return self.sigma

    @property
    def sigma(self) -> float | None:
        return None if self.var is None else math.sqrt(self.var)


def vol_regime(sigma: float, baseline: float, low: float = 0.67, high: float = 1.5) -> Regime:
    """``low`` below ``low * baseline``, ``high`` above ``high * baseline``, else ``medium``."""
    if baseline <= 0:
        return "medium" if sigma <= 0 else "high"
    ratio = sigma / baseline
    if ratio < low:
        return "low"
    if ratio > high:
        return "high"
    return "medium"
