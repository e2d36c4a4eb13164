"""The exchange simulator: one compiled pass over market events with our orders inside it.

The rules implemented here are stated, one by one, in ``docs/fill-rules.md``; each has a test in
``tests/sim``. In short:

* Events are processed once, in the order of their local (receive) time. Readers guarantee that the
  exchange time never decreases and never exceeds the local time, which makes a single pass exact:
  an order sent at local time ``t`` reaches the exchange at ``t + entry_latency`` and is matched
  before the first event whose exchange time is at or after that instant.
* The strategy sees an event at ``local_ts + feed_latency``. It decides on a fixed grid of local
  times; the loop returns to Python at each decision time and when a response (ack, fill, cancel)
  reaches the strategy, ``response_latency`` after the exchange produced it.
* Queue position: exact FIFO on L3 data (order ids), or on L2 data a risk-averse model (we advance
  only by trades at our price; a shrinking level can only cut the queue to its new size) or a
  probabilistic model (a shrinking level's decrease is split between the part ahead of us and the
  part behind in proportion to ``ahead**n`` and ``behind**n``).
* Our orders are virtual: they never change the replayed book. Liquidity is used once: a trade
  print fills the orders ahead of ours first, and what we take as a taker stays used until the tape
  shows that much leaving the level.

All prices are integer ticks, sizes integer lots, times int64 ns. State lives in numpy arrays so the
loop compiles with ``cache=True`` and the same arrays are read from Python between segments.
"""

import numba as nb
import numpy as np

from quotewise.book import core
from quotewise.model.events import ADD, ASK, BID, DELETE, EXECUTE, SET, TRADE
from quotewise.quoting.components import apply_fee_floor

INT64_MAX = np.iinfo(np.int64).max

# Queue models
FIFO = 0
RISK_AVERSE = 1
PROBABILISTIC = 2

# Integer registers (reg)
R_CURSOR = 0  # the strategy's cursor: next event index in the current chunk it has not seen
R_NOW = 1  # local time of the last wake-up
R_NEXT_DECISION = 2
R_INTERVAL = 3
R_ENTRY_LAT = 4
R_RESP_LAT = 5
R_FEED_LAT = 6
R_QUEUE = 7
R_NEXT_ARRIVAL = 8  # earliest exchange arrival of an order or cancel in flight
R_PENDING_WAKE = 9  # earliest delivery among responses Python holds back
R_RESP_N = 10  # responses in the buffer
R_POS = 11  # position in lots (exchange side, i.e. the truth)
R_EVENTS = 12  # events processed
R_SEQ = 13  # L3 arrival sequence counter
R_MIN_LOTS = 14
R_LAST_EXCH = 15  # exchange time of the last event processed
R_N_TAKEN = 16  # levels with liquidity we took (0 lets the loop skip the check)
R_FILLS = 17
R_STARTED = 18  # 0 until the first event sets the decision grid
R_PRICE_LO = 19  # valid order prices (instrument bounds, in ticks)
R_PRICE_HI = 20
R_OWN_BID = 21  # our highest resting bid, -1 when none
R_OWN_ASK = 22  # our lowest resting ask, INT64_MAX when none
R_TIMER = 23  # a local time at which Python asked to be woken (INT64_MAX when none)
R_LAST_LOCAL = 24  # local time (with feed latency) at which the last processed event became visible
R_RESP_DONE = 25  # responses in the buffer already delivered inside the engine (compiled mode)
R_MODE = 26  # PYTHON_MODE: wake Python at decisions; COMPILED_MODE: decide inside the loop
R_NEXT_ID = 27  # next order id
R_LOCAL_POS = 28  # position as the fill reports delivered so far tell it (compiled mode)
R_ACT_N = 29  # rows in the action buffer (compiled mode)
R_EQ_N = 30  # rows in the equity buffer (compiled mode)
R_STEP = 31  # counts deliveries and actions, to replay them in the order they happened (compiled mode)
R_MID2 = 32  # best bid + best ask (ticks) before the event being processed: the fair value of a fill
R_SLOTS = 33  # one past the highest order slot ever used: every scan of our orders stops there
R_WHOLE_FILLS = 34  # 1: a trade that reaches our order fills all of it (hftbacktest's no-partial rule)
R_CHANGED = (
    35  # 1 once the strategy's view changed (an event seen, a response delivered) since it last decided
)
R_XCURSOR = 36  # the exchange's cursor: next event index in the current chunk it has not processed
R_FINAL = 37  # 1 when the current chunk is the last: nothing can come after it
R_VIEW_DONE = 38  # events up to here are applied to the strategy's local book (Python mode, lazily)
R_VIEW_BID = 39  # the best bid and ask the strategy has seen (ticks, -1 when a side is empty)
R_VIEW_ASK = 40
R_MARKET_FIRST = 41  # 1: an event at an order's arrival time is processed first (hftbacktest's tie rule)
R_ORDER_LOTS = 42  # order sizes are multiples of this many lots (the venue's step)
REG_LEN = 43

PYTHON_MODE = 0
COMPILED_MODE = 1

# Float registers (freg)
F_CASH = 0
F_FEES = 1
F_MAKER_FEE = 2
F_TAKER_FEE = 3
F_VALUE_PER_TICK_LOT = 4  # linear, quanto: settlement money per tick per lot (Instrument.value_per_tick_lot)
F_QUEUE_POWER = 5
F_VOLUME = 6  # lots traded
F_NOTIONAL = 7  # traded value, settlement currency
F_INVERSE_VALUE = 8  # inverse contracts: a lot at t ticks is worth this / t coins (0: not inverse)
F_MIN_NOTIONAL = 9  # the venue's smallest order value, quote currency (0: none)
F_QUOTE_PER_LOT = 10  # inverse: quote-currency value of one lot (its contract size x lot)
F_BAND_DOWN = 11  # the venue rejects prices below down x mid or above up x mid (0: no band)
F_BAND_UP = 12
FREG_LEN = 13

