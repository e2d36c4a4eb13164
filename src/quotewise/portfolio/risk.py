"""The book's risk: exposure (net, gross, each instrument's share), rolling covariance of the
instruments' P&L changes, portfolio volatility, and Value at Risk of the book's equity.

VaR at confidence ``c`` over a horizon ``h`` from P&L changes ``x`` sampled every ``dt`` seconds
(Jorion, *Value at Risk*, 3rd ed., ch. 5; RiskMetrics Technical Document, 1996, sec. 6.3):

- historical: ``-Q_{1-c}(x) * sqrt(h / dt)``, Q the empirical quantile (numpy's linear
  interpolation), scaled by the square root of time;
- parametric (normal, zero mean): ``z_c * sigma(x) * sqrt(h / dt)``, z_c the standard normal quantile
  (2.3263 at 99%), sigma the sample standard deviation (ddof 1).

The square-root-of-time rule assumes independent, identically distributed changes; one day is 86,400 s
(crypto trades around the clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

CONFIDENCE = 0.99
MINUTE_S = 60.0
DAY_S = 86_400.0
COV_WINDOW = 300  # grid steps (5 minutes of 1-second steps)


def parametric_var(
    changes: np.ndarray, horizon_s: float, step_s: float, confidence: float = CONFIDENCE
) -> float:
    """Normal VaR: z x sigma x sqrt(h / dt) (a loss, positive)."""
    x = np.asarray(changes, dtype=float)
    if len(x) < 2:
        return math.nan
    z = NormalDist().inv_cdf(confidence)
    return float(z * np.std(x, ddof=1) * math.sqrt(horizon_s / step_s))


def historical_var(
    changes: np.ndarray, horizon_s: float, step_s: float, confidence: float = CONFIDENCE
) -> float:
    """Historical VaR: minus the empirical (1 - c) quantile of the changes, x sqrt(h / dt)."""
    x = np.asarray(changes, dtype=float)
    if not len(x):
        return math.nan
    return float(-np.quantile(x, 1 - confidence) * math.sqrt(horizon_s / step_s))


def var_table(changes: np.ndarray, step_s: float) -> dict[str, Any]:
    """Both VaRs at one minute and one day, with the confidence and sample size they rest on."""
    return {
        "confidence": CONFIDENCE,
        "step_seconds": step_s,
        "samples": len(changes),
        "historical": {
            "1m": historical_var(changes, MINUTE_S, step_s),
            "1d": historical_var(changes, DAY_S, step_s),
        },
        "parametric": {
            "1m": parametric_var(changes, MINUTE_S, step_s),
            "1d": parametric_var(changes, DAY_S, step_s),
        },
    }


def rolling_parametric_var(total: pd.Series, window: int, horizon_s: float, step_s: float) -> pd.Series:
    """Parametric VaR over the last ``window`` changes at each grid time (NaN until 2 are known)."""
    z = NormalDist().inv_cdf(CONFIDENCE)
    sigma = total.diff().rolling(window, min_periods=2).std(ddof=1)
    return z * sigma * math.sqrt(horizon_s / step_s)


@dataclass
class Exposure:
    """Per-instrument signed exposure in the quote currency (position x base units x mid) on a grid."""

    frame: pd.DataFrame  # index: grid ts (ns); one column per instrument

    @property
    def net(self) -> pd.Series:
        return self.frame.sum(axis=1)

    @property
    def gross(self) -> pd.Series:
        return self.frame.abs().sum(axis=1)

    def shares(self) -> dict[str, float]:
        """Each instrument's part of the time-averaged gross exposure."""
        mean_abs = self.frame.abs().mean()
        total = float(mean_abs.sum())
        return {str(k): (float(v) / total if total > 0 else 0.0) for k, v in mean_abs.items()}


def breach_events(series: pd.Series, limit: float | None, name: str) -> list[dict[str, Any]]:
    """One event each time ``series`` goes above ``limit`` (the start of each breach, its value)."""
    if limit is None or series.empty:
        return []
    above = (series > limit).to_numpy()
    starts = np.flatnonzero(above & ~np.concatenate([[False], above[:-1]]))
    return [
        {
            "limit": name,
            "threshold": limit,
            "ts": int(series.index[i]),
            "time": pd.Timestamp(int(series.index[i]), unit="ns", tz="UTC").isoformat(),
            "value": float(series.iloc[i]),
        }
        for i in starts
    ]


