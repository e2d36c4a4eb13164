"""Our orders at the simulated exchange: arrival (validation, the venue's filters, taking), fills and
their accounts, cancels. The rules are docs/fill-rules.md sections 2, 3, 5 and 7.

Our orders are virtual: they never change the replayed book. ``mine_bid``/``mine_ask`` count our
resting orders per price level so that the event loop can tell cheaply whether an event touches
one of them; ``reg[R_OWN_BID]``/``reg[R_OWN_ASK]`` are our most aggressive resting prices.
"""

import numba as nb

from quotewise.book import core, window
from quotewise.model.events import ASK, BID
from quotewise.model.fees import fee_of
from quotewise.sim import latency
from quotewise.sim.records import (
    F_BAND_DOWN,
    F_BAND_UP,
    F_CASH,
    F_FEE_EXPONENT,
    F_FEE_PROBABILITY,
    F_FEE_ROUNDING,
    F_FEE_STEP,
    F_FEES,
    F_INVERSE_VALUE,
    F_MAKER_FEE,
    F_MIN_NOTIONAL,
    F_NOTIONAL,
    F_PRICE_PER_TICK,
    F_QUOTE_PER_LOT,
    F_SHARES_PER_LOT,
    F_TAKER_FEE,
    F_VALUE_PER_TICK_LOT,
    F_VOLUME,
    INT64_MAX,
    K_ACCEPTED,
    K_CANCEL_REJECTED,
    K_CANCELLED,
    K_FILL,
    K_REJECTED,
    R_FILLS,
    R_MID2,
    R_MIN_LOTS,
    R_N_TAKEN,
    R_NEXT_ARRIVAL,
    R_NEXT_ID,
    R_NOW,
    R_ORDER_LOTS,
    R_OWN_ASK,
    R_OWN_BID,
    R_POS,
    R_PRICE_HI,
    R_PRICE_LO,
    R_RESP_N,
    R_SEQ,
    R_SLOTS,
    R_WHOLE_FILLS,
    REASON_ALREADY_DONE,
    REASON_BELOW_MIN_NOTIONAL,
    REASON_BELOW_MIN_SIZE,
    REASON_NONE,
    REASON_OFF_LOT,
    REASON_OUT_OF_RANGE,
    REASON_POST_ONLY_CROSS,
    REASON_PRICE_BAND,
    S_DONE,
    S_FREE,
    S_INFLIGHT,
    S_RESTING,
)

# room kept in the response buffer before a step that can emit many responses
RESPONSE_HEADROOM = 64


@nb.njit(cache=True, inline="always")
def mid2(bst):
    """Best bid + best ask in ticks (twice the mid, kept integer); -1 with a side empty."""
    if bst[core.BB] < 0 or bst[core.BA] >= bst[core.N]:
        return -1
    return 2 * bst[core.BASE] + bst[core.BB] + bst[core.BA]


@nb.njit(cache=True, inline="always")
def emit(reg, freg, resp, exch_ts, ords, slot, kind, price, qty, maker, reason, fee):
    """Append a response about the order in ``slot``; it reaches the strategy after the latency."""
    k = reg[R_RESP_N]
    r = resp[k]
    o = ords[slot]
    r["deliver"] = exch_ts + latency.response_delay(reg, exch_ts)
    r["exch_ts"] = exch_ts
    r["order_id"] = o["id"]
    r["slot"] = slot
    r["kind"] = kind
    r["price"] = price
    r["qty"] = qty
    r["left"] = o["left"]
    r["maker"] = maker
    r["reason"] = reason
    r["pos"] = reg[R_POS]
    r["side"] = o["side"]
    r["mid2"] = reg[R_MID2]
    r["at"] = 0
    r["fee"] = fee
    r["cash"] = freg[F_CASH]
    reg[R_RESP_N] = k + 1


