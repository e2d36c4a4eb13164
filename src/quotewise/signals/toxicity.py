"""Toxic-flow detectors: is the flow right now informed, so that a resting quote is about to be run over?

Each detector is a streaming signal fed the market events a strategy sees (chunk by chunk, state
carried across chunks, numba where it runs per event), with a threshold and a response that
:mod:`quotewise.quoting.adaptive` applies:

- :class:`Vpin`: volume-synchronised probability of informed trading (Easley, Lopez de Prado & O'Hara
  2012), equal-volume buckets with bulk volume classification. Above ``threshold``: widen and shrink
  both sides.
- :class:`SweepDetector`: one taker trading through several price levels at one exchange timestamp.
  A buy sweep pauses our ask (and a sell sweep our bid) for a while.
- :class:`SizeOutliers`: a trade larger than a rolling quantile (and z-score) of recent trade sizes.
  The side the outlier hit is widened for a while.
- :class:`LeadLag`: a move of the touch on a lead instrument (the USD-M perpetual for spot) followed
  within a window by trades on ours. A lead move pauses the side it points at until ours catches up.
- :func:`fill_markouts`: our own fills' markouts by side, through
  :class:`~quotewise.signals.markouts.MarkoutTracker` (the same tracker the adverse-selection
  component uses).

:func:`scan` runs them all over a data file (``mm data toxicity``). Formulas: docs/models.md.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any

import numba as nb
import numpy as np

from quotewise.book import core
from quotewise.errors import ConfigError
from quotewise.model.events import EXECUTE, TRADE, EventSource
from quotewise.signals.markouts import MarkoutTracker

SQRT2 = math.sqrt(2.0)

# -- VPIN -------------------------------------------------------------------------------------------

# VPIN state: previous trade price (NaN before any), the open bucket's buy, sell and total volume, and
# the EWMA of squared price changes that estimates sigma when none is given.
V_PREV, V_BUY, V_SELL, V_VOL, V_VAR, V_SEEN = range(6)
VPIN_STATE_LEN = 6


@nb.njit(cache=True)
def buy_fraction(dp, sigma):
    """Bulk volume classification: the buy share of a trade's volume, ``Phi(dp / sigma)``; without a
    scale, the tick rule (1 up, 0 down, 1/2 unchanged)."""
    if sigma <= 0.0:
        return 0.5 if dp == 0.0 else (1.0 if dp > 0.0 else 0.0)
    return 0.5 * (1.0 + math.erf(dp / (sigma * SQRT2)))


@nb.njit(cache=True)
def vpin_buckets(prices, sizes, bucket_volume, sigma, var_alpha, state):
    """Fill equal-volume buckets with ``(prices, sizes)`` trades; return ``|V_buy - V_sell| / V`` of each
    bucket completed. A trade's volume is split by :func:`buy_fraction` of its price change from the
    previous trade and may span buckets. ``sigma`` <= 0: estimated as the EWMA (weight ``var_alpha``)
    of the squared changes seen before the trade."""
    total = 0.0
    for i in range(sizes.shape[0]):
        total += sizes[i]
    out = np.empty(int(total / bucket_volume) + 2, np.float64)
    k = 0
    for i in range(prices.shape[0]):
        p = prices[i]
        dp = 0.0 if math.isnan(state[V_PREV]) else p - state[V_PREV]
        scale = sigma if sigma > 0.0 else math.sqrt(state[V_VAR])
        frac = buy_fraction(dp, scale)
        if not math.isnan(state[V_PREV]):
            seen = state[V_SEEN]
            state[V_VAR] = dp * dp if seen == 0 else var_alpha * dp * dp + (1.0 - var_alpha) * state[V_VAR]
            state[V_SEEN] = seen + 1
        state[V_PREV] = p
        left = sizes[i]
        while left > 0.0:
            take = min(bucket_volume - state[V_VOL], left)
            state[V_BUY] += take * frac
            state[V_SELL] += take * (1.0 - frac)
            state[V_VOL] += take
            left -= take
            if state[V_VOL] >= bucket_volume * (1.0 - 1e-12):
                out[k] = abs(state[V_BUY] - state[V_SELL]) / state[V_VOL]
                k += 1
                state[V_BUY] = 0.0
                state[V_SELL] = 0.0
                state[V_VOL] = 0.0
    return out[:k]


class Vpin:
    """VPIN = mean ``|V_buy - V_sell| / V`` over the last ``n_buckets`` buckets of ``bucket_volume`` (lots).

    ``sigma`` (ticks) scales the bulk classification; None estimates it from the trades. ``value`` is
    None until ``n_buckets`` buckets are complete; ``toxic`` when it is at least ``threshold``.
    """

    def __init__(
        self,
        bucket_volume: float,
        n_buckets: int = 50,
        threshold: float = 0.2,
        sigma: float | None = None,
        var_alpha: float = 0.01,
    ) -> None:
        if bucket_volume <= 0:
            raise ConfigError(f"VPIN bucket volume must be positive, got {bucket_volume}")
        if n_buckets < 1:
            raise ConfigError(f"VPIN needs at least one bucket, got {n_buckets}")
        self.bucket_volume = float(bucket_volume)
        self.threshold = threshold
        self.sigma = 0.0 if sigma is None else float(sigma)
        self.var_alpha = var_alpha
        self.state = np.zeros(VPIN_STATE_LEN, np.float64)
        self.state[V_PREV] = np.nan
        self.recent: deque[float] = deque(maxlen=n_buckets)
        self.buckets = 0

    def update(self, prices: np.ndarray, sizes: np.ndarray) -> float | None:
        """Add trades (prices in ticks, sizes in lots, in time order); returns the VPIN now."""
        done = vpin_buckets(
            np.asarray(prices, np.float64),
            np.asarray(sizes, np.float64),
            self.bucket_volume,
            self.sigma,
            self.var_alpha,
            self.state,
        )
        self.recent.extend(done.tolist())
        self.buckets += len(done)
        return self.value

    @property
    def value(self) -> float | None:
        if len(self.recent) < (self.recent.maxlen or 0):
            return None
        return sum(self.recent) / len(self.recent)

    @property
    def toxic(self) -> bool:
        v = self.value
        return v is not None and v >= self.threshold


# -- sweeps ---------------------------------------------------------------------------------------

# sweep state: the open group's exchange time, aggressor sign, last print price, distinct prices so far
S_TS, S_SIGN, S_PRICE, S_LEVELS = range(4)


@nb.njit(cache=True)
def sweep_prints(events, min_levels, state):
    """Sweeps among ``events``: trade prints with one aggressor side and one ``exch_ts`` at ``min_levels``
    or more distinct prices. A sweep is reported once, at the print that reaches ``min_levels``, as
    ``(local_ts, aggressor sign)`` (+1 a buyer lifting asks); the group carries across chunks."""
    out_t = np.empty(events.shape[0], np.int64)
    out_s = np.empty(events.shape[0], np.int64)
    k = 0
    for i in range(events.shape[0]):
        e = events[i]
        if e["kind"] != TRADE and e["kind"] != EXECUTE:
            continue
        sign = -e["side"]
        if e["exch_ts"] != state[S_TS] or sign != state[S_SIGN]:
            state[S_TS] = e["exch_ts"]
            state[S_SIGN] = sign
            state[S_PRICE] = e["price"]
            state[S_LEVELS] = 1
        elif e["price"] != state[S_PRICE]:
            state[S_PRICE] = e["price"]
            state[S_LEVELS] += 1
            if state[S_LEVELS] == min_levels:
                out_t[k] = e["local_ts"]
                out_s[k] = sign
                k += 1
    return out_t[:k], out_s[:k]


class SweepDetector:
    """Reports each sweep through at least ``min_levels`` prices as ``(local_ts, aggressor sign)``."""

    def __init__(self, min_levels: int = 2) -> None:
        if min_levels < 2:
            raise ConfigError(f"a sweep crosses at least 2 price levels, got min_levels={min_levels}")
        self.min_levels = min_levels
        self.state = np.array([-1, 0, -1, 0], np.int64)
        self.count = 0

    def update(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, s = sweep_prints(events, self.min_levels, self.state)
        self.count += len(t)
        return t, s


# -- size outliers ----------------------------------------------------------------------------------


@nb.njit(cache=True)
def size_outliers(sizes, ring, state, quantile, z, min_count):
    """Flag each trade larger than the ``quantile`` of the sizes in ``ring`` (the last ``len(ring)``
    trades before it) and, with ``z`` > 0, than their mean + ``z`` standard deviations. Nothing is
    flagged before ``min_count`` trades; ``state`` = (next ring slot, trades held)."""
    n = ring.shape[0]
    flags = np.zeros(sizes.shape[0], np.bool_)
    for i in range(sizes.shape[0]):
        held = state[1]
        if held >= min_count:
            window = ring[:held]
            bar = np.quantile(window, quantile)
            if z > 0.0:
                bar = max(bar, window.mean() + z * window.std())
            flags[i] = sizes[i] > bar
        ring[state[0]] = sizes[i]
        state[0] = (state[0] + 1) % n
        state[1] = min(held + 1, n)
    return flags


class SizeOutliers:
    """Flags trades above the rolling ``quantile`` (and mean + ``z`` sd) of the last ``window`` sizes."""

    def __init__(
        self, window: int = 200, quantile: float = 0.99, z: float = 0.0, min_count: int = 50
    ) -> None:
        if window < 2 or not 0 < quantile < 1:
            raise ConfigError(
                f"size outliers need window >= 2 and 0 < quantile < 1, got {window} and {quantile}"
            )
        self.quantile = quantile
        self.z = z
        self.min_count = min(min_count, window)
        self.ring = np.zeros(window, np.float64)
        self.state = np.zeros(2, np.int64)
        self.count = 0

    def update(self, sizes: np.ndarray) -> np.ndarray:
        flags = size_outliers(
            np.asarray(sizes, np.float64), self.ring, self.state, self.quantile, self.z, self.min_count
        )
        self.count += int(flags.sum())
        return flags


# -- lead-lag -------------------------------------------------------------------------------------


@nb.njit(cache=True)
def touch_moves(events, bid, ask, st, last):
    """Replay ``events`` on a book; return ``(local_ts, sign)`` of each change of the mid (both sides
    present). ``last`` = [bid + ask of the previous two-sided touch, or -1]."""
    out_t = np.empty(events.shape[0], np.int64)
    out_s = np.empty(events.shape[0], np.int64)
    k = 0
    for i in range(events.shape[0]):
        e = events[i]
        core.apply_event(bid, ask, st, e["kind"], e["side"], e["price"], e["size"])
        b = core.best_bid(st)
        a = core.best_ask(st)
        if b < 0 or a < 0 or b >= a:
            continue
        mid2 = b + a
        if last[0] >= 0 and mid2 != last[0]:
            out_t[k] = e["local_ts"]
            out_s[k] = 1 if mid2 > last[0] else -1
            k += 1
        last[0] = mid2
    return out_t[:k], out_s[:k]


@nb.njit(cache=True)
def lead_lag_flags(lead_t, lead_s, trade_t, window_ns, last):
    """For each of our trades (time order), the sign of the latest lead move in ``[t - window, t)``, or 0.
    ``last`` = [time, sign] of the latest lead move from earlier chunks (time -1 before any)."""
    out = np.zeros(trade_t.shape[0], np.int64)
    j = 0
    for i in range(trade_t.shape[0]):
        t = trade_t[i]
        while j < lead_t.shape[0] and lead_t[j] < t:
            last[0] = lead_t[j]
            last[1] = lead_s[j]
            j += 1
        if last[0] >= 0 and t - last[0] <= window_ns:
            out[i] = last[1]
    while j < lead_t.shape[0]:  # the lead moves after our last trade still count for the next chunk
        last[0] = lead_t[j]
        last[1] = lead_s[j]
        j += 1
    return out


class LeadLag:
    """Flags our trades that come within ``window_ns`` after a move of the lead instrument's mid.

    Feed the lead's touch moves (:func:`touch_moves`) up to a time before our trades up to that time.
    ``direction(now)`` is the sign of a lead move in the last window (0 when none): the side it
    points at (+1: the lead rose, our ask is about to be lifted)."""

    def __init__(self, window_ns: int) -> None:
        if window_ns <= 0:
            raise ConfigError(f"lead-lag window must be positive, got {window_ns} ns")
        self.window_ns = window_ns
        self.last = np.array([-1, 0], np.int64)
        self._lead_t = np.zeros(0, np.int64)
        self._lead_s = np.zeros(0, np.int64)
        self.hits = 0

    def on_lead(self, t: np.ndarray, sign: np.ndarray) -> None:
        self._lead_t = np.concatenate((self._lead_t, np.asarray(t, np.int64)))
        self._lead_s = np.concatenate((self._lead_s, np.asarray(sign, np.int64)))

    def on_trades(self, t: np.ndarray) -> np.ndarray:
        """Signs of the lead move each trade follows (0: none within the window)."""
        flags = lead_lag_flags(self._lead_t, self._lead_s, np.asarray(t, np.int64), self.window_ns, self.last)
        self._lead_t = self._lead_t[:0]
        self._lead_s = self._lead_s[:0]
        self.hits += int(np.count_nonzero(flags))
        return flags

    def direction(self, now: int) -> int:
        if len(self._lead_t):
            self.on_trades(np.zeros(0, np.int64))
        return int(self.last[1]) if self.last[0] >= 0 and now - self.last[0] <= self.window_ns else 0


# -- own markouts -----------------------------------------------------------------------------------


def fill_markouts(
    fill_t: np.ndarray,
    fill_side: np.ndarray,
    fill_price: np.ndarray,
    mid_t: np.ndarray,
    mid: np.ndarray,
    horizon_ns: int,
) -> np.ndarray:
    """Each fill's markout ``side * (mid(t + h) - price)`` (mid at the first ``mid_t >= t + h``), NaN when
    the data ends first; computed by the strategy's :class:`MarkoutTracker`, fills in time order."""
    tracker = MarkoutTracker(horizon_ns)
    out = np.full(len(fill_t), np.nan)
    j = done = 0
    for now, m in zip(mid_t.tolist(), mid.tolist(), strict=True):
        while j < len(fill_t) and fill_t[j] <= now:
            tracker.on_fill(int(fill_t[j]), int(fill_side[j]), float(fill_price[j]))
            j += 1
        for _, value in tracker.update(now, m):
            out[done] = value
            done += 1
    return out