def limit_series(pnl: pd.DataFrame, exposure: Exposure, step_s: float) -> dict[str, pd.Series]:
    """What each book limit watches, on the grid: |net| and gross exposure, the rolling 1-minute VaR."""
    var_1m = rolling_parametric_var(pnl.sum(axis=1), COV_WINDOW, MINUTE_S, step_s)
    return {"max_net": exposure.net.abs(), "max_gross": exposure.gross, "var_1m": var_1m.dropna()}


def first_breach(
    watched: dict[str, pd.Series], limits: dict[str, float | None], after: int | None = None
) -> dict[str, Any] | None:
    """The earliest grid time (at or after ``after``) at which a watched series is above its limit:
    {at, time, rule, value, limit}; None when there is none."""
    found: dict[str, Any] | None = None
    for rule, series in watched.items():
        limit = limits.get(rule)
        if limit is None or series.empty:
            continue
        ts = series.index.to_numpy(dtype=np.int64)
        above = (series.to_numpy() > limit) & (ts >= (after if after is not None else ts[0]))
        if above.any():
            i = int(np.argmax(above))
            if found is None or ts[i] < found["at"]:
                time = pd.Timestamp(int(ts[i]), unit="ns", tz="UTC").isoformat()
                found = {
                    "at": int(ts[i]),
                    "time": time,
                    "rule": rule,
                    "value": float(series.iloc[i]),
                    "limit": limit,
                }
    return found


def portfolio_risk(
    pnl: pd.DataFrame, exposure: Exposure, step_s: float, limits: dict[str, float | None]
) -> dict[str, Any]:
    """The summary's ``risk``: exposures, covariance of P&L changes (last window), volatility, VaR on
    the book's equity (the sum of ``pnl``'s columns), and the limit breaches."""
    changes = pnl.diff().dropna()
    total = pnl.sum(axis=1)
    total_changes = total.diff().dropna().to_numpy()
    recent = changes.tail(COV_WINDOW)
    cov = recent.cov() if len(recent) >= 2 else pd.DataFrame(np.nan, pnl.columns, pnl.columns)
    weights = np.ones(len(pnl.columns))
    vol_step = (
        float(math.sqrt(max(weights @ cov.to_numpy() @ weights, 0.0))) if len(recent) >= 2 else math.nan
    )
    rolling_vol = total.diff().rolling(COV_WINDOW, min_periods=2).std(ddof=1)
    watched = limit_series(pnl, exposure, step_s)
    var_1m = watched["var_1m"]
    net, gross = exposure.net, exposure.gross
    events = [e for rule, s in watched.items() for e in breach_events(s, limits.get(rule), rule)]
    events.sort(key=lambda e: e["ts"])
    return {
        "currency_note": "quote currency of the instruments (inverse contracts converted at their mid)",
        "exposure": {
            "max_abs_net": float(net.abs().max()) if len(net) else 0.0,
            "max_gross": float(gross.max()) if len(gross) else 0.0,
            "final_net": float(net.iloc[-1]) if len(net) else 0.0,
            "final_gross": float(gross.iloc[-1]) if len(gross) else 0.0,
            "share": exposure.shares(),
        },
        "covariance": {
            "window_steps": COV_WINDOW,
            "matrix": {str(r): {str(c): _num(cov.loc[r, c]) for c in cov.columns} for r in cov.index},
        },
        "volatility": {
            "per_step": vol_step,
            "per_step_max_rolling": _num(rolling_vol.max()),
            "1m": vol_step * math.sqrt(MINUTE_S / step_s),
            "1d": vol_step * math.sqrt(DAY_S / step_s),
        },
        "var": var_table(total_changes, step_s),
        "var_1m_max_rolling": _num(var_1m.max()),
        "limits": limits,
        "events": events,
    }


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