@nb.njit(cache=True, inline="always")
def refresh_own(reg, ords):
    """Recompute our most aggressive resting prices (the loop's cheap trade-through test)."""
    own_bid = -1
    own_ask = INT64_MAX
    for s in range(reg[R_SLOTS]):
        o = ords[s]
        if o["state"] == S_RESTING:
            p = o["price"]
            if o["side"] == BID:
                own_bid = max(own_bid, p)
            else:
                own_ask = min(own_ask, p)
    reg[R_OWN_BID] = own_bid
    reg[R_OWN_ASK] = own_ask


@nb.njit(cache=True)
def resting_span(reg, ords):
    """The lowest and highest price of our resting orders (INT64_MAX, -1 when none rests)."""
    lo = INT64_MAX
    hi = -1
    for s in range(reg[R_SLOTS]):
        o = ords[s]
        if o["state"] == S_RESTING:
            lo = min(lo, o["price"])
            hi = max(hi, o["price"])
    return lo, hi


@nb.njit(cache=True, inline="always")
def retire(reg, ords, mine_bid, mine_ask, bst, slot):
    """The order in ``slot`` is finished at the exchange."""
    o = ords[slot]
    if o["state"] == S_RESTING:
        i = o["price"] - bst[core.BASE]
        if o["side"] == BID:
            mine_bid[i] -= 1
        else:
            mine_ask[i] -= 1
    o["state"] = S_DONE
    refresh_own(reg, ords)


@nb.njit(cache=True, inline="always")
def fill_fee(freg, price, qty, notional, maker):
    """The fee of a fill of ``qty`` lots at ``price`` ticks (:func:`quotewise.model.fees.fee_of`)."""
    return fee_of(
        freg[F_MAKER_FEE] if maker else freg[F_TAKER_FEE],
        notional,
        qty * freg[F_SHARES_PER_LOT],
        freg[F_FEE_PROBABILITY] > 0,
        price * freg[F_PRICE_PER_TICK],
        freg[F_FEE_EXPONENT],
        freg[F_FEE_STEP],
        freg[F_FEE_ROUNDING],
    )


@nb.njit(cache=True, inline="always")
def fill(reg, freg, resp, ords, mine_bid, mine_ask, bst, slot, qty, price, maker, exch_ts):
    """Book a fill of ``qty`` lots at ``price`` for the order in ``slot``, in the settlement currency
    (the arithmetic of ``Instrument.value``: linear ``price x qty x value``, inverse ``-qty x value /
    price``)."""
    o = ords[slot]
    side = o["side"]
    if freg[F_INVERSE_VALUE] > 0:
        value = -(qty * freg[F_INVERSE_VALUE]) / price
    else:
        value = price * qty * freg[F_VALUE_PER_TICK_LOT]
    notional = abs(value)
    fee = fill_fee(freg, price, qty, notional, maker)
    reg[R_POS] += side * qty
    freg[F_CASH] -= side * value + fee
    freg[F_FEES] += fee
    freg[F_VOLUME] += qty
    freg[F_NOTIONAL] += notional
    reg[R_FILLS] += 1
    o["left"] -= qty
    if o["left"] <= 0:
        retire(reg, ords, mine_bid, mine_ask, bst, slot)
    emit(reg, freg, resp, exch_ts, ords, slot, K_FILL, price, qty, 1 if maker else 0, REASON_NONE, fee)


@nb.njit(cache=True)
def _take(reg, freg, resp, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, slot, exch_ts):
    """Match an arriving marketable order against the book's levels, best price first."""
    o = ords[slot]
    limit = o["price"] - bst[core.BASE]
    if o["side"] == BID:  # a buy walks the asks upward
        levels, taken, i, step, last = ask, taken_ask, bst[core.BA], 1, min(limit, bst[core.ASK_HI])
    else:  # a sell walks the bids downward
        levels, taken, i, step, last = bid, taken_bid, bst[core.BB], -1, max(limit, bst[core.BID_LO])
    while o["left"] > 0 and (last - i) * step >= 0:
        avail = levels[i] - taken[i]
        if avail > 0:
            q = min(avail, o["left"])
            if taken[i] == 0:
                reg[R_N_TAKEN] += 1
            taken[i] += q
            fill(reg, freg, resp, ords, mine_bid, mine_ask, bst, slot, q, bst[core.BASE] + i, False, exch_ts)
        i += step


