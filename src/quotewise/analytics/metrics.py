"""Run metrics a market maker is judged by, each defined precisely enough to recompute by hand.

Conventions (docs/report.md shows them with worked numbers):

* fill rate = number of fill records / orders placed (``submitted`` events in orders.parquet). A
  partially filled order counts once per fill, so the rate can in principle exceed 1.
* spread capture % = 100 * mean over fills of ``s (m - p) / h``: the edge per unit against the mid at
  the fill, over half our quoted spread ``h = (ask_quote - bid_quote) / 2`` at the last equity sample
  at or before the fill. Fills without a mid, or quoted one-sided (or crossed) then, are left out.
  100 % means every fill earned the full half spread we quoted; negative means filled through the mid.
* inventory turnover = traded volume / time-weighted mean |position| over the equity samples (each
  sample's position holds until the next sample).
* markout at horizon h of a fill = ``s (mid(t + h) - p) / p * 1e4`` bps, with mid(t + h) the last valid
  equity mid at or before t + h; NaN (and left out of averages) beyond the last equity sample. Averaged
  per fill, unweighted, by side and over all fills.
* adverse-selection ratio = share of fills with a defined 5 s markout whose markout is negative.
* minute P&L changes: P_0 = first equity P&L, P_k = last P&L of UTC minute k (empty minutes carry the
  previous value), changes r_k = P_k - P_(k-1).
* Sharpe = mean(r) / std(r, ddof=1) * sqrt(525600): money per minute, no risk-free rate, annualised
  as if trading 24 h a day 365 days a year (minutes in a year). NaN with fewer than 2 changes or none
  varying.
* win rate = #(r > 0) / #(r != 0): minutes in which nothing changed are neither wins nor losses.
* VaR 95 % = -(5th percentile of r), numpy's linear interpolation: a positive number is a loss.
* max drawdown = max over equity samples of (running peak of P&L - P&L), with the times of that peak
  and of the trough.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from quotewise.analytics.attribution import ADVERSE_HORIZON_S, SECOND_NS, mid_as_of

MARKOUT_HORIZONS_S = (1, 5, 60, 300)
MINUTE_NS = 60 * SECOND_NS
MINUTES_PER_YEAR = 525_600
SIDES = {"buy": 1, "sell": -1}


@dataclass(frozen=True)
class Drawdown:
    """Largest fall of P&L from a running peak; times are epoch ns, None without equity samples."""

    amount: float
    peak_ts: int | None
    trough_ts: int | None
    trough_pnl: float


@dataclass(frozen=True)
class Metrics:
    """All run metrics; NaN where undefined (no fills, too short a run)."""

    fills: int
    orders_placed: int
    fill_rate: float
    spread_capture_pct: float
    spread_capture_fills: int
    traded_volume: float
    mean_abs_position: float
    inventory_turnover: float
    markouts_bps: dict[str, dict[str, float]]
    markout_fills: dict[str, int]
    adverse_selection_ratio: float
    minutes: int
    sharpe: float
    win_rate: float
    var_95: float
    max_drawdown: float
    max_drawdown_peak: str | None
    max_drawdown_trough: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None, nested dicts included."""
        return _clean(asdict(self))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else math.nan


def _iso(ns: int | None) -> str | None:
    return None if ns is None else pd.Timestamp(ns, tz="UTC").isoformat()


def horizon_label(seconds: int) -> str:
    """Key of a markout horizon in the metrics: ``5s``."""
    return f"{seconds}s"


def fill_rate(fills: pd.DataFrame, orders: pd.DataFrame) -> float:
    """Fill records per order placed."""
    placed = int((orders["status"] == "submitted").sum())
    return len(fills) / placed if placed else math.nan


def spread_capture_pct(fills: pd.DataFrame, equity: pd.DataFrame) -> tuple[float, int]:
    """Mean edge per fill as % of the half spread we quoted then, and the number of fills it covers."""
    if not len(fills) or not len(equity) or "mid" not in fills.columns:
        return math.nan, 0
    equity = equity.sort_values("ts", kind="stable")
    at = np.searchsorted(equity["ts"].to_numpy(dtype=np.int64), fills["exch_ts"].to_numpy(np.int64), "right")
    before = at > 0
    row = np.maximum(at - 1, 0)
    bid = equity["bid_quote"].to_numpy(dtype=np.float64, na_value=np.nan)[row]
    ask = equity["ask_quote"].to_numpy(dtype=np.float64, na_value=np.nan)[row]
    half = (ask - bid) / 2
    mid = fills["mid"].to_numpy(dtype=np.float64, na_value=np.nan)
    side = fills["side"].to_numpy(dtype=np.float64, na_value=np.nan)
    price = fills["price"].to_numpy(dtype=np.float64, na_value=np.nan)
    use = before & (half > 0) & ~np.isnan(mid)
    if not use.any():
        return math.nan, 0
    capture = side[use] * (mid[use] - price[use]) / half[use]
    return float(100 * capture.mean()), int(use.sum())


def mean_abs_position(equity: pd.DataFrame) -> float:
    """Time-weighted mean |position|: each sample's position holds until the next sample."""
    if not len(equity):
        return math.nan
    equity = equity.sort_values("ts", kind="stable")
    ts = equity["ts"].to_numpy(dtype=np.int64)
    pos = np.abs(equity["position"].to_numpy(dtype=np.float64, na_value=np.nan))
    span = ts[-1] - ts[0]
    if span <= 0:
        return float(pos[-1])
    return float(np.sum(pos[:-1] * np.diff(ts)) / span)


