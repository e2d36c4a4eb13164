"""The event loop of the simulated exchange: one compiled pass over market events with our orders in it.

The rules implemented here and in :mod:`quotewise.sim.matching` and :mod:`quotewise.sim.queues` are
stated one by one in ``docs/fill-rules.md``; each has a test in ``tests/sim``. In short:

* Two clocks run over the same events. The exchange processes event ``i`` at its exchange time (its
  book, our orders, fills); the strategy sees it at its local time plus the feed latency (its own
  book). Everything is ordered on the strategy's clock: the exchange's work at exchange time ``x``
  happens at ``x - entry_latency``, the last moment an order the strategy sends could still reach
  the exchange before it. Readers guarantee that the exchange time never decreases and never
  exceeds the local time, which makes one pass exact.
* The strategy decides on a fixed grid of local times; the loop returns to Python at each decision
  time and when a response reaches the strategy, ``response_latency`` after the exchange made it
  (compiled mode: decisions happen inside the loop, :mod:`quotewise.sim.decide`).
* Our orders are virtual: they never change the replayed book. Liquidity is used once: a trade
  print fills the orders ahead of ours first, and what we take as a taker stays used until the tape
  shows that much leaving the level.

Books are ``Book`` tuples of :mod:`quotewise.book.core` arrays; ``Footprint`` holds what we did to the
exchange's book (liquidity taken, our resting orders per level). All prices are integer ticks,
sizes integer lots, times int64 ns.
"""

from collections import namedtuple

import numba as nb

from quotewise.book import core, window
from quotewise.model.events import ADD, ASK, BID, DELETE, EXECUTE, SET
from quotewise.sim import decide, latency, queues, tape
from quotewise.sim.matching import RESPONSE_HEADROOM, mid2, process_arrivals, resting_span, through_book
from quotewise.sim.records import (
    BUFFER_FULL,
    CHUNK_END,
    COMPILED_MODE,
    FIFO,
    INT64_MAX,
    PYTHON_MODE,
    R_CHANGED,
    R_CURSOR,
    R_EVENTS,
    R_FEED_LAT,
    R_FINAL,
    R_INTERVAL,
    R_LAST_EXCH,
    R_LAST_LOCAL,
    R_MARKET_FIRST,
    R_MID2,
    R_MODE,
    R_N_TAKEN,
    R_NEXT_ARRIVAL,
    R_NEXT_DECISION,
    R_NOW,
    R_OWN_ASK,
    R_OWN_BID,
    R_PENDING_WAKE,
    R_QUEUE,
    R_RESP_DONE,
    R_RESP_N,
    R_SEQ,
    R_STARTED,
    R_TIMER,
    R_VIEW_ASK,
    R_VIEW_BID,
    R_VIEW_DONE,
    R_XCURSOR,
    WAKE,
)

Book = namedtuple("Book", ["bid", "ask", "st"])
Footprint = namedtuple("Footprint", ["taken_bid", "taken_ask", "mine_bid", "mine_ask"])


@nb.njit(cache=True, inline="always")
def _view_touch(touch, reg, si):
    """The touch the strategy sees once it has seen the events before ``si`` (kept if none in this chunk)."""
    if si > 0:
        reg[R_VIEW_BID] = touch[si - 1, 0]
        reg[R_VIEW_ASK] = touch[si - 1, 1]


@nb.njit(cache=True, _nrt=False)  # see quotewise.book.core.apply_events
def _catch_up_view(ev, reg, view):
    """Apply the events the strategy has seen (up to its cursor) to its local book (Python mode only:
    compiled quoting reads the touch alone, which the exchange records as it goes)."""
    j = reg[R_VIEW_DONE]
    si = reg[R_CURSOR]
    while j < si:
        e = ev[j]
        core.apply_event(view.bid, view.ask, view.st, e["kind"], e["side"], e["price"], e["size"])
        j += 1
    reg[R_VIEW_DONE] = j


