"""Which strategies the engine can run compiled, and with what parameters.

The engine's compiled quoting (``quotewise.sim.engine._decide``) implements the symmetric and skew
strategies with mid-price fair value, one level per side, the inventory stop, the fee floor and the
``improve`` clamp. A strategy whose settings stay inside that subset runs without Python per
decision; anything else (other fair values, pressure, markouts, ladders, bands, thresholds, price
bounds, user subclasses) returns None and runs on the Python path. ``tests/sim/test_compiled.py``
runs both paths on the same data and requires identical fills, orders and equity.
"""

from __future__ import annotations

import math

import numpy as np

from quotewise.quoting.base import Strategy
from quotewise.quoting.components import Distance, floor_fee
from quotewise.quoting.named import SkewStrategy, SymmetricStrategy
from quotewise.sim import engine as E


def _python_only(strategy: SymmetricStrategy) -> bool:
    p = strategy.params
    inst = strategy.instrument
    assert inst is not None
    threshold = Distance.parse(p.threshold, inst.tick_size, "threshold")
    return (
        p.fv_method != "mid_price"
        or p.min_spread is not None
        or p.max_spread is not None
        or p.vol_mult != 0
        or threshold.ticks != 0
        or threshold.frac != 0
        or p.max_orders != 1
        or p.book_skew != 0
        or p.flow_skew != 0
        or p.ofi_skew != 0
        or p.markout_widen != 0
        or p.markout_pause is not None
        or p.flatten_band is not None
        or getattr(p, "skew_band", None) is not None
        or inst.min_price is not None
        or inst.max_price is not None
    )


def compiled_quoting(strategy: Strategy) -> np.ndarray | None:
    """The engine's parameter vector for ``strategy`` (after ``on_start``), or None."""
    if type(strategy) not in (SymmetricStrategy, SkewStrategy):
        return None
    assert isinstance(strategy, SymmetricStrategy)
    if strategy.instrument is None or _python_only(strategy):
        return None
    inst = strategy.instrument
    p = strategy.params
    spread = Distance.parse(p.spread, inst.tick_size, "spread")
    sp = np.zeros(E.SP_LEN, np.float64)
    sp[E.SP_HS_TICKS] = spread.ticks
    sp[E.SP_HS_FRAC] = spread.frac
    sp[E.SP_SKEW] = p.skew if isinstance(strategy, SkewStrategy) else 0.0
    max_lots = strategy.max_inventory_lots()
    sp[E.SP_MAX_LOTS] = math.inf if math.isinf(max_lots) else max_lots
    sp[E.SP_SIZE] = max(inst.min_size_lots, round(strategy.size_lots()))
    sp[E.SP_IMPROVE] = 1.0 if p.improve else 0.0
    sp[E.SP_POST_ONLY] = 1.0 if p.post_only else 0.0
    sp[E.SP_FEE] = floor_fee(p.post_only, inst.maker_fee, inst.taker_fee)
    return sp