def adverse_ratio(markouts: np.ndarray) -> float | None:
    """Share of fills with a matured markout below zero (the mid moved against us); None without any."""
    matured = markouts[~np.isnan(markouts)]
    return None if len(matured) == 0 else float(np.mean(matured < 0))


# -- a whole file ---------------------------------------------------------------------------------


def trades_of(events: np.ndarray) -> np.ndarray:
    """The trade prints among ``events``."""
    kinds = events["kind"]
    return events[(kinds == TRADE) | (kinds == EXECUTE)]


def _lead_moves(lead: EventSource) -> tuple[np.ndarray, np.ndarray]:
    bid, ask, st = core.new_book(lead.price_lo, lead.price_hi)
    last = np.array([-1], np.int64)
    parts = [touch_moves(chunk, bid, ask, st, last) for chunk in lead.chunks()]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def scan(
    source: EventSource,
    lead: EventSource | None = None,
    buckets: int = 250,
    vpin_window: int = 50,
    vpin_threshold: float = 0.2,
    lead_window_ns: int = 100_000_000,
) -> dict[str, Any]:
    """Every detector over a loaded market: counts and rates. The VPIN bucket is the market's trade
    volume over ``buckets``; the lead-lag lift is the share of our trades inside a window after a lead
    move over the share of time those windows cover."""
    data = source.name
    chunks: Iterable[np.ndarray] = list(source.chunks())
    trades = [trades_of(c) for c in chunks]
    volume = float(sum(float(t["size"].sum()) for t in trades))
    n_trades = sum(len(t) for t in trades)
    if n_trades == 0:
        raise ConfigError(f"{data}: no trade prints: the toxicity detectors read trades")
    t0 = int(next(c["local_ts"][0] for c in chunks if len(c)))
    t1 = int(next(c["local_ts"][-1] for c in reversed(list(chunks)) if len(c)))
    vpin = Vpin(volume / buckets, vpin_window, vpin_threshold)
    sweeps = SweepDetector()
    outliers = SizeOutliers()
    values: list[float] = []
    buy_sweeps = sell_sweeps = 0
    for chunk, tr in zip(chunks, trades, strict=True):
        _, signs = sweeps.update(chunk)
        buy_sweeps += int((signs > 0).sum())
        sell_sweeps += int((signs < 0).sum())
        outliers.update(tr["size"])
        for p, s in zip(tr["price"], tr["size"], strict=True):  # VPIN after every trade, for its range
            v = vpin.update(np.array([p]), np.array([s]))
            if v is not None:
                values.append(v)
    minutes = max(t1 - t0, 1) / 60e9
    out: dict[str, Any] = {
        "data": data,
        "trades": n_trades,
        "minutes": round(minutes, 2),
        "vpin": {
            "bucket_lots": round(vpin.bucket_volume, 3),
            "buckets": vpin.buckets,
            "window": vpin_window,
            "last": None if vpin.value is None else round(vpin.value, 4),
            "mean": round(float(np.mean(values)), 4) if values else None,
            "max": round(float(np.max(values)), 4) if values else None,
            "threshold": vpin_threshold,
            "share_above": round(float(np.mean(np.array(values) >= vpin_threshold)), 4) if values else None,
        },
        "sweeps": {
            "count": sweeps.count,
            "buy": buy_sweeps,
            "sell": sell_sweeps,
            "per_minute": round(sweeps.count / minutes, 3),
            "per_1000_trades": round(1000 * sweeps.count / n_trades, 3),
        },
        "size_outliers": {
            "count": outliers.count,
            "quantile": outliers.quantile,
            "window": len(outliers.ring),
            "share_of_trades": round(outliers.count / n_trades, 4),
        },
    }
    if lead is not None:
        out["lead_lag"] = _lead_lag_summary(lead, trades, lead_window_ns, t0, t1)
    return out