# Order slot fields (ords[slot, field])
O_ID = 0
O_SIDE = 1
O_PRICE = 2
O_QTY = 3
O_LEFT = 4
O_AHEAD = 5  # lots ahead of us at our price (FIFO and risk-averse)
O_STATE = 6
O_ARRIVE = 7  # exchange arrival time of the new-order request
O_CANCEL_AT = 8  # exchange arrival time of a cancel request, -1 when none
O_SEQ = 9  # L3 sequence at our arrival: tape orders with a smaller sequence are ahead of us
O_POST_ONLY = 10
O_REJECT = 11  # a reason found before sending (off tick, below minimum): rejected on arrival
O_TRADED = 12  # traded at our price since the level last changed (not counted twice as a cancel)
ORD_FIELDS = 13

# Slot states
S_FREE = 0
S_INFLIGHT = 1
S_RESTING = 2
S_DONE = 3  # finished at the exchange; Python frees the slot once it has heard

# Response buffer fields (resp[k, field]) and kinds
P_DELIVER = 0
P_EXCH_TS = 1
P_ORDER_ID = 2
P_SLOT = 3
P_KIND = 4
P_PRICE = 5
P_QTY = 6
P_LEFT = 7
P_MAKER = 8
P_REASON = 9
P_POS = 10
P_MID2 = 11  # best bid + best ask (ticks) when the response was made; -1 with a side empty
P_SIDE = 12
P_AT = 13  # when the engine delivered it, as a step of reg[R_STEP] (compiled mode)
RESP_FIELDS = 14
# float side of a response (respf[k, field])
PF_FEE = 0
PF_CASH = 1
RESPF_FIELDS = 2

K_ACCEPTED = 1
K_REJECTED = 2
K_FILL = 3
K_CANCELLED = 4
K_CANCEL_REJECTED = 5

# Reject reasons
REASON_NONE = 0
REASON_POST_ONLY_CROSS = 1
REASON_OFF_TICK = 2
REASON_BELOW_MIN_SIZE = 3
REASON_OUT_OF_RANGE = 4
REASON_ALREADY_DONE = 5
REASON_OFF_LOT = 6
REASON_BELOW_MIN_NOTIONAL = 7
REASON_PRICE_BAND = 8
REASON_TEXT = {
    REASON_NONE: "",
    REASON_POST_ONLY_CROSS: "post-only order would cross the book",
    REASON_OFF_TICK: "price is not on the tick grid",
    REASON_BELOW_MIN_SIZE: "size is below the instrument minimum",
    REASON_OUT_OF_RANGE: "price is outside the instrument's valid range",
    REASON_ALREADY_DONE: "order already filled or cancelled",
    REASON_OFF_LOT: "size is not a whole number of the venue's size step (lot)",
    REASON_BELOW_MIN_NOTIONAL: "order value is below the venue's minimum (min notional)",
    REASON_PRICE_BAND: "price is outside the venue's band around the mid (percent price filter)",
}

# Why run_segment returned
WAKE = 1  # a decision or a response delivery is due at reg[R_NOW]
CHUNK_END = 2
BUFFER_FULL = 3


@nb.njit(cache=True)
def _emit(reg, freg, resp, respf, bst, exch_ts, ords, slot, kind, price, qty, maker, reason, fee):
    k = reg[R_RESP_N]
    resp[k, P_DELIVER] = exch_ts + reg[R_RESP_LAT]
    resp[k, P_EXCH_TS] = exch_ts
    resp[k, P_ORDER_ID] = ords[slot, O_ID]
    resp[k, P_SLOT] = slot
    resp[k, P_KIND] = kind
    resp[k, P_PRICE] = price
    resp[k, P_QTY] = qty
    resp[k, P_LEFT] = ords[slot, O_LEFT]
    resp[k, P_MAKER] = maker
    resp[k, P_REASON] = reason
    resp[k, P_POS] = reg[R_POS]
    resp[k, P_SIDE] = ords[slot, O_SIDE]
    resp[k, P_MID2] = reg[R_MID2]
    respf[k, PF_FEE] = fee
    respf[k, PF_CASH] = freg[F_CASH]
    reg[R_RESP_N] = k + 1


@nb.njit(cache=True, inline="always")
def _mid2(bst):
    """Best bid + best ask in ticks (twice the mid, kept integer); -1 with a side empty."""
    if bst[core.BB] < 0 or bst[core.BA] >= bst[core.N]:
        return -1
    return 2 * bst[core.BASE] + bst[core.BB] + bst[core.BA]


@nb.njit(cache=True)
def _fill(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, slot, qty, price, maker, exch_ts):
    """Book a fill of ``qty`` lots at ``price`` for the order in ``slot``, in the settlement currency
    (the arithmetic of ``Instrument.value``: linear ``price x qty x value``, inverse ``-qty x value /
    price``)."""
    side = ords[slot, O_SIDE]
    if freg[F_INVERSE_VALUE] > 0:
        value = -(qty * freg[F_INVERSE_VALUE]) / price
    else:
        value = price * qty * freg[F_VALUE_PER_TICK_LOT]
    notional = abs(value)
    fee = notional * (freg[F_MAKER_FEE] if maker else freg[F_TAKER_FEE])
    reg[R_POS] += side * qty
    freg[F_CASH] -= side * value + fee
    freg[F_FEES] += fee
    freg[F_VOLUME] += qty
    freg[F_NOTIONAL] += notional
    reg[R_FILLS] += 1
    ords[slot, O_LEFT] -= qty
    if ords[slot, O_LEFT] <= 0:
        _retire(reg, ords, mine_bid, mine_ask, bst, slot)
    _emit(
        reg,
        freg,
        resp,
        respf,
        bst,
        exch_ts,
        ords,
        slot,
        K_FILL,
        price,
        qty,
        1 if maker else 0,
        REASON_NONE,
        fee,
    )


@nb.njit(cache=True)
def refresh_own(reg, ords):
    """Recompute our most aggressive resting prices (the loop's cheap trade-through test)."""
    own_bid = -1
    own_ask = INT64_MAX
    for s in range(reg[R_SLOTS]):
        if ords[s, O_STATE] == S_RESTING:
            p = ords[s, O_PRICE]
            if ords[s, O_SIDE] == BID:
                own_bid = max(own_bid, p)
            else:
                own_ask = min(own_ask, p)
    reg[R_OWN_BID] = own_bid
    reg[R_OWN_ASK] = own_ask