@nb.njit(cache=True)
def _venue_filters(freg, bst, price, qty):
    """The venue's order filters beyond tick, lot and size: the smallest order value (in the quote
    currency: price x size for linear contracts, size x contract size for inverse ones) and the
    price band around the mid (Binance's PERCENT_PRICE, against the mid at arrival)."""
    if freg[F_MIN_NOTIONAL] > 0:
        if freg[F_INVERSE_VALUE] > 0:
            value = qty * freg[F_QUOTE_PER_LOT]
        else:
            value = price * qty * freg[F_VALUE_PER_TICK_LOT]
        if value < freg[F_MIN_NOTIONAL] * (1.0 - 1e-9):
            return REASON_BELOW_MIN_NOTIONAL
    if freg[F_BAND_UP] > 0:
        m2 = mid2(bst)
        if m2 > 0 and (2.0 * price > m2 * freg[F_BAND_UP] or 2.0 * price < m2 * freg[F_BAND_DOWN]):
            return REASON_PRICE_BAND
    return REASON_NONE


@nb.njit(cache=True)
def _rejection(reg, freg, bst, o, i):
    """Why the venue refuses an arriving order (REASON_NONE: it does not)."""
    reason = o["reject"]
    if reason != REASON_NONE:
        return reason
    price = o["price"]
    if price < reg[R_PRICE_LO] or price > reg[R_PRICE_HI] or i < 0 or i >= bst[core.N]:
        return REASON_OUT_OF_RANGE
    if o["qty"] < reg[R_MIN_LOTS]:
        return REASON_BELOW_MIN_SIZE
    if o["qty"] % reg[R_ORDER_LOTS] != 0:
        return REASON_OFF_LOT
    return _venue_filters(freg, bst, price, o["qty"])


@nb.njit(cache=True)
def _arrive_new(reg, freg, resp, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, slot, t):
    """A new order reaches the exchange at time ``t``: validate, take if marketable, then rest."""
    o = ords[slot]
    side = o["side"]
    price = o["price"]
    i = price - bst[core.BASE]
    reason = _rejection(reg, freg, bst, o, i)
    crosses = (side == BID and bst[core.BA] < bst[core.N] and i >= bst[core.BA]) or (
        side == ASK and bst[core.BB] >= 0 and i <= bst[core.BB]
    )
    if reason == REASON_NONE and crosses and o["post_only"] == 1:
        reason = REASON_POST_ONLY_CROSS
    if reason != REASON_NONE:
        o["state"] = S_DONE
        emit(reg, freg, resp, t, ords, slot, K_REJECTED, price, 0, 0, reason, 0.0)
        return
    o["state"] = S_RESTING
    if side == BID:
        mine_bid[i] += 1
    else:
        mine_ask[i] += 1
    emit(reg, freg, resp, t, ords, slot, K_ACCEPTED, price, 0, 0, REASON_NONE, 0.0)
    if crosses:
        _take(reg, freg, resp, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, slot, t)
    if o["state"] == S_RESTING:
        o["ahead"] = max((bid[i] - taken_bid[i]) if side == BID else (ask[i] - taken_ask[i]), 0)
        o["seq"] = reg[R_SEQ]
        refresh_own(reg, ords)


@nb.njit(cache=True)
def _arrive_cancel(reg, freg, resp, ords, mine_bid, mine_ask, bst, slot, t):
    """A cancel reaches the exchange: it removes a resting order, or is rejected (already done)."""
    o = ords[slot]
    o["cancel_at"] = -1
    kind, reason = K_CANCEL_REJECTED, REASON_ALREADY_DONE
    if o["state"] == S_RESTING:
        retire(reg, ords, mine_bid, mine_ask, bst, slot)
        kind, reason = K_CANCELLED, REASON_NONE
    emit(reg, freg, resp, t, ords, slot, kind, o["price"], 0, 0, reason, 0.0)


