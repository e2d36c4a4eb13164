"""Queue models: where our resting order stands in its price level's queue, and when the tape fills it.

One dispatch, :func:`handlers`, says what the model in ``reg[R_QUEUE]`` does with a market event at
a level holding our order (hftbacktest's ``QueueModel`` is the example of the seam); docs/fill-rules.md
section 4 states each model:

- ``FIFO`` (L3 data): exact; every tape order carries its arrival sequence, and only orders that
  arrived before ours are ahead of us.
- ``RISK_AVERSE`` (L2): we advance only by trades at our price; a shrinking level can only cut the
  queue ahead of us to the level's new size.
- ``PROBABILISTIC`` (L2): a shrinking level's decrease is split between the part ahead of us and the
  part behind in proportion to ``ahead**n`` and ``behind**n``.
"""

import numba as nb
import numpy as np

from quotewise.model.events import ASK, BID, EXECUTE, SET, TRADE
from quotewise.sim.matching import fill
from quotewise.sim.records import (
    F_QUEUE_POWER,
    FIFO,
    PROBABILISTIC,
    R_QUEUE,
    R_SLOTS,
    R_WHOLE_FILLS,
    S_RESTING,
)

# What a queue model does with a market event at a level of ours (the bits :func:`handlers` returns);
# the event loop calls the handlers itself: passing the arrays through one more call per event cost
# a third of the loop's time on quotes at the touch.
ON_L3 = 1  # an order-level change by a tape order: on_l3_change
ON_TRADE = 2  # a trade at our price or through it: on_trade with its size
ON_THROUGH = 4  # exact FIFO: only a trade through our price reaches us here: on_trade with no size
ON_DECREASE = 8  # the level shrank (L2 models) or was set: on_decrease


@nb.njit(cache=True, inline="always")
def handlers(model, kind, mine, through, old, new):
    """The one dispatch of the queue models: which handlers an event calls, for a level holding our
    order (``mine``) or priced through one (``through``), after the book took it (``old`` -> ``new``)."""
    fifo = model == FIFO
    is_trade = kind == TRADE or kind == EXECUTE
    todo = 0
    if fifo and mine and (kind == EXECUTE or (not is_trade and kind != SET and new < old)):
        todo |= ON_L3
    if is_trade:
        if not fifo and (mine or through):
            todo |= ON_TRADE
        elif fifo and through:
            todo |= ON_THROUGH
    elif mine and (new < old or kind == SET) and (not fifo or kind == SET):
        todo |= ON_DECREASE
    return todo


@nb.njit(cache=True)
def on_trade(reg, freg, resp, ords, mine_bid, mine_ask, bst, side, price, qty, exch_ts):
    """A trade of ``qty`` lots against resting ``side`` at ``price`` (L2 models; FIFO non-L3 prints).

    At our price the volume first consumes the queue ahead of each of our orders, then fills them.
    Priced through our order (the aggressor went past our price), it fills our order in full.
    """
    left = qty
    for s in range(reg[R_SLOTS]):
        o = ords[s]
        if o["state"] != S_RESTING or o["side"] != side:
            continue
        p = o["price"]
        if (side == BID and p > price) or (side == ASK and p < price):
            fill(reg, freg, resp, ords, mine_bid, mine_ask, bst, s, o["left"], p, True, exch_ts)
        elif p == price:
            o["traded"] += qty
            if left <= 0:
                continue
            if o["ahead"] >= left:
                o["ahead"] -= left
                left = 0
            else:
                left -= o["ahead"]
                o["ahead"] = 0
                q = o["left"] if reg[R_WHOLE_FILLS] == 1 else min(left, o["left"])
                left = max(left - q, 0)
                fill(reg, freg, resp, ords, mine_bid, mine_ask, bst, s, q, p, True, exch_ts)


@nb.njit(cache=True)
def on_decrease(reg, freg, ords, side, price, old, new):
    """A level at our price changed from ``old`` to ``new`` lots without a trade (L2 models).

    Trades already counted at this price since the level last changed are taken off the decrease,
    so a trade print followed by the depth update that shows it is not counted twice.
    """
    for s in range(reg[R_SLOTS]):
        o = ords[s]
        if o["state"] != S_RESTING or o["side"] != side or o["price"] != price:
            continue
        dec = old - new - o["traded"]
        o["traded"] = 0
        ahead = o["ahead"]
        if reg[R_QUEUE] == PROBABILISTIC and dec > 0 and ahead > 0:
            behind = max(old - ahead, 0)
            n = freg[F_QUEUE_POWER]
            fa = float(ahead) ** n
            fb = float(behind) ** n
            ahead -= np.int64(dec * fa / (fa + fb) + 0.5)
        o["ahead"] = min(max(ahead, 0), new)


@nb.njit(cache=True)
def on_l3_change(reg, freg, resp, ords, mine_bid, mine_ask, bst, kind, side, price, qty, tape_seq, exch_ts):
    """Exact FIFO: an L3 change at our price, by a tape order that arrived at ``tape_seq``."""
    for s in range(reg[R_SLOTS]):
        o = ords[s]
        if o["state"] != S_RESTING or o["side"] != side or o["price"] != price:
            continue
        if tape_seq <= o["seq"]:  # the tape order was ahead of us
            o["ahead"] -= qty
            if o["ahead"] < 0:
                over = -o["ahead"]
                o["ahead"] = 0
                if kind == EXECUTE:
                    # the queue ahead was shorter than counted: the excess reaches us
                    q = min(over, o["left"])
                    fill(reg, freg, resp, ords, mine_bid, mine_ask, bst, s, q, price, True, exch_ts)
                    qty = over - q
        elif kind == EXECUTE and qty > 0:
            # an order behind ours traded: the aggressor met our order first
            o["ahead"] = 0
            q = min(qty, o["left"])
            qty -= q
            fill(reg, freg, resp, ords, mine_bid, mine_ask, bst, s, q, price, True, exch_ts)
