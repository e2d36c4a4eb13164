"""The hardware's ceiling on the same events: a plain numba loop that keeps a dense L2 book and runs a
toy market maker (no latency, no queue model, no outputs).

It is what this machine allows for the work every engine must do per event (decode, book update,
best price), printed beside both engines so that a speed figure says how far it is from the machine's
own limit, not only from another engine.
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np

from quotewise.model.events import ASK, BID, CLEAR, SET, TRADE

STEP_NS = 100_000_000


@nb.njit(cache=True)
def _toy_maker(ev, bid, ask, lo, step_ns, half_spread):
    """Replay ``ev`` into the dense, empty book ``bid``/``ask`` over ticks ``lo..``; every ``step_ns``
    quote one bid and one ask ``half_spread`` ticks around the mid; a trade at or through a quote fills
    it whole."""
    n = bid.shape[0]
    bb, ba = -1, n
    low_bid, high_ask = n, -1  # the range ever occupied: a clear zeroes only that
    my_bid, my_ask = -1, n
    position = 0
    fills = 0
    next_quote = ev[0]["local_ts"] if ev.shape[0] else 0
    for k in range(ev.shape[0]):
        kind, side, i, qty = ev[k]["kind"], ev[k]["side"], ev[k]["price"] - lo, ev[k]["size"]
        if kind == SET and 0 <= i < n:
            if side == BID:
                bid[i] = qty
                low_bid = min(low_bid, i)
                if qty > 0 and i > bb:
                    bb = i
                while bb >= low_bid and bid[bb] == 0:
                    bb -= 1
                if bb < low_bid:
                    bb = -1
            else:
                ask[i] = qty
                high_ask = max(high_ask, i)
                if qty > 0 and i < ba:
                    ba = i
                while ba <= high_ask and ask[ba] == 0:
                    ba += 1
                if ba > high_ask:
                    ba = n
        elif kind == TRADE:
            if side == BID and i <= my_bid:
                position += 1
                fills += 1
                my_bid = -1
            elif side == ASK and i >= my_ask:
                position -= 1
                fills += 1
                my_ask = n
        elif kind == CLEAR:
            if side >= 0:
                bid[low_bid : bb + 1] = 0
                bb = -1
            if side <= 0:
                ask[ba : high_ask + 1] = 0
                ba = n
        if ev[k]["local_ts"] >= next_quote and bb >= 0 and ba < n:
            centre = (bb + ba) // 2 - position
            my_bid = min(centre - half_spread, bb)
            my_ask = max(centre + half_spread, ba)
            while next_quote <= ev[k]["local_ts"]:
                next_quote += step_ns
    return fills


def ceiling(chunks: list[np.ndarray], lo: int, hi: int, runs: int = 3) -> dict:
    """Events per second of the toy loop over the concatenated chunks (median of ``runs``, JIT excluded)."""
    ev = np.concatenate(chunks)
    n = int(hi - lo + 1)
    _toy_maker(ev[:1000], np.zeros(n, np.int64), np.zeros(n, np.int64), lo, STEP_NS, 1)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        # numpy's zeros (pages mapped on first touch, as the engines' books are), not numba's (a memset)
        _toy_maker(ev, np.zeros(n, np.int64), np.zeros(n, np.int64), lo, STEP_NS, 1)
        times.append(time.perf_counter() - t0)
    seconds = float(np.median(times))
    return {"seconds": seconds, "events_per_second": len(ev) / seconds}