@nb.njit(cache=True)
def _stop(ev, touch, reg, si, si0, xi, view, code):
    """Leave the loop: record both cursors and bring the strategy's view up to its cursor."""
    reg[R_CURSOR] = si
    reg[R_XCURSOR] = xi
    if si > si0:
        reg[R_EVENTS] += si - si0
        reg[R_LAST_EXCH] = ev[si - 1]["exch_ts"]
        reg[R_LAST_LOCAL] = ev[si - 1]["local_ts"] + reg[R_FEED_LAT]
    _view_touch(touch, reg, si)
    if reg[R_MODE] == PYTHON_MODE:
        _catch_up_view(ev, reg, view)
    else:
        reg[R_VIEW_DONE] = si
    return code


@nb.njit(cache=True, inline="always")
def first_undelivered(reg, resp):
    """Delivery time of the first response in the buffer not yet delivered (INT64_MAX when none)."""
    done = reg[R_RESP_DONE]
    return resp[done]["deliver"] if reg[R_RESP_N] > done else INT64_MAX


@nb.njit(cache=True, _nrt=False)  # see run_segment
def _exchange_until(ev, touch, xi, limit, must, to_end, xb, fp, ords, reg, freg, resp, l3, far):
    """The exchange's work (request arrivals, then events) due before ``limit`` on the strategy's clock,
    and every event before index ``must`` (events the strategy has seen are processed before it acts).

    A response it makes may be due before ``limit``: the limit comes down to that delivery time
    (unless ``to_end``: the data has ended and the strategy has seen it all, so everything left is
    done). After each event the exchange's touch is written to ``touch`` (the strategy's view of the
    touch once it has seen that event). Returns the new exchange cursor, whether anything was done,
    whether the response buffer must be drained first, and the limit as it came down.

    The common case (an event at no level of ours) is written out here rather than called: a call
    per event passing a dozen arrays costs as much as the rest of the work.
    """
    n = ev.shape[0]
    entry = latency.earliest_entry(reg)
    bid, ask, bst = xb
    taken_bid, taken_ask, mine_bid, mine_ask = fp
    fifo = reg[R_QUEUE] == FIFO
    worked = False
    while True:
        if to_end and xi >= n:
            break
        if reg[R_RESP_N] + RESPONSE_HEADROOM > resp.shape[0] or (fifo and tape.is_full(l3, reg)):
            return xi, worked, True, limit
        kx = ev[xi]["exch_ts"] - entry if xi < n else INT64_MAX
        arrival = reg[R_NEXT_ARRIVAL]
        market_first = xi < must or reg[R_MARKET_FIRST] == 1  # a tie goes to the market event
        if arrival < INT64_MAX and (arrival - entry < kx or (arrival - entry == kx and not market_first)):
            if arrival - entry >= limit:
                break
            process_arrivals(
                reg, freg, resp, ords, bid, ask, bst, taken_bid, taken_ask, mine_bid, mine_ask, arrival, far
            )
        elif kx < limit or xi < must:
            exch = ev[xi]["exch_ts"]
            kind = ev[xi]["kind"]
            side = ev[xi]["side"]
            price = ev[xi]["price"]
            qty = ev[xi]["size"]
            ix = price - bst[core.BASE]
            # nested, not joined by `and`: numba drops a branch on `far is not None` alone when far is
            # None, so a plain book compiles to the loop it had before windows (measured: same speed)
            if far is not None:  # noqa: SIM102
                if ix < bst[core.WLO] or ix >= bst[core.WHI]:
                    done = window.handle_far(bid, ask, bst, far, kind, side, ix, qty)
                    if done == window.LOG_FULL:
                        return xi, worked, True, limit
                    if done == window.LOGGED:  # a far level: the touch and our orders are as they were
                        touch[xi, 0] = core.best_bid(bst)
                        touch[xi, 1] = core.best_ask(bst)
                        xi += 1
                        worked = True
                        continue
            in_range = 0 <= ix < bst[core.N]
            old = 0
            if in_range:
                old = bid[ix] if side == BID else ask[ix]
            tape_seq = -1
            if fifo and kind >= ADD and kind <= EXECUTE:
                # FIFO keeps each tape order's arrival sequence and size (the order a change is about is
                # ahead of ours when it arrived first; one never seen added counts as oldest, -1)
                oid = ev[xi]["order_id"]
                if kind == ADD:
                    reg[R_SEQ] += 1
                    tape.add(l3, reg, oid, reg[R_SEQ], qty)
                else:
                    tape_seq = tape.change(l3, oid, qty, kind == DELETE)
            # what this event could do to our orders (known before it changes the book)
            mine = in_range and (mine_bid[ix] > 0 if side == BID else mine_ask[ix] > 0)
            through = (side == BID and reg[R_OWN_BID] > price) or (side == ASK and reg[R_OWN_ASK] < price)
            crosses_own = (side == ASK and price <= reg[R_OWN_BID]) or (
                side == BID and price >= reg[R_OWN_ASK]
            )
            if mine or through or crosses_own:
                reg[R_MID2] = mid2(bst)  # the fair value a fill by this event is measured against
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
            todo = queues.handlers(reg[R_QUEUE], kind, mine, through, old, new) if mine or through else 0
            if todo & queues.ON_L3:
                queues.on_l3_change(
                    reg, freg, resp, ords, mine_bid, mine_ask, bst, kind, side, price, qty, tape_seq, exch
                )
            if todo & (queues.ON_TRADE | queues.ON_THROUGH):
                traded = qty if todo & queues.ON_TRADE else 0
                queues.on_trade(reg, freg, resp, ords, mine_bid, mine_ask, bst, side, price, traded, exch)
            if todo & queues.ON_DECREASE:
                queues.on_decrease(reg, freg, ords, side, price, old, new)
            if (kind == SET or kind == ADD) and new > old and crosses_own:
                through_book(reg, freg, resp, ords, mine_bid, mine_ask, bst, side, price, new - old, exch)
            if far is not None:  # noqa: SIM102 (pruned for a plain book, as above)
                if bst[core.BB] < bst[core.WLO] or bst[core.BA] >= bst[core.WHI]:
                    window.check_sides(bid, ask, bst, far)  # a side left empty in the window
            touch[xi, 0] = core.best_bid(bst)
            touch[xi, 1] = core.best_ask(bst)
            xi += 1
        else:
            break
        worked = True
        first = first_undelivered(reg, resp)
        if first < limit and not to_end:
            limit = first
    return xi, worked, False, limit