@nb.njit(cache=True)
def _retire(reg, ords, mine_bid, mine_ask, bst, slot):
    if ords[slot, O_STATE] == S_RESTING:
        i = ords[slot, O_PRICE] - bst[core.BASE]
        if ords[slot, O_SIDE] == BID:
            mine_bid[i] -= 1
        else:
            mine_ask[i] -= 1
    ords[slot, O_STATE] = S_DONE
    refresh_own(reg, ords)


@nb.njit(cache=True)
def _take(
    reg, freg, resp, respf, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, slot, exch_ts
):
    """Match an arriving marketable order against the book's levels, best price first."""
    limit = ords[slot, O_PRICE] - bst[core.BASE]
    if ords[slot, O_SIDE] == BID:  # a buy walks the asks upward
        levels, taken, i, step, last = ask, taken_ask, bst[core.BA], 1, min(limit, bst[core.ASK_HI])
    else:  # a sell walks the bids downward
        levels, taken, i, step, last = bid, taken_bid, bst[core.BB], -1, max(limit, bst[core.BID_LO])
    while ords[slot, O_LEFT] > 0 and (last - i) * step >= 0:
        avail = levels[i] - taken[i]
        if avail > 0:
            q = min(avail, ords[slot, O_LEFT])
            if taken[i] == 0:
                reg[R_N_TAKEN] += 1
            taken[i] += q
            price = bst[core.BASE] + i
            _fill(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, slot, q, price, False, exch_ts)
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
        mid2 = _mid2(bst)
        if mid2 > 0 and (2.0 * price > mid2 * freg[F_BAND_UP] or 2.0 * price < mid2 * freg[F_BAND_DOWN]):
            return REASON_PRICE_BAND
    return REASON_NONE


@nb.njit(cache=True)
def _arrive_new(
    reg, freg, resp, respf, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, slot, t
):
    """A new order reaches the exchange at time ``t``: validate, take if marketable, then rest."""
    side = ords[slot, O_SIDE]
    price = ords[slot, O_PRICE]
    reason = ords[slot, O_REJECT]
    i = price - bst[core.BASE]
    if reason == REASON_NONE:
        if price < reg[R_PRICE_LO] or price > reg[R_PRICE_HI] or i < 0 or i >= bst[core.N]:
            reason = REASON_OUT_OF_RANGE
        elif ords[slot, O_QTY] < reg[R_MIN_LOTS]:
            reason = REASON_BELOW_MIN_SIZE
        elif ords[slot, O_QTY] % reg[R_ORDER_LOTS] != 0:
            reason = REASON_OFF_LOT
        else:
            reason = _venue_filters(freg, bst, price, ords[slot, O_QTY])
    crosses = (side == BID and bst[core.BA] < bst[core.N] and i >= bst[core.BA]) or (
        side == ASK and bst[core.BB] >= 0 and i <= bst[core.BB]
    )
    if reason == REASON_NONE and crosses and ords[slot, O_POST_ONLY] == 1:
        reason = REASON_POST_ONLY_CROSS
    if reason != REASON_NONE:
        ords[slot, O_STATE] = S_DONE
        _emit(reg, freg, resp, respf, bst, t, ords, slot, K_REJECTED, price, 0, 0, reason, 0.0)
        return
    ords[slot, O_STATE] = S_RESTING
    if side == BID:
        mine_bid[i] += 1
    else:
        mine_ask[i] += 1
    _emit(reg, freg, resp, respf, bst, t, ords, slot, K_ACCEPTED, price, 0, 0, REASON_NONE, 0.0)
    if crosses:
        _take(reg, freg, resp, respf, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, slot, t)
    if ords[slot, O_STATE] == S_RESTING:
        ords[slot, O_AHEAD] = (bid[i] - taken_bid[i]) if side == BID else (ask[i] - taken_ask[i])
        if ords[slot, O_AHEAD] < 0:
            ords[slot, O_AHEAD] = 0
        ords[slot, O_SEQ] = reg[R_SEQ]
        refresh_own(reg, ords)


@nb.njit(cache=True)
def _arrive_cancel(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, slot, t):
    """A cancel reaches the exchange: it removes a resting order, or is rejected (already done)."""
    ords[slot, O_CANCEL_AT] = -1
    kind, reason = K_CANCEL_REJECTED, REASON_ALREADY_DONE
    if ords[slot, O_STATE] == S_RESTING:
        _retire(reg, ords, mine_bid, mine_ask, bst, slot)
        kind, reason = K_CANCELLED, REASON_NONE
    _emit(reg, freg, resp, respf, bst, t, ords, slot, kind, ords[slot, O_PRICE], 0, 0, reason, 0.0)


@nb.njit(cache=True)
def next_arrival(reg, ords):
    """Earliest exchange arrival among requests in flight (INT64_MAX when none)."""
    t = INT64_MAX
    for s in range(reg[R_SLOTS]):
        if ords[s, O_STATE] == S_INFLIGHT and ords[s, O_ARRIVE] < t:
            t = ords[s, O_ARRIVE]
        if ords[s, O_CANCEL_AT] >= 0 and ords[s, O_CANCEL_AT] < t:
            t = ords[s, O_CANCEL_AT]
    return t


@nb.njit(cache=True)
def _process_arrivals(
    reg, freg, resp, respf, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, until
):
    """Deliver every request that reaches the exchange at or before ``until``, in time order."""
    reg[R_MID2] = _mid2(bst)
    while reg[R_NEXT_ARRIVAL] <= until:
        if reg[R_RESP_N] + 64 > resp.shape[0]:
            return False
        t = reg[R_NEXT_ARRIVAL]
        for s in range(reg[R_SLOTS]):
            if ords[s, O_STATE] == S_INFLIGHT and ords[s, O_ARRIVE] == t:
                _arrive_new(
                    reg,
                    freg,
                    resp,
                    respf,
                    ords,
                    bid,
                    ask,
                    bst,
                    taken_bid,
                    taken_ask,
                    mine_bid,
                    mine_ask,
                    s,
                    t,
                )
        for s in range(reg[R_SLOTS]):
            if ords[s, O_CANCEL_AT] == t:
                _arrive_cancel(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, s, t)
        reg[R_NEXT_ARRIVAL] = next_arrival(reg, ords)
    return True


