"""Where the P&L came from: the spread we earned, the inventory we carried, the fees we paid.

A market maker's result mixes three things that call for different fixes (quote wider, skew harder,
pick another fee tier), so the total is split into parts that add up to it exactly.

For fill i let s_i be its side (+1 buy, -1 sell), q_i its size, p_i its price, f_i its fee
(positive = paid) and m_i the exchange mid at the fill (p_i when the book had no mid then). Let v(x)
be what one unit of size is worth at price x in the settlement currency
(:meth:`quotewise.model.instrument.Instrument.unit_value`: ``c x`` for a linear contract of size c,
``-c / x`` for an inverse one). With P = sum s_i q_i the final position and M the final mid::

    spread_capture = sum s_i q_i (v(m_i) - v(p_i))   edge against the mid at the moment of each fill
    inventory      = P v(M) - sum s_i q_i v(m_i)     the mid's moves on what we held after each fill
    fees           = -sum f_i                        rebates count positive

Identity: the engine's P&L is ``cash + P v(M)`` with ``cash = -sum s_i q_i v(p_i) - sum f_i``, and

    spread_capture + inventory + fees
      = sum s_i q_i v(m_i) - sum s_i q_i v(p_i) + P v(M) - sum s_i q_i v(m_i) - sum f_i
      = cash + P v(M) = total_pnl.

A binary-outcome market that resolved pays s per share (1 or 0) instead of the last mid: a fourth part,

    settlement     = P (v(s) - v(M))                 settling the final position instead of marking it

and the identity reads spread_capture + inventory + fees + settlement = cash + P v(s) = total_pnl.

For a linear contract of size 1, v(x) = x and the parts read as usual (``sum s_i q_i (m_i - p_i)``).
The m_i terms cancel whatever they are, which is why a fill without a mid may use its own price
(zero edge, all of its result counted as inventory) without breaking the identity. When the run never
saw a mid (M undefined) the engine reports ``cash`` alone, so P v(M) is taken as 0 here as well.

``adverse_selection`` = sum s_i q_i (v(mid(t_i + 5 s)) - v(m_i)) is a diagnostic *inside*
``inventory``: the first five seconds of the inventory term, i.e. how far the mid ran against
(negative) or with us right after we were filled. Fills whose horizon ends after the data are left
out of it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from quotewise.model.instrument import Instrument

SECOND_NS = 1_000_000_000
ADVERSE_HORIZON_S = 5


@dataclass(frozen=True)
class Attribution:
    """The P&L split; ``spread_capture + inventory + fees + settlement == total`` (up to float
    rounding; ``settlement`` is 0 for a market that did not resolve)."""

    spread_capture: float
    inventory: float
    fees: float
    settlement: float
    total: float
    adverse_selection: float
    adverse_horizon_s: int
    fills: int
    fills_without_mid: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


def mids_at_fill(fills: pd.DataFrame) -> np.ndarray:
    """The exchange mid recorded at each fill, the fill's own price where there was none (zero edge)."""
    price = fills["price"].to_numpy(dtype=np.float64, na_value=np.nan)
    if "mid" not in fills.columns:
        return price
    mid = fills["mid"].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(mid), price, mid)


def mid_as_of(equity: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """The last valid equity mid at or before each time; NaN before the first and after the last sample.

    Equity rows are the strategy's decision times; a row whose mid is NaN (one side of the book empty)
    is skipped, so the answer is the mid most recently known at that time.
    """
    times = np.asarray(times, dtype=np.int64)
    out = np.full(len(times), np.nan)
    if not len(equity) or not len(times):
        return out
    ts = equity["ts"].to_numpy(dtype=np.int64)
    mid = equity["mid"].to_numpy(dtype=np.float64, na_value=np.nan)
    order = np.argsort(ts, kind="stable")
    ts, mid = ts[order], mid[order]
    valid = ~np.isnan(mid)
    vts, vmid = ts[valid], mid[valid]
    if not len(vts):
        return out
    idx = np.searchsorted(vts, times, side="right") - 1
    inside = (idx >= 0) & (times <= ts[-1])
    out[inside] = vmid[idx[inside]]
    return out


def attribute(
    fills: pd.DataFrame,
    final_mid: float | None,
    equity: pd.DataFrame,
    instrument: Instrument | None = None,
    adverse_horizon_s: int = ADVERSE_HORIZON_S,
    settlement_price: float | None = None,
) -> Attribution:
    """Split the run's P&L (see the module docstring for the formulas and the identity); money in
    the settlement currency of ``instrument`` (default: a linear contract of size 1);
    ``settlement_price``: what each share paid when the market resolved (None: it did not)."""
    v = (instrument or Instrument()).unit_value
    side = fills["side"].to_numpy(dtype=np.float64, na_value=np.nan)
    size = fills["size"].to_numpy(dtype=np.float64, na_value=np.nan)
    price = fills["price"].to_numpy(dtype=np.float64, na_value=np.nan)
    fee = fills["fee"].to_numpy(dtype=np.float64, na_value=np.nan)
    signed = side * size
    mid = v(mids_at_fill(fills))
    marked = final_mid is not None and not math.isnan(final_mid)
    position = math.fsum(signed)
    spread = math.fsum(signed * (mid - v(price)))
    inventory = (position * v(final_mid) if marked else 0.0) - math.fsum(signed * mid)
    fees = 0.0 - math.fsum(fee)  # not -fsum: a fee-free run shows 0.00, not -0.00
    settled = 0.0
    if settlement_price is not None:
        settled = position * (v(settlement_price) - (v(final_mid) if marked else 0.0))
    later = mid_as_of(equity, fills["exch_ts"].to_numpy(dtype=np.int64) + adverse_horizon_s * SECOND_NS)
    known = ~np.isnan(later)
    adverse = math.fsum(signed[known] * (v(later[known]) - mid[known]))
    without_mid = len(fills) if "mid" not in fills.columns else int(fills["mid"].isna().sum())
    return Attribution(
        spread_capture=spread,
        inventory=inventory,
        fees=fees,
        settlement=settled,
        total=spread + inventory + fees + settled,
        adverse_selection=adverse,
        adverse_horizon_s=adverse_horizon_s,
        fills=len(fills),
        fills_without_mid=without_mid,
    )


def final_mark(summary: dict[str, Any], equity: pd.DataFrame) -> float:
    """The mid the run's P&L was marked at: summary ``final_mid``, else the last valid equity mid."""
    value = summary.get("final_mid")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    mids = equity["mid"].to_numpy(dtype=np.float64, na_value=np.nan) if len(equity) else np.zeros(0)
    mids = mids[~np.isnan(mids)]
    return float(mids[-1]) if len(mids) else math.nan


def settlement_price(summary: dict[str, Any]) -> float | None:
    """The price a run's position was settled at (summary ``settlement``), None when it was not."""
    settled = summary.get("settlement")
    return float(settled["price"]) if isinstance(settled, dict) and settled.get("price") is not None else None


def run_instrument(summary: dict[str, Any]) -> Instrument:
    """The instrument a run's summary.json names (a linear contract of size 1 when it names none)."""
    spec = summary.get("instrument")
    return Instrument(**spec) if isinstance(spec, dict) else Instrument()