@nb.njit(cache=True, _nrt=False)
def run_segment(
    ev,
    touch,
    x_bid,
    x_ask,
    x_st,
    v_bid,
    v_ask,
    v_st,
    taken_bid,
    taken_ask,
    mine_bid,
    mine_ask,
    ords,
    local,
    reg,
    freg,
    resp,
    act,
    samples,
    l3,
    far,
    qp,
    sig_t,
    sig_p,
):
    """Advance the simulation until a wake-up, the chunk end or a full buffer (see the module
    docstring): ``x_*`` the exchange's book, ``v_*`` the strategy's, ``taken_*`` and ``mine_*`` our
    footprint in the exchange's book (:class:`Book` and :class:`Footprint`, passed as arrays from
    Python, where a tuple argument costs its typing on every call); ``local`` the strategy side's
    view of our orders, ``far`` the exchange book's far log when it is windowed (None: a plain book;
    :mod:`quotewise.book.window`), ``qp`` the quoting rule's parameters and ``sig_t``/``sig_p`` a model's
    predictions with their sample times (compiled mode, :mod:`quotewise.intelligence.signal`); ``act`` and
    ``samples`` what the compiled decider did and saw.

    Unless ``reg[R_FINAL]``, the next chunk may hold events at the exchange time of this chunk's
    last event: nothing at or after that point happens in this call (the caller feeds the next chunk,
    keeping the unprocessed tail). In compiled mode decisions and deliveries happen inside the loop
    (:func:`quotewise.sim.decide.compiled_wake`); control returns to Python only at the chunk end, a
    timer or a full buffer.

    Compiled without reference counting (``_nrt=False``, as :func:`quotewise.book.core.apply_events`):
    the inlined book and queue functions counted references to their arrays, atomically, on every
    event (a third of the loop). Nothing here may allocate, nor take a typed container.
    """
    n = ev.shape[0]
    xb = Book(x_bid, x_ask, x_st)
    vb = Book(v_bid, v_ask, v_st)
    fp = Footprint(taken_bid, taken_ask, mine_bid, mine_ask)
    si = reg[R_CURSOR]
    si0 = si
    xi = reg[R_XCURSOR]
    feed = reg[R_FEED_LAT]
    entry = latency.earliest_entry(reg)
    final = reg[R_FINAL] == 1
    bound = INT64_MAX
    if not final:
        bound = ev[n - 1]["exch_ts"] - entry if n > 0 else -INT64_MAX
    while True:
        if far is not None:  # noqa: SIM102 (a windowed book follows the touch; pruned for a plain one)
            if window.drifted(x_st):
                lo, hi = resting_span(reg, ords)
                window.recentre(x_bid, x_ask, x_st, far, lo - x_st[core.BASE], hi - x_st[core.BASE])
        if si < n and reg[R_STARTED] == 0:
            reg[R_STARTED] = 1
            reg[R_NEXT_DECISION] = ev[si]["local_ts"] + feed
        kx = ev[xi]["exch_ts"] - entry if xi < n else bound
        ka = reg[R_NEXT_ARRIVAL] - entry if reg[R_NEXT_ARRIVAL] < INT64_MAX else INT64_MAX
        ls = ev[si]["local_ts"] + feed if si < n else bound
        if reg[R_CHANGED] == 0 and reg[R_NEXT_DECISION] < ls:
            # nothing changed since the last decision, so the grid times until the next change would
            # decide the same: the next decision is the first grid time at or after that change (a
            # response from the exchange's next piece of work, or a new signal, is a possible change)
            change = min(ls, reg[R_PENDING_WAKE], reg[R_TIMER], first_undelivered(reg, resp))
            change = min(change, decide.next_signal_change(reg, sig_t, sig_p))
            kxa = min(kx, ka)
            if kxa < INT64_MAX and kxa + entry + latency.response_delay(reg, kxa + entry) < change:
                change = kxa + entry + latency.response_delay(reg, kxa + entry)
            grid = reg[R_INTERVAL]
            if change > reg[R_NEXT_DECISION] and change < INT64_MAX:
                reg[R_NEXT_DECISION] += (change - reg[R_NEXT_DECISION] + grid - 1) // grid * grid
        wake = min(reg[R_NEXT_DECISION], reg[R_PENDING_WAKE], reg[R_TIMER], first_undelivered(reg, resp))
        if wake < reg[R_NOW]:
            wake = reg[R_NOW]  # time never runs backwards
        # 1. the exchange's work due before the strategy wakes
        xi, worked, full, limit = _exchange_until(
            ev, touch, xi, min(wake, bound), xi, False, xb, fp, ords, reg, freg, resp, l3, far
        )
        if full:
            return _stop(ev, touch, reg, si, si0, xi, vb, BUFFER_FULL)
        if worked and reg[R_CHANGED] == 0:
            continue  # the skipped decision grid depends on the exchange's next work: work it out again
        if limit < wake:
            wake = limit  # a response the exchange just made is due first
        # 2. the events the strategy sees by then (its book catches up lazily, at the wake-up)
        if wake >= bound:
            return _stop(ev, touch, reg, si, si0, xi, vb, CHUNK_END)
        seen = si
        while seen < n and ev[seen]["local_ts"] + feed <= wake:
            seen += 1
        if xi < seen:
            # an event seen at its exchange time (no entry latency) is processed before the strategy
            # acts on it: cause before effect
            xi, worked, full, limit = _exchange_until(
                ev, touch, xi, wake, seen, False, xb, fp, ords, reg, freg, resp, l3, far
            )
            if full:
                return _stop(ev, touch, reg, si, si0, xi, vb, BUFFER_FULL)
        if seen > si:
            si = seen
            reg[R_CHANGED] = 1
        if si == n and final:
            # the strategy has seen the last event: the exchange finishes its work, nothing wakes after
            xi, worked, full, limit = _exchange_until(
                ev, touch, xi, INT64_MAX, n, True, xb, fp, ords, reg, freg, resp, l3, far
            )
            code = BUFFER_FULL if full else CHUNK_END
            return _stop(ev, touch, reg, si, si0, xi, vb, code)
        # 3. the strategy wakes
        reg[R_NOW] = wake
        if reg[R_MODE] == COMPILED_MODE and reg[R_TIMER] > wake:
            _view_touch(touch, reg, si)
            if not decide.compiled_wake(reg, freg, qp, ords, local, resp, act, samples, sig_t, sig_p):
                return _stop(ev, touch, reg, si, si0, xi, vb, BUFFER_FULL)
            continue
        return _stop(ev, touch, reg, si, si0, xi, vb, WAKE)
