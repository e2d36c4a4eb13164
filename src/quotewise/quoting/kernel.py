"""The built-in quoting rule, compiled: the copy the simulator's compiled decisions and the live
maker's fast path run, beside the Python pipeline it mirrors (:mod:`quotewise.quoting.named`).

The rule is the symmetric and skew strategies with mid-price fair value, one level per side, the
inventory stop, the fee floor and the ``improve`` clamp. Which strategies may use it is derived from
the parameter model (:func:`compiled_quoting`): a strategy qualifies when every parameter the kernel
does not implement is at its default (or is one that only acts through such a parameter), so a new
parameter sends a strategy to the Python path until the kernel learns it; it is never silently
ignored. ``tests/sim/test_compiled.py`` runs both paths on the same data and requires identical
fills, orders and equity, and ``tests/quoting/test_kernel.py`` checks the rule's coverage.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from quotewise.book import core
from quotewise.quoting.base import Strategy
from quotewise.quoting.components import TickDistance, apply_fee_floor, floor_fee
from quotewise.quoting.named import SkewStrategy, SymmetricStrategy

# The rule's parameters, one record (``params[0]``).
QUOTE_PARAMS = np.dtype(
    [
        ("hs_ticks", np.float64),  # half-spread: constant part, in ticks
        ("hs_frac", np.float64),  # half-spread: part proportional to the mid (5bp -> 5e-4)
        ("skew", np.float64),  # centre shift at max inventory, in half-spreads (0: symmetric)
        ("max_lots", np.float64),  # |position| (lots) from which the side that adds is not quoted
        ("size", np.float64),  # order size, lots
        ("improve", np.float64),  # 1: quotes may sit inside the spread; 0: never better than the touch
        ("post_only", np.float64),
        ("fee", np.float64),  # the fee of the fee floor (components.floor_fee)
        # centre shift at a certain prediction, in half-spreads: model_skew x (2 P(up) - 1) (0: none)
        ("model_skew", np.float64),
        ("lead", np.float64),  # 1: the signal is a fair value (ticks) to centre on instead of the mid
    ]
)

# parameters the kernel implements
IMPLEMENTED = frozenset(
    {
        "spread",
        "skew",
        "max_inventory",
        "size",
        "improve",
        "post_only",
        "interval",
        "model",
        "model_skew",
        "lead",
        "lead_halflife",
    }
)
# parameters that act only through another one that must then be at its default (vol_window only
# matters with vol_mult, alpha only with fv_method=ema, ...): inert on the compiled path
INERT = frozenset(
    {
        "vol_method",
        "vol_window",
        "alpha",
        "level_spacing",
        "level_decay",
        "flow_window",
        "pressure_mode",
        "markout_horizon",
        "markout_pause_for",
        "skew_band_factor",
    }
)


def python_only_settings(strategy: SymmetricStrategy) -> list[str]:
    """The parameters that keep ``strategy`` off the compiled rule: every one that is neither
    implemented nor inert and differs from its default."""
    params = strategy.params
    default = type(params)()
    return [
        name
        for name in type(params).model_fields
        if name not in IMPLEMENTED | INERT and getattr(params, name) != getattr(default, name)
    ]


def compiled_quoting(strategy: Strategy) -> np.ndarray | None:
    """The rule's parameters for ``strategy`` (after ``on_start``), or None when it needs Python."""
    if type(strategy) not in (SymmetricStrategy, SkewStrategy):
        return None
    assert isinstance(strategy, SymmetricStrategy)
    inst = strategy.instrument
    if inst is None or inst.min_price is not None or inst.max_price is not None:
        return None
    if python_only_settings(strategy):
        return None
    p = strategy.params
    spread = TickDistance.of(p.spread, inst.tick_size)
    out = np.zeros(1, QUOTE_PARAMS)
    sp = out[0]
    sp["hs_ticks"] = spread.ticks
    sp["hs_frac"] = spread.frac
    sp["skew"] = p.skew
    max_lots = strategy.max_inventory_lots()
    sp["max_lots"] = math.inf if math.isinf(max_lots) else max_lots
    sp["size"] = max(inst.min_size_lots, round(strategy.size_lots()))
    sp["improve"] = 1.0 if p.improve else 0.0
    sp["post_only"] = 1.0 if p.post_only else 0.0
    sp["fee"] = floor_fee(p.post_only, inst.maker_fee, inst.taker_fee)
    sp["model_skew"] = p.model_skew if getattr(p, "model", None) else 0.0
    sp["lead"] = 1.0 if getattr(p, "lead", None) else 0.0
    return out


def order_size(params: np.ndarray) -> int:
    """The order size the rule quotes, lots."""
    return int(params[0]["size"])


@nb.njit(cache=True, inline="always")
def quote_prices(params, bb, ba, q, signal=np.nan):
    """The rule (QuotingStrategy.quotes for symmetric/skew, one level a side): from the touch (ticks,
    -1 for an empty side), the position (lots) and the signal (NaN: none yet): a model's P(next mid
    move up), or with ``lead`` the fair value (ticks) to centre on instead of the mid; whether to
    quote each side and at what price.

    The arithmetic follows the Python pipeline operation for operation (same rounding guards, same
    order of floating-point operations), so both paths quote the same prices.
    """
    sp = params[0]
    want_bid = False
    want_ask = False
    bid_p = np.int64(0)
    ask_p = np.int64(0)
    if bb >= 0 and ba >= 0:
        mid = (bb + ba) / 2.0
        hs = sp["hs_ticks"] + sp["hs_frac"] * mid
        max_q = sp["max_lots"]
        fair = signal if sp["lead"] > 0.0 and not np.isnan(signal) else mid
        centre = fair + -sp["skew"] * 1.0 * hs * q / max_q
        if sp["model_skew"] != 0.0 and not np.isnan(signal):
            # lean toward the predicted move: the side it would run over moves away, the other closer
            centre += sp["model_skew"] * hs * (2.0 * signal - 1.0)
        bid_p = np.int64(np.floor(centre - hs + 1e-9))
        ask_p = np.int64(np.ceil(centre + hs - 1e-9))
        if sp["improve"] > 0:
            bid_p = min(bid_p, ba - 1)
            ask_p = max(ask_p, bb + 1)
        else:
            bid_p = min(bid_p, bb)
            ask_p = max(ask_p, ba)
        stop = abs(q) / max_q >= 1.0
        want_bid = not (stop and q > 0)
        want_ask = not (stop and q < 0)
        if want_bid and want_ask:
            bid_p, ask_p = apply_fee_floor(bid_p, ask_p, sp["fee"])
        want_bid = want_bid and bid_p >= 1
    return want_bid, want_ask, bid_p, ask_p


@nb.njit(cache=True)
def apply_and_quote(bid, ask, st, events, params, q):
    """Apply ``events`` to a book, then :func:`quote_prices` on its touch; returns the decision and
    that touch. The live maker's update and decision in one compiled call (on an idle engine each
    compiled call costs tens of microseconds of cold caches, so one call, not two)."""
    core.apply_events(bid, ask, st, events)
    bb = core.best_bid(st)
    ba = core.best_ask(st)
    want_bid, want_ask, bid_p, ask_p = quote_prices(params, bb, ba, q)
    return want_bid, want_ask, bid_p, ask_p, bb, ba
