"""How loaded the engine's event loop is: the share of the time its thread computes, and how late a
timer wakes. Every maker of an engine takes its turns in that one loop, so these two say how much
headroom is left on this machine: near 100% busy, or a lag of tens of milliseconds, updates wait
for their turn and quotes follow the market late (``bench/tick_to_quote.py`` shows where: about
half busy at 1,000 instruments x 50 updates a second on the development machine). ``mm engine
status``, ``/health`` and ``/metrics`` show them; the engine logs when the loop becomes saturated
and when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from quotewise.logs import kv

logger = logging.getLogger(__name__)

SAMPLE_S = 1.0  # one sample a second
WINDOW = 10  # figures over the last this many samples
SATURATED_BUSY = 0.8  # a loop this busy has little left for bursts
SATURATED_LAG_S = 0.020  # a timer this late: updates wait as long for their turn


class LoopLoad:
    """Samples the running loop every ``SAMPLE_S`` (:meth:`run`, a task of the loop it measures)."""

    def __init__(self, sample_s: float = SAMPLE_S, window: int = WINDOW) -> None:
        self.sample_s = sample_s
        self._busy: deque[float] = deque(maxlen=window)
        self._lag: deque[float] = deque(maxlen=window)
        self.saturated = False

    @property
    def busy(self) -> float | None:
        """Mean share of wall time the loop's thread computed over the window (None before a sample)."""
        return sum(self._busy) / len(self._busy) if self._busy else None

    @property
    def lag_s(self) -> float | None:
        """The latest a timer woke over the window, in seconds (None before a sample)."""
        return max(self._lag) if self._lag else None

    def figures(self) -> dict[str, float | bool | None]:
        lag = self.lag_s
        return {
            "loop_busy": self.busy,
            "loop_lag_ms": lag * 1e3 if lag is not None else None,
            "loop_saturated": self.saturated,
        }

    def add(self, busy: float, lag_s: float) -> None:
        """One sample; logs when the loop turns saturated and when it recovers."""
        self._busy.append(busy)
        self._lag.append(lag_s)
        mean_busy, worst_lag = self.busy or 0.0, self.lag_s or 0.0
        saturated = mean_busy >= SATURATED_BUSY or worst_lag >= SATURATED_LAG_S
        if saturated != self.saturated:
            self.saturated = saturated
            figures = kv(busy=round(mean_busy, 2), lag_ms=round(worst_lag * 1e3, 1))
            if saturated:
                logger.warning("event loop saturated: quotes follow the market late", extra=figures)
            else:
                logger.info("event loop no longer saturated", extra=figures)

    async def run(self) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        while True:
            await asyncio.sleep(self.sample_s)
            now, now_cpu = time.perf_counter(), time.thread_time()
            elapsed = now - wall
            self.add(min((now_cpu - cpu) / elapsed, 1.0), max(elapsed - self.sample_s, 0.0))
            wall, cpu = now, now_cpu