@nb.njit(cache=True)
def _queue_on_trade(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, side, price, qty, exch_ts):
    """A trade of ``qty`` lots against resting ``side`` at ``price`` (L2 models; FIFO non-L3 prints).

    At our price the volume first consumes the queue ahead of each of our orders, then fills them.
    Priced through our order (the aggressor went past our price), it fills our order in full.
    """
    left = qty
    for s in range(reg[R_SLOTS]):
        if ords[s, O_STATE] != S_RESTING or ords[s, O_SIDE] != side:
            continue
        p = ords[s, O_PRICE]
        through = (side == BID and p > price) or (side == ASK and p < price)
        if through:
            _fill(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, s, ords[s, O_LEFT], p, True, exch_ts)
        elif p == price:
            ords[s, O_TRADED] += qty
            if left <= 0:
                continue
            if ords[s, O_AHEAD] >= left:
                ords[s, O_AHEAD] -= left
                left = 0
            else:
                left -= ords[s, O_AHEAD]
                ords[s, O_AHEAD] = 0
                q = ords[s, O_LEFT] if reg[R_WHOLE_FILLS] == 1 else min(left, ords[s, O_LEFT])
                left = max(left - q, 0)
                _fill(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, s, q, p, True, exch_ts)


@nb.njit(cache=True)
def _queue_on_decrease(reg, freg, ords, side, price, old, new):
    """A level at our price changed from ``old`` to ``new`` lots without a trade (L2 models).

    Trades already counted at this price since the level last changed are taken off the decrease,
    so a trade print followed by the depth update that shows it is not counted twice.
    """
    for s in range(reg[R_SLOTS]):
        if ords[s, O_STATE] != S_RESTING or ords[s, O_SIDE] != side or ords[s, O_PRICE] != price:
            continue
        dec = old - new - ords[s, O_TRADED]
        ords[s, O_TRADED] = 0
        ahead = ords[s, O_AHEAD]
        if reg[R_QUEUE] == PROBABILISTIC and dec > 0 and ahead > 0:
            behind = max(old - ahead, 0)
            n = freg[F_QUEUE_POWER]
            fa = float(ahead) ** n
            fb = float(behind) ** n
            ahead -= np.int64(dec * fa / (fa + fb) + 0.5)
        ahead = min(max(ahead, 0), new)
        ords[s, O_AHEAD] = ahead


@nb.njit(cache=True)
def _fifo_on_l3(
    reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, kind, side, price, qty, tape_seq, exch_ts
):
    """Exact FIFO: an L3 change at our price, by a tape order that arrived at ``tape_seq``."""
    for s in range(reg[R_SLOTS]):
        if ords[s, O_STATE] != S_RESTING or ords[s, O_SIDE] != side or ords[s, O_PRICE] != price:
            continue
        ahead_of_us = tape_seq <= ords[s, O_SEQ]
        if ahead_of_us:
            ords[s, O_AHEAD] -= qty
            if ords[s, O_AHEAD] < 0:
                over = -ords[s, O_AHEAD]
                ords[s, O_AHEAD] = 0
                if kind == EXECUTE:
                    # the queue ahead was shorter than counted: the excess reaches us
                    q = min(over, ords[s, O_LEFT])
                    _fill(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, s, q, price, True, exch_ts)
                    qty = over - q
        elif kind == EXECUTE and qty > 0:
            # an order behind ours traded: the aggressor met our order first
            ords[s, O_AHEAD] = 0
            q = min(qty, ords[s, O_LEFT])
            qty -= q
            _fill(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, s, q, price, True, exch_ts)


@nb.njit(cache=True)
def _through_book(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, side, price, added, exch_ts):
    """Tape liquidity added on ``side`` at or through our resting opposite order would meet it."""
    for s in range(reg[R_SLOTS]):
        if added <= 0:
            return
        if ords[s, O_STATE] != S_RESTING or ords[s, O_SIDE] != -side:
            continue
        p = ords[s, O_PRICE]
        if (side == ASK and price <= p) or (side == BID and price >= p):
            q = ords[s, O_LEFT] if reg[R_WHOLE_FILLS] == 1 else min(added, ords[s, O_LEFT])
            added -= q
            _fill(reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, s, q, p, True, exch_ts)


@nb.njit(cache=True)
def _add_seq(orders_seq, order_id):
    """FIFO arrival sequence of a tape order; orders we never saw added count as oldest (-1)."""
    if order_id in orders_seq:
        return orders_seq[order_id]
    return -1


@nb.njit(cache=True, inline="always")
def _view_touch(touch, reg, si):
    """The touch the strategy sees once it has seen the events before ``si`` (kept if none in this chunk)."""
    if si > 0:
        reg[R_VIEW_BID] = touch[si - 1, 0]
        reg[R_VIEW_ASK] = touch[si - 1, 1]


@nb.njit(cache=True)
def _catch_up_view(ev, reg, view_bid, view_ask, view_bst):
    """Apply the events the strategy has seen (up to its cursor) to its local book (Python mode only:
    compiled quoting reads the touch alone, which the exchange records as it goes)."""
    j = reg[R_VIEW_DONE]
    si = reg[R_CURSOR]
    while j < si:
        core.apply_event(
            view_bid, view_ask, view_bst, ev[j]["kind"], ev[j]["side"], ev[j]["price"], ev[j]["size"]
        )
        j += 1
    reg[R_VIEW_DONE] = j


@nb.njit(cache=True)
def _stop(ev, touch, reg, si, si0, xi, view_bid, view_ask, view_bst, code):
    """Leave the loop: record both cursors and bring the strategy's view up to its cursor."""
    reg[R_CURSOR] = si
    reg[R_XCURSOR] = xi
    if si > si0:
        reg[R_EVENTS] += si - si0
        reg[R_LAST_EXCH] = ev[si - 1]["exch_ts"]
        reg[R_LAST_LOCAL] = ev[si - 1]["local_ts"] + reg[R_FEED_LAT]
    _view_touch(touch, reg, si)
    if reg[R_MODE] == PYTHON_MODE:
        _catch_up_view(ev, reg, view_bid, view_ask, view_bst)
    else:
        reg[R_VIEW_DONE] = si
    return code