@nb.njit(cache=True, inline="always")
def next_arrival(reg, ords):
    """Earliest exchange arrival among requests in flight (INT64_MAX when none)."""
    t = INT64_MAX
    for s in range(reg[R_SLOTS]):
        o = ords[s]
        if o["state"] == S_INFLIGHT and o["arrive"] < t:
            t = o["arrive"]
        if o["cancel_at"] >= 0 and o["cancel_at"] < t:
            t = o["cancel_at"]
    return t


@nb.njit(cache=True)
def process_arrivals(
    reg, freg, resp, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, until, far
):
    """Deliver every request that reaches the exchange at or before ``until``, in time order (``far``:
    a windowed book's far log, :mod:`quotewise.book.window`, None for a plain book; an order outside
    the window opens it)."""
    reg[R_MID2] = mid2(bst)
    while reg[R_NEXT_ARRIVAL] <= until:
        if reg[R_RESP_N] + RESPONSE_HEADROOM > resp.shape[0]:
            return False
        t = reg[R_NEXT_ARRIVAL]
        for s in range(reg[R_SLOTS]):
            if ords[s]["state"] == S_INFLIGHT and ords[s]["arrive"] == t:
                if far is not None:
                    i = ords[s]["price"] - bst[core.BASE]
                    if i < bst[core.WLO] or i >= bst[core.WHI]:
                        window.open_window(bid, ask, bst, far)
                _arrive_new(
                    reg, freg, resp, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, s, t
                )
        for s in range(reg[R_SLOTS]):
            if ords[s]["cancel_at"] == t:
                _arrive_cancel(reg, freg, resp, ords, mine_bid, mine_ask, bst, s, t)
        reg[R_NEXT_ARRIVAL] = next_arrival(reg, ords)
    return True


@nb.njit(cache=True)
def through_book(reg, freg, resp, ords, mine_bid, mine_ask, bst, side, price, added, exch_ts):
    """Tape liquidity added on ``side`` at or through our resting opposite order would meet it."""
    for s in range(reg[R_SLOTS]):
        if added <= 0:
            return
        o = ords[s]
        if o["state"] != S_RESTING or o["side"] != -side:
            continue
        p = o["price"]
        if (side == ASK and price <= p) or (side == BID and price >= p):
            q = o["left"] if reg[R_WHOLE_FILLS] == 1 else min(added, o["left"])
            added -= q
            fill(reg, freg, resp, ords, mine_bid, mine_ask, bst, s, q, p, True, exch_ts)


# -- requests we send -------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def submit(reg, ords, side, price, size, post_only, reject_reason):
    """Send an order now: it takes a free slot and an id, and reaches the exchange after the entry
    latency. Returns the slot (-1 when every slot is taken)."""
    slot = -1
    for s in range(min(reg[R_SLOTS] + 1, ords.shape[0])):
        if ords[s]["state"] == S_FREE:
            slot = s
            break
    if slot < 0:
        return -1
    if slot >= reg[R_SLOTS]:
        reg[R_SLOTS] = slot + 1
    o = ords[slot]
    o["id"] = reg[R_NEXT_ID]
    reg[R_NEXT_ID] += 1
    o["side"] = side
    o["price"] = price
    o["qty"] = size
    o["left"] = size
    o["ahead"] = 0
    o["state"] = S_INFLIGHT
    o["arrive"] = reg[R_NOW] + latency.entry_delay(reg, reg[R_NOW])
    o["cancel_at"] = -1
    o["seq"] = 0
    o["post_only"] = post_only
    o["reject"] = reject_reason
    o["traded"] = 0
    if o["arrive"] < reg[R_NEXT_ARRIVAL]:
        reg[R_NEXT_ARRIVAL] = o["arrive"]
    return slot


@nb.njit(cache=True, inline="always")
def request_cancel(reg, ords, slot):
    """Send a cancel now: it reaches the exchange after the entry latency."""
    o = ords[slot]
    o["cancel_at"] = reg[R_NOW] + latency.entry_delay(reg, reg[R_NOW])
    if o["cancel_at"] < reg[R_NEXT_ARRIVAL]:
        reg[R_NEXT_ARRIVAL] = o["cancel_at"]