def _lead_lag_summary(
    lead: EventSource, trades: list[np.ndarray], window_ns: int, t0: int, t1: int
) -> dict[str, Any]:
    lead_t, lead_s = _lead_moves(lead)
    in_span = (lead_t >= t0) & (lead_t <= t1)
    detector = LeadLag(window_ns)
    detector.on_lead(lead_t, lead_s)
    flags = np.concatenate([detector.on_trades(t["local_ts"]) for t in trades])
    # time covered by the windows after lead moves, merged where they overlap
    ends = np.minimum(lead_t[in_span] + window_ns, t1)
    starts = lead_t[in_span]
    covered = 0
    reach = -1
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        lo = max(s, reach)
        if e > lo:
            covered += e - lo
        reach = max(reach, e)
    time_share = covered / max(t1 - t0, 1)
    trade_share = float(np.mean(flags != 0)) if len(flags) else 0.0
    signs = np.concatenate([-t["side"] for t in trades]).astype(np.int64)
    agree = flags != 0
    return {
        "lead": lead.name,
        "lead_moves": int(in_span.sum()),
        "window_ms": window_ns / 1e6,
        "trades_after_lead_move": int(agree.sum()),
        "trade_share": round(trade_share, 4),
        "time_share": round(time_share, 4),
        "lift": round(trade_share / time_share, 3) if time_share > 0 else None,
        "same_direction": round(float(np.mean(signs[agree] == flags[agree])), 4) if agree.any() else None,
    }


__all__ = [
    "LeadLag",
    "SizeOutliers",
    "SweepDetector",
    "Vpin",
    "adverse_ratio",
    "fill_markouts",
    "scan",
    "touch_moves",
]