@nb.njit(cache=True, inline="always")
def _first_undelivered(reg, resp):
    """Delivery time of the first response in the buffer not yet delivered (INT64_MAX when none)."""
    done = reg[R_RESP_DONE]
    return resp[done, P_DELIVER] if reg[R_RESP_N] > done else INT64_MAX


@nb.njit(cache=True)
def _exchange_until(
    ev, touch, xi, limit, must, to_end, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, ords, reg,
    freg, resp, respf, orders_seq, orders_left,
):
    """The exchange's work (request arrivals, then events) due before ``limit`` on the strategy's clock,
    and every event before index ``must`` (events the strategy has seen are processed before it acts).

    A response it makes may be due before ``limit``: the limit comes down to that delivery time
    (unless ``to_end``: the data has ended and the strategy has seen it all, so everything left is
    done). After each event the exchange's touch is written to ``touch`` (the strategy's view of the
    touch once it has seen that event). Returns the new exchange cursor, whether anything was done,
    whether the response buffer must be drained first, and the limit as it came down.

    The event's effects are written out here rather than called: a call per event passing a dozen
    arrays costs as much as the rest of the work.
    """
    n = ev.shape[0]
    entry = reg[R_ENTRY_LAT]
    queue = reg[R_QUEUE]
    worked = False
    while True:
        if to_end and xi >= n:
            break
        if reg[R_RESP_N] + 64 > resp.shape[0]:
            return xi, worked, True, limit
        kx = ev[xi]["exch_ts"] - entry if xi < n else INT64_MAX
        arrival = reg[R_NEXT_ARRIVAL]
        market_first = xi < must or reg[R_MARKET_FIRST] == 1  # a tie goes to the market event
        if arrival < INT64_MAX and (arrival - entry < kx or (arrival - entry == kx and not market_first)):
            if arrival - entry >= limit:
                break
            _process_arrivals(
                reg, freg, resp, respf, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, arrival
            )
        elif kx < limit or xi < must:
            exch = ev[xi]["exch_ts"]
            kind = ev[xi]["kind"]
            side = ev[xi]["side"]
            price = ev[xi]["price"]
            qty = ev[xi]["size"]
            oid = ev[xi]["order_id"]
            ix = price - bst[core.BASE]
            in_range = 0 <= ix < bst[core.N]
            old = 0
            if in_range:
                old = bid[ix] if side == BID else ask[ix]
            tape_seq = -1
            if queue == FIFO and kind >= ADD and kind <= EXECUTE:
                if kind == ADD:
                    reg[R_SEQ] += 1
                    orders_seq[oid] = reg[R_SEQ]
                    orders_left[oid] = qty
                else:
                    tape_seq = _add_seq(orders_seq, oid)
                    if oid in orders_left:
                        left = orders_left[oid] - qty
                        if left <= 0 or kind == DELETE:
                            del orders_left[oid]
                            del orders_seq[oid]
                        else:
                            orders_left[oid] = left
            # what this event could do to our orders (known before it changes the book)
            mine = in_range and (mine_bid[ix] > 0 if side == BID else mine_ask[ix] > 0)
            through = (side == BID and reg[R_OWN_BID] > price) or (side == ASK and reg[R_OWN_ASK] < price)
            crosses_own = (side == ASK and price <= reg[R_OWN_BID]) or (
                side == BID and price >= reg[R_OWN_ASK]
            )
            if mine or through or crosses_own:
                reg[R_MID2] = _mid2(bst)  # the fair value a fill by this event is measured against
            core.apply_event(bid, ask, bst, kind, side, price, qty)
            new = old
            if in_range:
                new = bid[ix] if side == BID else ask[ix]
            # liquidity we took stays used until the tape shows that much leaving the level
            if reg[R_N_TAKEN] > 0 and in_range and new < old:
                taken = taken_bid if side == BID else taken_ask
                if taken[ix] > 0:
                    taken[ix] = max(taken[ix] - (old - new), 0)
                    if taken[ix] == 0 or new == 0:
                        taken[ix] = 0
                        reg[R_N_TAKEN] -= 1
            is_trade = kind == TRADE or kind == EXECUTE
            fifo_change = kind == EXECUTE or (not is_trade and kind != SET and new < old)
            if queue == FIFO and mine and fifo_change:
                _fifo_on_l3(
                    reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, kind, side, price, qty, tape_seq,
                    exch,
                )
            if is_trade:
                if queue != FIFO and (mine or through):
                    _queue_on_trade(
                        reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, side, price, qty, exch
                    )
                elif queue == FIFO and through:  # exact FIFO: only a trade through our price reaches us here
                    _queue_on_trade(
                        reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, side, price, 0, exch
                    )
            elif mine and (new < old or kind == SET) and (queue != FIFO or kind == SET):
                _queue_on_decrease(reg, freg, ords, side, price, old, new)
            if (kind == SET or kind == ADD) and new > old and crosses_own:
                _through_book(
                    reg, freg, resp, respf, ords, mine_bid, mine_ask, bst, side, price, new - old, exch
                )
            touch[xi, 0] = core.best_bid(bst)
            touch[xi, 1] = core.best_ask(bst)
            xi += 1
        else:
            break
        worked = True
        first = _first_undelivered(reg, resp)
        if first < limit and not to_end:
            limit = first
    return xi, worked, False, limit


