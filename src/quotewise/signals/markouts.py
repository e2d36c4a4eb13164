"""Markouts of our own fills: did the mid move against us after we traded?

The markout of a fill at price ``p`` on side ``s`` (+1 we bought, -1 we sold) after a horizon
``h`` is ``s * (mid(t + h) - p)`` in ticks: positive when the trade was good for us, negative when
we were picked off. The mid is read at the first decision at or after ``t + h``, so the effective
horizon is ``h`` rounded up to the decision grid. Each side keeps an exponentially weighted mean
of its matured markouts, which the adverse-selection component turns into a wider or paused side.
"""

from __future__ import annotations

from collections import deque


class MarkoutTracker:
    """Per-side EWMA (weight ``alpha`` per fill) of fill markouts at ``horizon_ns``."""

    def __init__(self, horizon_ns: int, alpha: float = 0.2) -> None:
        if horizon_ns < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon_ns} ns")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.horizon_ns = horizon_ns
        self.alpha = alpha
        self._pending: deque[tuple[int, int, float]] = deque()  # (time, side, price ticks)
        self.mean: dict[int, float | None] = {1: None, -1: None}
        self.count: dict[int, int] = {1: 0, -1: 0}

    def on_fill(self, t: int, side: int, price: float) -> None:
        """Remember a fill of ours (``side`` +1 bought, -1 sold) until its markout matures."""
        if side not in (1, -1):
            raise ValueError(f"side must be +1 or -1, got {side}")
        self._pending.append((t, side, price))

    def update(self, now: int, mid: float) -> list[tuple[int, float]]:
        """Mark the fills whose horizon has passed at ``mid``; returns their (side, markout)."""
        matured: list[tuple[int, float]] = []
        while self._pending and self._pending[0][0] + self.horizon_ns <= now:
            _, side, price = self._pending.popleft()
            m = side * (mid - price)
            old = self.mean[side]
            self.mean[side] = m if old is None else self.alpha * m + (1.0 - self.alpha) * old
            self.count[side] += 1
            matured.append((side, m))
        return matured
