"""The simulated exchange's state: record types used by name, and its registers (internal to ``sim``).

What leaves the simulator (responses, the orders the compiled decider sent, equity samples) is a
structured numpy record read by field name (``RESPONSE_DTYPE``, ``ACTION_DTYPE``, ``SAMPLE_DTYPE``);
so is our order as the exchange holds it (``ORDER_DTYPE``). The scalar state of a run lives in two
small arrays, ``reg`` (int64) and ``freg`` (float64), indexed by the ``R_*`` and ``F_*`` constants
below: compiled functions take them as arguments, and only modules of ``quotewise.sim`` index them
(:class:`quotewise.sim.exchange.SimExchange` is the Python face that names what they hold).
"""

import numpy as np

INT64_MAX = np.iinfo(np.int64).max

# Queue models (reg[R_QUEUE]), dispatched by quotewise.sim.queues
FIFO = 0
RISK_AVERSE = 1
PROBABILISTIC = 2

# -- integer registers (reg) ------------------------------------------------------------------------
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
R_CHANGED = 35  # 1 once the strategy's view changed (an event seen, a response delivered) since it decided
R_XCURSOR = 36  # the exchange's cursor: next event index in the current chunk it has not processed
R_FINAL = 37  # 1 when the current chunk is the last: nothing can come after it
R_VIEW_DONE = 38  # events up to here are applied to the strategy's local book (Python mode, lazily)
R_VIEW_BID = 39  # the best bid and ask the strategy has seen (ticks, -1 when a side is empty)
R_VIEW_ASK = 40
R_MARKET_FIRST = 41  # 1: an event at an order's arrival time is processed first (hftbacktest's tie rule)
R_ORDER_LOTS = 42  # order sizes are multiples of this many lots (the venue's step)
R_SIGNAL = 43  # compiled mode: predictions the strategy has reached (an index into the signal arrays)
R_TAPE_USED = 44  # FIFO: slots of the tape table filled or left as tombstones (:mod:`quotewise.sim.tape`)
REG_LEN = 45

PYTHON_MODE = 0
COMPILED_MODE = 1

# -- float registers (freg) -------------------------------------------------------------------------
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
F_FEE_PROBABILITY = (
    13  # 1: fee = rate x shares x (p (1 - p))^exponent (prediction markets); 0: rate x notional
)
F_FEE_EXPONENT = 14
F_FEE_STEP = 15  # fees are charged in whole steps of this (0: exact)
F_FEE_ROUNDING = 16  # 1: rounded up to the step (Kalshi), -1: down (Polymarket), 0: to the nearest
F_PRICE_PER_TICK = 17  # the tick size: a price in ticks times this is the price (the probability)
F_SHARES_PER_LOT = 18  # shares per lot (lot size x contract size)
FREG_LEN = 19

# Records are C-aligned (align=True): numba then loads their fields as aligned words.

# -- our orders at the exchange (one record per slot) -------------------------------------------------
ORDER_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("side", np.int64),
        ("price", np.int64),
        ("qty", np.int64),
        ("left", np.int64),
        ("ahead", np.int64),  # lots ahead of us at our price (FIFO and risk-averse)
        ("state", np.int64),  # S_*
        ("arrive", np.int64),  # exchange arrival time of the new-order request
        ("cancel_at", np.int64),  # exchange arrival time of a cancel request, -1 when none
        ("seq", np.int64),  # L3 sequence at our arrival: tape orders with a smaller sequence are ahead
        ("post_only", np.int64),
        ("reject", np.int64),  # a reason found before sending (off tick...): rejected on arrival
        ("traded", np.int64),  # traded at our price since the level last changed (not counted twice)
    ],
    align=True,
)
S_FREE = 0
S_INFLIGHT = 1
S_RESTING = 2
S_DONE = 3  # finished at the exchange; freed once the strategy side has heard

# -- what the exchange answers ------------------------------------------------------------------------
RESPONSE_DTYPE = np.dtype(
    [
        ("deliver", np.int64),  # local time at which it reaches the strategy
        ("exch_ts", np.int64),
        ("order_id", np.int64),
        ("slot", np.int64),
        ("kind", np.int64),  # K_*
        ("price", np.int64),
        ("qty", np.int64),
        ("left", np.int64),
        ("maker", np.int64),
        ("reason", np.int64),  # REASON_*
        ("pos", np.int64),  # exchange position after it, lots
        ("mid2", np.int64),  # best bid + best ask (ticks) when it was made; -1 with a side empty
        ("side", np.int64),
        ("at", np.int64),  # when the engine delivered it, as a step of reg[R_STEP] (compiled mode)
        ("fee", np.float64),
        ("cash", np.float64),  # exchange cash after it
    ],
    align=True,
)
K_ACCEPTED = 1
K_REJECTED = 2
K_FILL = 3
K_CANCELLED = 4
K_CANCEL_REJECTED = 5
RESPONSE_KINDS = {
    K_ACCEPTED: "accepted",
    K_REJECTED: "rejected",
    K_FILL: "fill",
    K_CANCELLED: "cancelled",
    K_CANCEL_REJECTED: "cancel_rejected",
}

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

# -- what the compiled decider did (orders.parquet) and its equity samples ----------------------------
ACTION_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("order_id", np.int64),
        ("side", np.int64),
        ("price", np.int64),
        ("size", np.int64),
        ("kind", np.int64),  # ACT_SUBMIT or ACT_CANCEL
        ("step", np.int64),
        ("left", np.int64),  # what the strategy side believed was left when it acted
    ],
    align=True,
)
ACT_SUBMIT = 1
ACT_CANCEL = 2

SAMPLE_DTYPE = np.dtype(
    [
        ("ts", np.int64),
        ("pos", np.int64),  # exchange position, lots
        ("bid", np.int64),  # the touch the strategy saw, ticks (-1: empty)
        ("ask", np.int64),
        ("quote_bid", np.int64),  # our best working quotes then (-1: none)
        ("quote_ask", np.int64),
        ("cash", np.float64),
    ],
    align=True,
)

# Why run_segment returned
WAKE = 1  # a decision or a response delivery is due at reg[R_NOW]
CHUNK_END = 2
BUFFER_FULL = 3