@nb.njit(cache=True)
def run_segment(
    ev,
    touch,
    bid,
    ask,
    bst,
    view_bid,
    view_ask,
    view_bst,
    taken_bid,
    taken_ask,
    mine_bid,
    mine_ask,
    ords,
    reg,
    freg,
    resp,
    respf,
    orders_seq,
    orders_left,
    sp,
    loc,
    act,
    eqb,
    eqc,
):
    """Advance the simulation until a wake-up, the chunk end or a full buffer.

    Two clocks run over the same events. The exchange processes event ``i`` at its exchange time
    (book ``bid/ask/bst``, our orders, fills); the strategy sees it at its local time plus the feed
    latency (its own book ``view_*``). Everything is ordered on the strategy's clock: the exchange's
    work at exchange time ``x`` happens at ``x - entry_latency``, the last moment an order the
    strategy sends could still reach the exchange before it. So a response (made at ``x``, due at
    ``x + response_latency``) always exists before it is due, and a fill report can reach the
    strategy before the market data that shows the trade, as it can live. At equal times the
    strategy acts first, then requests arrive, then events are processed.

    Unless ``reg[R_FINAL]``, the next chunk may hold events at the exchange time of this chunk's
    last event: nothing at or after that point happens in this call (the caller feeds the next chunk,
    keeping the unprocessed tail). In compiled mode decisions and deliveries happen inside the loop
    (:func:`compiled_wake`); control returns to Python only at the chunk end, a timer or a full buffer.
    """
    n = ev.shape[0]
    si = reg[R_CURSOR]
    si0 = si
    xi = reg[R_XCURSOR]
    feed = reg[R_FEED_LAT]
    entry = reg[R_ENTRY_LAT]
    rlat = reg[R_RESP_LAT]
    final = reg[R_FINAL] == 1
    bound = INT64_MAX
    if not final:
        bound = ev[n - 1]["exch_ts"] - entry if n > 0 else -INT64_MAX
    while True:
        if si < n and reg[R_STARTED] == 0:
            reg[R_STARTED] = 1
            reg[R_NEXT_DECISION] = ev[si]["local_ts"] + feed
        kx = ev[xi]["exch_ts"] - entry if xi < n else bound
        ka = reg[R_NEXT_ARRIVAL] - entry if reg[R_NEXT_ARRIVAL] < INT64_MAX else INT64_MAX
        ls = ev[si]["local_ts"] + feed if si < n else bound
        if reg[R_CHANGED] == 0 and reg[R_NEXT_DECISION] < ls:
            # nothing changed since the last decision, so the grid times until the next change would
            # decide the same: the next decision is the first grid time at or after that change (a
            # response from the exchange's next piece of work is a possible change too)
            change = min(ls, reg[R_PENDING_WAKE], reg[R_TIMER], _first_undelivered(reg, resp))
            kxa = min(kx, ka)
            if kxa < INT64_MAX and kxa + entry + rlat < change:
                change = kxa + entry + rlat
            grid = reg[R_INTERVAL]
            if change > reg[R_NEXT_DECISION] and change < INT64_MAX:
                reg[R_NEXT_DECISION] += (change - reg[R_NEXT_DECISION] + grid - 1) // grid * grid
        wake = min(reg[R_NEXT_DECISION], reg[R_PENDING_WAKE], reg[R_TIMER], _first_undelivered(reg, resp))
        if wake < reg[R_NOW]:
            wake = reg[R_NOW]  # time never runs backwards
        # 1. the exchange's work due before the strategy wakes
        xi, worked, full, limit = _exchange_until(
            ev, touch, xi, min(wake, bound), xi, False, bid, ask, bst, taken_bid, taken_ask, mine_bid,
            mine_ask, ords, reg, freg, resp, respf, orders_seq, orders_left,
        )
        if full:
            return _stop(ev, touch, reg, si, si0, xi, view_bid, view_ask, view_bst, BUFFER_FULL)
        if worked and reg[R_CHANGED] == 0:
            continue  # the skipped decision grid depends on the exchange's next work: work it out again
        if limit < wake:
            wake = limit  # a response the exchange just made is due first
        # 2. the events the strategy sees by then (its book catches up lazily, at the wake-up)
        if wake >= bound:
            return _stop(ev, touch, reg, si, si0, xi, view_bid, view_ask, view_bst, CHUNK_END)
        seen = si
        while seen < n and ev[seen]["local_ts"] + feed <= wake:
            seen += 1
        if xi < seen:
            # an event seen at its exchange time (no entry latency) is processed before the strategy
            # acts on it: cause before effect
            xi, worked, full, limit = _exchange_until(
                ev, touch, xi, wake, seen, False, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask,
                ords, reg, freg, resp, respf, orders_seq, orders_left,
            )
            if full:
                return _stop(ev, touch, reg, si, si0, xi, view_bid, view_ask, view_bst, BUFFER_FULL)
        if seen > si:
            si = seen
            reg[R_CHANGED] = 1
        if si == n and final:
            # the strategy has seen the last event: the exchange finishes its work, nothing wakes after
            xi, worked, full, limit = _exchange_until(
                ev, touch, xi, INT64_MAX, n, True, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask,
                ords, reg, freg, resp, respf, orders_seq, orders_left,
            )
            code = BUFFER_FULL if full else CHUNK_END
            return _stop(ev, touch, reg, si, si0, xi, view_bid, view_ask, view_bst, code)
        # 3. the strategy wakes
        reg[R_NOW] = wake
        if reg[R_MODE] == COMPILED_MODE and reg[R_TIMER] > wake:
            _view_touch(touch, reg, si)
            if not compiled_wake(reg, freg, sp, ords, loc, resp, act, eqb, eqc):
                return _stop(ev, touch, reg, si, si0, xi, view_bid, view_ask, view_bst, BUFFER_FULL)
            continue
        return _stop(ev, touch, reg, si, si0, xi, view_bid, view_ask, view_bst, WAKE)


# -- compiled quoting ------------------------------------------------------------------------------
# The built-in quoting rule and the order manager's reconcile step, compiled, so that a backtest of
# a built-in strategy never leaves the loop. They mirror quotewise.quoting.builtin (SkewStrategy,
# SymmetricStrategy) and quotewise.execution.order_manager exactly; tests/sim/test_compiled.py runs
# both paths on the same data and requires identical fills, orders and equity.

