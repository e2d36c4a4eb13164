"""The strategy side inside the simulator: orders sent and cancels requested (both modes), and in
compiled mode the whole decision: deliveries, the quoting rule, the reconcile step, the equity sample.

The rule is :mod:`quotewise.quoting.kernel` and the reconcile step :mod:`quotewise.execution.kernel`,
each the compiled copy of its Python original; this module carries their decisions out at the
simulated exchange and logs them (the action buffer becomes orders.parquet rows).
"""

import numba as nb
import numpy as np

from quotewise.execution import kernel as om
from quotewise.model.events import ASK, BID
from quotewise.quoting.kernel import quote_prices
from quotewise.sim.matching import request_cancel, submit
from quotewise.sim.records import (
    ACT_CANCEL,
    ACT_SUBMIT,
    F_CASH,
    INT64_MAX,
    R_ACT_N,
    R_CHANGED,
    R_EQ_N,
    R_FEED_LAT,
    R_INTERVAL,
    R_LOCAL_POS,
    R_NEXT_DECISION,
    R_NOW,
    R_POS,
    R_RESP_DONE,
    R_RESP_N,
    R_SIGNAL,
    R_SLOTS,
    R_STEP,
    R_VIEW_ASK,
    R_VIEW_BID,
    REASON_NONE,
    S_FREE,
)


@nb.njit(cache=True, inline="always")
def _log(reg, act, order_id, side, price, size, left, kind):
    k = reg[R_ACT_N]
    a = act[k]
    a["ts"] = reg[R_NOW]
    a["order_id"] = order_id
    a["side"] = side
    a["price"] = price
    a["size"] = size
    a["kind"] = kind
    a["left"] = left
    a["step"] = reg[R_STEP]
    reg[R_STEP] += 1
    reg[R_ACT_N] = k + 1


@nb.njit(cache=True, inline="always")
def place_order(reg, ords, local, act, side, price, size, post_only, reject_reason):
    """Send an order now (both modes); returns its slot, -1 when every slot is taken."""
    slot = submit(reg, ords, side, price, size, post_only, reject_reason)
    if slot >= 0:
        order_id = ords[slot]["id"]
        om.note_submitted(local, slot, order_id, side, price, size)
        _log(reg, act, order_id, side, price, size, size, ACT_SUBMIT)
    return slot


@nb.njit(cache=True, inline="always")
def cancel_order(reg, ords, local, act, slot):
    """Request a cancel (both modes); False when one is already on its way."""
    if not om.may_cancel(local, slot):
        return False
    request_cancel(reg, ords, slot)
    om.note_cancel_requested(local, slot)
    o = ords[slot]
    _log(reg, act, o["id"], o["side"], o["price"], o["qty"], local[slot]["left"], ACT_CANCEL)
    return True


@nb.njit(cache=True, inline="always")
def deliver_response(reg, ords, local, resp, k):
    """One response reaches the strategy side: the local view, its position, and the slot is freed
    once neither side needs it."""
    r = resp[k]
    slot = r["slot"]
    reg[R_LOCAL_POS] += om.note_response(local, slot, r["kind"], r["qty"], r["left"])
    if om.forgotten(local, slot):
        ords[slot]["state"] = S_FREE


@nb.njit(cache=True, inline="always")
def _prediction(reg, sig_t, sig_p):
    """The latest signal (a model's prediction, a lead's fair value) whose sample the strategy has
    seen by now (NaN, none, before any)."""
    k = reg[R_SIGNAL]
    seen = reg[R_NOW] - reg[R_FEED_LAT]
    while k < sig_t.shape[0] and sig_t[k] <= seen:
        k += 1
    reg[R_SIGNAL] = k
    return sig_p[k - 1] if k > 0 else np.nan


@nb.njit(cache=True, inline="always")
def next_signal_change(reg, sig_t, sig_p):
    """When the strategy first sees a signal other than the one it last decided on (local time,
    INT64_MAX: never). A model's prediction or a lead's fair value moves with time and with another
    market, so a quiet book is no reason to skip the decisions before it."""
    k = reg[R_SIGNAL]
    last = sig_p[k - 1] if k > 0 else np.nan
    while k < sig_t.shape[0] and (sig_p[k] == last or (np.isnan(sig_p[k]) and np.isnan(last))):
        k += 1
    return sig_t[k] + reg[R_FEED_LAT] if k < sig_t.shape[0] else INT64_MAX


@nb.njit(cache=True, inline="always")
def _decide(reg, qp, ords, local, act, signal):
    """The quoting rule on the strategy's view of the touch, then the reconcile step."""
    want_bid, want_ask, bid_p, ask_p = quote_prices(
        qp, reg[R_VIEW_BID], reg[R_VIEW_ASK], float(reg[R_LOCAL_POS]), signal
    )
    size = np.int64(qp[0]["size"])
    post_only = np.int64(qp[0]["post_only"])
    keep_bid = _reconcile_side(reg, ords, local, act, BID, want_bid, bid_p, size)
    keep_ask = _reconcile_side(reg, ords, local, act, ASK, want_ask, ask_p, size)
    if want_bid and keep_bid < 0:
        place_order(reg, ords, local, act, BID, bid_p, size, post_only, REASON_NONE)
    if want_ask and keep_ask < 0:
        place_order(reg, ords, local, act, ASK, ask_p, size, post_only, REASON_NONE)


@nb.njit(cache=True, inline="always")
def _reconcile_side(reg, ords, local, act, side, want, price, size):
    """Cancel every live order on ``side`` but the one kept for the wanted quote; returns its slot."""
    n_slots = reg[R_SLOTS]
    keep = om.kept_order(local, n_slots, side, want, price, size)
    for s in range(n_slots):
        if s != keep and om.is_live(local, s, side):
            cancel_order(reg, ords, local, act, s)
    return keep


@nb.njit(cache=True)
def compiled_wake(reg, freg, qp, ords, local, resp, act, samples, sig_t, sig_p):
    """Deliver due responses, then decide if a decision is due (``sig_t``/``sig_p``: the model's
    predictions and their sample times, empty without a model). False: a buffer needs draining."""
    now = reg[R_NOW]
    k = reg[R_RESP_DONE]
    while k < reg[R_RESP_N] and resp[k]["deliver"] <= now:
        deliver_response(reg, ords, local, resp, k)
        reg[R_CHANGED] = 1
        resp[k]["at"] = reg[R_STEP]
        reg[R_STEP] += 1
        k += 1
    reg[R_RESP_DONE] = k
    if now < reg[R_NEXT_DECISION]:
        return True
    if reg[R_ACT_N] + 2 * ords.shape[0] + 2 > act.shape[0] or reg[R_EQ_N] + 1 > samples.shape[0]:
        return False
    _decide(reg, qp, ords, local, act, _prediction(reg, sig_t, sig_p))
    e = samples[reg[R_EQ_N]]
    e["ts"] = now
    e["pos"] = reg[R_POS]
    e["cash"] = freg[F_CASH]
    e["bid"] = reg[R_VIEW_BID]
    e["ask"] = reg[R_VIEW_ASK]
    e["quote_bid"] = om.best_working(local, reg[R_SLOTS], BID)
    e["quote_ask"] = om.best_working(local, reg[R_SLOTS], ASK)
    reg[R_EQ_N] += 1
    reg[R_NEXT_DECISION] = now + reg[R_INTERVAL]
    reg[R_CHANGED] = 0
    return True
