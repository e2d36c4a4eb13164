"""The order manager's reconcile step, compiled: the copy the simulator's compiled decisions run.

It mirrors :class:`quotewise.execution.order_manager.OrderManager` rule for rule (one order kept per
wanted quote, the rest cancelled, the missing one placed; orders being cancelled left alone; orders
in flight count as working) on a local view of our orders kept from the responses delivered, as
the order manager keeps its own. ``tests/sim/test_compiled.py`` runs both on the same data and
requires identical fills, orders and equity.

The local view is an array of ``LOCAL_DTYPE`` records, one per order slot (the simulator's slot of
the same order). These functions decide; the simulator carries out (sends, cancels, frees slots).
"""

import numba as nb
import numpy as np

# What the strategy side knows of an order, from what it sent and the responses delivered so far.
LOCAL_DTYPE = np.dtype(
    [
        ("order_id", np.int64),
        ("side", np.int64),
        ("price", np.int64),
        ("size", np.int64),  # as sent
        ("left", np.int64),
        ("status", np.int64),  # LS_*
        ("cancel_out", np.int64),  # 1: a cancel was sent and its answer has not arrived
        ("terminal", np.int64),  # 1: the order is finished as far as the strategy knows
    ]
)
LS_NONE = 0
LS_PENDING_NEW = 1
LS_WORKING = 2
LS_PENDING_CANCEL = 3

# response kinds as the local view hears them (the simulator's K_* values)
HEARD_ACCEPTED = 1
HEARD_REJECTED = 2
HEARD_FILL = 3
HEARD_CANCELLED = 4
HEARD_CANCEL_REJECTED = 5


@nb.njit(cache=True, inline="always")
def note_submitted(local, slot, order_id, side, price, size):
    """An order was sent: it is pending until the venue answers."""
    o = local[slot]
    o["order_id"] = order_id
    o["side"] = side
    o["price"] = price
    o["size"] = size
    o["left"] = size
    o["status"] = LS_PENDING_NEW
    o["cancel_out"] = 0
    o["terminal"] = 0


@nb.njit(cache=True, inline="always")
def may_cancel(local, slot):
    """False when a cancel of this order is already on its way (it is not sent twice)."""
    return local[slot]["cancel_out"] == 0


@nb.njit(cache=True, inline="always")
def note_cancel_requested(local, slot):
    o = local[slot]
    o["cancel_out"] = 1
    if o["terminal"] == 0:
        o["status"] = LS_PENDING_CANCEL


@nb.njit(cache=True, inline="always")
def note_response(local, slot, kind, qty, left):
    """One response delivered: update the local view; returns the position change it tells (lots)."""
    o = local[slot]
    live = o["terminal"] == 0
    moved = 0
    if kind == HEARD_ACCEPTED:
        if live and o["status"] == LS_PENDING_NEW:
            o["status"] = LS_WORKING
    elif kind == HEARD_REJECTED or kind == HEARD_CANCELLED:
        o["status"] = LS_NONE
        o["terminal"] = 1
        if kind == HEARD_CANCELLED:
            o["cancel_out"] = 0
    elif kind == HEARD_FILL:
        if live:
            o["left"] = left
            moved = o["side"] * qty
            if left <= 0:
                o["status"] = LS_NONE
                o["terminal"] = 1
    elif kind == HEARD_CANCEL_REJECTED:
        o["cancel_out"] = 0
        if live and o["left"] > 0:
            o["status"] = LS_WORKING
    return moved


@nb.njit(cache=True, inline="always")
def forgotten(local, slot):
    """The strategy side is done with the order: finished, and no cancel answer still to come."""
    return local[slot]["terminal"] == 1 and local[slot]["cancel_out"] == 0


@nb.njit(cache=True, inline="always")
def is_live(local, slot, side):
    """An order on ``side`` that is pending or working (not being cancelled, not finished; a free
    slot's record is LS_NONE: it was terminal when freed)."""
    st = local[slot]["status"]
    return local[slot]["side"] == side and (st == LS_PENDING_NEW or st == LS_WORKING)


@nb.njit(cache=True, inline="always")
def kept_order(local, n_slots, side, want, price, size):
    """The reconcile step on one side: the slot of the order kept for the wanted quote (the first live
    one at its price and size), or -1. Every other live order on ``side`` is to be cancelled, and the
    quote placed when none is kept."""
    if want:
        for s in range(n_slots):
            if is_live(local, s, side) and local[s]["price"] == price and local[s]["size"] == size:
                return s
    return -1


@nb.njit(cache=True, inline="always")
def best_working(local, n_slots, side):
    """Our best working price on ``side`` as the strategy knows it (-1 when none)."""
    best = -1
    for s in range(n_slots):
        o = local[s]
        if o["side"] == side and o["status"] == LS_WORKING:
            p = o["price"]
            if best < 0 or (side == 1 and p > best) or (side == -1 and p < best):
                best = p
    return best