# Strategy parameters (sp, float64); see quotewise.quoting.compiled for how a strategy maps here
SP_HS_TICKS = 0  # half-spread: constant part, in ticks
SP_HS_FRAC = 1  # half-spread: part proportional to the mid (e.g. 5bp -> 5e-4)
SP_SKEW = 2  # centre shift at max inventory, in half-spreads (0: symmetric)
SP_MAX_LOTS = 3  # |position| (lots) from which the side that adds is not quoted (inf: never)
SP_SIZE = 4  # order size, lots
SP_IMPROVE = 5  # 1: quotes may sit inside the spread; 0: never better than the touch
SP_POST_ONLY = 6
SP_FEE = 7  # the fee of the fee floor (components.floor_fee)
SP_LEN = 8

# Local order view (loc[slot, field]): what the strategy side knows from responses
L_STATUS = 0  # LS_NONE, LS_PENDING_NEW, LS_WORKING, LS_PENDING_CANCEL
L_LEFT = 1
L_CANCEL_OUT = 2  # a cancel was sent and its answer has not arrived
L_TERMINAL = 3  # the order is finished as far as the strategy knows
LOC_FIELDS = 4
LS_NONE = 0
LS_PENDING_NEW = 1
LS_WORKING = 2
LS_PENDING_CANCEL = 3

# Action buffer (act[k, field]): orders sent and cancels requested, for orders.parquet
A_TS = 0
A_ORDER_ID = 1
A_SIDE = 2
A_PRICE = 3
A_SIZE = 4
A_KIND = 5
A_STEP = 6
A_LEFT = 7  # what the strategy side believed was left when it acted
ACT_FIELDS = 8
ACT_SUBMIT = 1
ACT_CANCEL = 2

# Equity buffer (eqb[k, field], int64), one row per decision; cash goes to eqc[k] (float64)
Q_TS = 0
Q_POS = 1
Q_BID = 2
Q_ASK = 3
Q_QUOTE_BID = 4
Q_QUOTE_ASK = 5
EQ_FIELDS = 6


@nb.njit(cache=True)
def deliver_response(reg, ords, loc, resp, k):
    """One response reaches the strategy side: update the local order view and position."""
    slot = resp[k, P_SLOT]
    kind = resp[k, P_KIND]
    live = loc[slot, L_TERMINAL] == 0
    if kind == K_ACCEPTED:
        if live and loc[slot, L_STATUS] == LS_PENDING_NEW:
            loc[slot, L_STATUS] = LS_WORKING
    elif kind == K_REJECTED or kind == K_CANCELLED:
        loc[slot, L_STATUS] = LS_NONE
        loc[slot, L_TERMINAL] = 1
        if kind == K_CANCELLED:
            loc[slot, L_CANCEL_OUT] = 0
    elif kind == K_FILL:
        if live:
            loc[slot, L_LEFT] = resp[k, P_LEFT]
            reg[R_LOCAL_POS] += ords[slot, O_SIDE] * resp[k, P_QTY]
            if resp[k, P_LEFT] <= 0:
                loc[slot, L_STATUS] = LS_NONE
                loc[slot, L_TERMINAL] = 1
    elif kind == K_CANCEL_REJECTED:
        loc[slot, L_CANCEL_OUT] = 0
        if live and loc[slot, L_LEFT] > 0:
            loc[slot, L_STATUS] = LS_WORKING
    if loc[slot, L_TERMINAL] == 1 and loc[slot, L_CANCEL_OUT] == 0:
        ords[slot, O_STATE] = S_FREE


@nb.njit(cache=True)
def place_order(reg, ords, loc, act, side, price, size, post_only, reject_reason):
    """Send an order now (both modes): it reaches the exchange after the entry latency."""
    slot = -1
    for s in range(min(reg[R_SLOTS] + 1, ords.shape[0])):
        if ords[s, O_STATE] == S_FREE:
            slot = s
            break
    if slot < 0:
        return -1
    if slot >= reg[R_SLOTS]:
        reg[R_SLOTS] = slot + 1
    ords[slot, :] = 0
    oid = reg[R_NEXT_ID]
    reg[R_NEXT_ID] += 1
    ords[slot, O_ID] = oid
    ords[slot, O_SIDE] = side
    ords[slot, O_PRICE] = price
    ords[slot, O_QTY] = size
    ords[slot, O_LEFT] = size
    ords[slot, O_STATE] = S_INFLIGHT
    ords[slot, O_ARRIVE] = reg[R_NOW] + reg[R_ENTRY_LAT]
    ords[slot, O_CANCEL_AT] = -1
    ords[slot, O_POST_ONLY] = post_only
    ords[slot, O_REJECT] = reject_reason
    if ords[slot, O_ARRIVE] < reg[R_NEXT_ARRIVAL]:
        reg[R_NEXT_ARRIVAL] = ords[slot, O_ARRIVE]
    loc[slot, L_STATUS] = LS_PENDING_NEW
    loc[slot, L_LEFT] = size
    loc[slot, L_CANCEL_OUT] = 0
    loc[slot, L_TERMINAL] = 0
    _act(reg, act, oid, side, price, size, size, ACT_SUBMIT)
    return slot


@nb.njit(cache=True)
def cancel_order(reg, ords, loc, act, slot):
    """Request a cancel (both modes); False when one is already on its way."""
    if loc[slot, L_CANCEL_OUT] == 1:
        return False
    ords[slot, O_CANCEL_AT] = reg[R_NOW] + reg[R_ENTRY_LAT]
    if ords[slot, O_CANCEL_AT] < reg[R_NEXT_ARRIVAL]:
        reg[R_NEXT_ARRIVAL] = ords[slot, O_CANCEL_AT]
    loc[slot, L_CANCEL_OUT] = 1
    if loc[slot, L_TERMINAL] == 0:
        loc[slot, L_STATUS] = LS_PENDING_CANCEL
    _act(
        reg,
        act,
        ords[slot, O_ID],
        ords[slot, O_SIDE],
        ords[slot, O_PRICE],
        ords[slot, O_QTY],
        loc[slot, L_LEFT],
        ACT_CANCEL,
    )
    return True


@nb.njit(cache=True)
def _act(reg, act, oid, side, price, size, left, kind):
    k = reg[R_ACT_N]
    act[k, A_TS] = reg[R_NOW]
    act[k, A_ORDER_ID] = oid
    act[k, A_SIDE] = side
    act[k, A_PRICE] = price
    act[k, A_SIZE] = size
    act[k, A_KIND] = kind
    act[k, A_LEFT] = left
    act[k, A_STEP] = reg[R_STEP]
    reg[R_STEP] += 1
    reg[R_ACT_N] = k + 1