def inventory_turnover(fills: pd.DataFrame, equity: pd.DataFrame) -> float:
    """Traded volume over the mean absolute position: how many times the inventory was turned over."""
    held = mean_abs_position(equity)
    volume = float(fills["size"].sum())
    return volume / held if held > 0 else math.nan


def markout_bps(fills: pd.DataFrame, equity: pd.DataFrame, horizon_s: float) -> np.ndarray:
    """Per-fill markout in bps of the fill price at ``horizon_s``; NaN beyond the data."""
    later = mid_as_of(equity, fills["exch_ts"].to_numpy(dtype=np.int64) + round(horizon_s * SECOND_NS))
    side = fills["side"].to_numpy(dtype=np.float64, na_value=np.nan)
    price = fills["price"].to_numpy(dtype=np.float64, na_value=np.nan)
    return side * (later - price) / price * 1e4


def markout_table(
    fills: pd.DataFrame, equity: pd.DataFrame, horizons_s: tuple[int, ...] = MARKOUT_HORIZONS_S
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Average markout (bps) per side and overall at each horizon, and how many fills each covers."""
    side = fills["side"].to_numpy(dtype=np.float64, na_value=np.nan)
    groups = {"buy": side == 1, "sell": side == -1, "all": np.ones(len(fills), dtype=bool)}
    table: dict[str, dict[str, float]] = {name: {} for name in groups}
    counts: dict[str, int] = {}
    for horizon in horizons_s:
        values = markout_bps(fills, equity, horizon)
        label = horizon_label(horizon)
        counts[label] = int((~np.isnan(values)).sum())
        for name, mask in groups.items():
            table[name][label] = _mean(values[mask])
    return table, counts


def adverse_selection_ratio(fills: pd.DataFrame, equity: pd.DataFrame) -> float:
    """Share of fills (with a defined 5 s markout) that the mid moved against within 5 s."""
    values = markout_bps(fills, equity, ADVERSE_HORIZON_S)
    values = values[~np.isnan(values)]
    return float((values < 0).mean()) if len(values) else math.nan


def minute_pnl_changes(equity: pd.DataFrame) -> np.ndarray:
    """r_k = P_k - P_(k-1): P_0 the first P&L sample, P_k the last P&L of UTC minute k, carried forward."""
    ts = equity["ts"].to_numpy(dtype=np.int64)
    pnl = equity["pnl"].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(pnl)
    order = np.argsort(ts[keep], kind="stable")
    ts, pnl = ts[keep][order], pnl[keep][order]
    if not len(ts):
        return np.zeros(0)
    minute = ts // MINUTE_NS
    buckets = np.arange(minute[0], minute[-1] + 1)
    last = np.searchsorted(minute, buckets, side="right") - 1
    return np.diff(np.concatenate(([pnl[0]], pnl[last])))


def sharpe(changes: np.ndarray) -> float:
    """Annualised Sharpe of per-minute P&L changes (see the module docstring for the convention)."""
    if len(changes) < 2:
        return math.nan
    std = float(np.std(changes, ddof=1))
    return float(np.mean(changes)) / std * math.sqrt(MINUTES_PER_YEAR) if std > 0 else math.nan


def win_rate(changes: np.ndarray) -> float:
    """Winning minutes among those in which the P&L changed."""
    moved = changes[changes != 0]
    return float((moved > 0).mean()) if len(moved) else math.nan


def var_95(changes: np.ndarray) -> float:
    """Historical one-minute 95 % value at risk, as a positive loss."""
    return -float(np.percentile(changes, 5)) if len(changes) else math.nan


def max_drawdown(equity: pd.DataFrame) -> Drawdown:
    """Largest fall of P&L below its running peak, over every equity sample."""
    ts = equity["ts"].to_numpy(dtype=np.int64)
    pnl = equity["pnl"].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(pnl)
    order = np.argsort(ts[keep], kind="stable")
    ts, pnl = ts[keep][order], pnl[keep][order]
    if not len(pnl):
        return Drawdown(math.nan, None, None, math.nan)
    peak = np.maximum.accumulate(pnl)
    trough = int(np.argmax(peak - pnl))
    top = int(np.argmax(pnl[: trough + 1]))
    return Drawdown(float(peak[trough] - pnl[trough]), int(ts[top]), int(ts[trough]), float(pnl[trough]))


def compute_metrics(fills: pd.DataFrame, orders: pd.DataFrame, equity: pd.DataFrame) -> Metrics:
    """Every metric of a run from its fills, orders and equity frames."""
    capture, capture_fills = spread_capture_pct(fills, equity)
    markouts, markout_fills = markout_table(fills, equity)
    changes = minute_pnl_changes(equity)
    drawdown = max_drawdown(equity)
    return Metrics(
        fills=len(fills),
        orders_placed=int((orders["status"] == "submitted").sum()),
        fill_rate=fill_rate(fills, orders),
        spread_capture_pct=capture,
        spread_capture_fills=capture_fills,
        traded_volume=float(fills["size"].sum()),
        mean_abs_position=mean_abs_position(equity),
        inventory_turnover=inventory_turnover(fills, equity),
        markouts_bps=markouts,
        markout_fills=markout_fills,
        adverse_selection_ratio=adverse_selection_ratio(fills, equity),
        minutes=len(changes),
        sharpe=sharpe(changes),
        win_rate=win_rate(changes),
        var_95=var_95(changes),
        max_drawdown=drawdown.amount,
        max_drawdown_peak=_iso(drawdown.peak_ts),
        max_drawdown_trough=_iso(drawdown.trough_ts),
    )