@nb.njit(cache=True)
def _reconcile_side(reg, ords, loc, act, side, want, price, size, post_only):
    """Keep the first live order matching the wanted quote, cancel the others, place if none kept."""
    kept = False
    for s in range(reg[R_SLOTS]):
        st = loc[s, L_STATUS]
        if (
            ords[s, O_STATE] == S_FREE
            or ords[s, O_SIDE] != side
            or (st != LS_PENDING_NEW and st != LS_WORKING)
        ):
            continue
        if want and not kept and ords[s, O_PRICE] == price and ords[s, O_QTY] == size:
            kept = True
        else:
            cancel_order(reg, ords, loc, act, s)
    return want and not kept


@nb.njit(cache=True)
def quote_prices(sp, bb, ba, q):
    """The built-in quoting rule (QuotingStrategy.quotes for symmetric/skew, one level a side): from
    the touch (ticks, -1 for an empty side) and the position (lots), whether to quote each side and
    at what price. The backtest's compiled decisions and the live maker's fast path both use it.

    The arithmetic follows the Python pipeline operation for operation (same rounding guards, same
    order of floating-point operations), so both paths quote the same prices.
    """
    want_bid = False
    want_ask = False
    bid_p = np.int64(0)
    ask_p = np.int64(0)
    if bb >= 0 and ba >= 0:
        mid = (bb + ba) / 2.0
        hs = sp[SP_HS_TICKS] + sp[SP_HS_FRAC] * mid
        max_q = sp[SP_MAX_LOTS]
        centre = mid + -sp[SP_SKEW] * 1.0 * hs * q / max_q
        bid_p = np.int64(np.floor(centre - hs + 1e-9))
        ask_p = np.int64(np.ceil(centre + hs - 1e-9))
        if sp[SP_IMPROVE] > 0:
            bid_p = min(bid_p, ba - 1)
            ask_p = max(ask_p, bb + 1)
        else:
            bid_p = min(bid_p, bb)
            ask_p = max(ask_p, ba)
        stop = abs(q) / max_q >= 1.0
        want_bid = not (stop and q > 0)
        want_ask = not (stop and q < 0)
        if want_bid and want_ask:
            bid_p, ask_p = apply_fee_floor(bid_p, ask_p, sp[SP_FEE])
        want_bid = want_bid and bid_p >= 1
    return want_bid, want_ask, bid_p, ask_p


@nb.njit(cache=True)
def apply_and_quote(bid, ask, st, events, sp, q):
    """Apply ``events`` to a book, then :func:`quote_prices` on its touch; returns the decision and
    that touch. The live maker's update and decision in one compiled call (on an idle engine each
    compiled call costs tens of microseconds of cold caches, so one call, not two)."""
    core.apply_events(bid, ask, st, events)
    bb = core.best_bid(st)
    ba = core.best_ask(st)
    want_bid, want_ask, bid_p, ask_p = quote_prices(sp, bb, ba, q)
    return want_bid, want_ask, bid_p, ask_p, bb, ba


@nb.njit(cache=True)
def _decide(reg, sp, ords, loc, act):
    """The built-in quoting rule on the strategy's view of the touch, then the reconcile step."""
    want_bid, want_ask, bid_p, ask_p = quote_prices(
        sp, reg[R_VIEW_BID], reg[R_VIEW_ASK], float(reg[R_LOCAL_POS])
    )
    size = np.int64(sp[SP_SIZE])
    post_only = np.int64(sp[SP_POST_ONLY])
    place_bid = _reconcile_side(reg, ords, loc, act, BID, want_bid, bid_p, size, post_only)
    place_ask = _reconcile_side(reg, ords, loc, act, ASK, want_ask, ask_p, size, post_only)
    if place_bid:
        place_order(reg, ords, loc, act, BID, bid_p, size, post_only, REASON_NONE)
    if place_ask:
        place_order(reg, ords, loc, act, ASK, ask_p, size, post_only, REASON_NONE)


@nb.njit(cache=True)
def best_working(reg, ords, loc, side):
    best = -1
    for s in range(reg[R_SLOTS]):
        if ords[s, O_STATE] != S_FREE and ords[s, O_SIDE] == side and loc[s, L_STATUS] == LS_WORKING:
            p = ords[s, O_PRICE]
            if best < 0 or (side == BID and p > best) or (side == ASK and p < best):
                best = p
    return best


@nb.njit(cache=True)
def compiled_wake(reg, freg, sp, ords, loc, resp, act, eqb, eqc):
    """Deliver due responses, then decide if a decision is due. False: a buffer needs draining."""
    now = reg[R_NOW]
    k = reg[R_RESP_DONE]
    while k < reg[R_RESP_N] and resp[k, P_DELIVER] <= now:
        deliver_response(reg, ords, loc, resp, k)
        reg[R_CHANGED] = 1
        resp[k, P_AT] = reg[R_STEP]
        reg[R_STEP] += 1
        k += 1
    reg[R_RESP_DONE] = k
    if now < reg[R_NEXT_DECISION]:
        return True
    if reg[R_ACT_N] + 2 * ords.shape[0] + 2 > act.shape[0] or reg[R_EQ_N] + 1 > eqb.shape[0]:
        return False
    _decide(reg, sp, ords, loc, act)
    e = reg[R_EQ_N]
    eqb[e, Q_TS] = now
    eqb[e, Q_POS] = reg[R_POS]
    eqc[e] = freg[F_CASH]
    eqb[e, Q_BID] = reg[R_VIEW_BID]
    eqb[e, Q_ASK] = reg[R_VIEW_ASK]
    eqb[e, Q_QUOTE_BID] = best_working(reg, ords, loc, BID)
    eqb[e, Q_QUOTE_ASK] = best_working(reg, ords, loc, ASK)
    reg[R_EQ_N] = e + 1
    reg[R_NEXT_DECISION] = now + reg[R_INTERVAL]
    reg[R_CHANGED] = 0
    return True
