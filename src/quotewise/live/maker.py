"""One market maker: a strategy quoting one market on one venue, live.

The same parts as the backtest (``Strategy``, ``RiskEngine``, ``OrderManager``) on the same data
path: market events -> the maker's own book -> strategy -> risk -> order manager -> venue; venue
responses -> store (committed) -> order manager, risk, strategy. Venue callbacks never wait on a
maker. A built-in strategy takes its turn inside the callback when the engine is idle (within the
engine-wide :class:`InlineBudget`), else on the loop's next pass, through the engine's
:class:`~quotewise.live.lane.Lane` when it has no risk engine; a Python strategy decides in the
maker's task (in a worker thread once it proves slow). Input that piled up is applied together
(coalesced) before one decision. Acks and cancel confirmations are noted at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from quotewise.book.orderbook import OrderBook
from quotewise.execution.order_manager import OrderManager, WorkingOrder, diff_quotes
from quotewise.live.lane import NEVER, Lane
from quotewise.live.store import OrderRecord, PositionRecord, Store
from quotewise.live.venue import Venue, VenueFill
from quotewise.model.events import EVENT_DTYPE
from quotewise.quoting.base import MAX_VIEW_EVENTS, MarketView, Quote, QuoteSet, Strategy
from quotewise.quoting.compiled import compiled_quoting
from quotewise.risk import MarketState, RiskConfig, RiskEngine
from quotewise.sim import engine as E
from quotewise.sim.exchange import Response

# a strategy whose decisions take longer than this runs them in a worker thread from then on, so
# the event loop keeps serving the other makers
SLOW_DECISION_S = 0.005


class InlineBudget:
    """How many decisions a second may be made right inside the venue's callback, all makers
    together. Inline saves the task wake-up (the bulk of tick-to-quote on an idle engine); past the
    budget, makers go back to their tasks, where updates that piled up coalesce into one decision."""

    def __init__(self, per_second: float = 5_000.0) -> None:
        self.per_second = per_second
        self.tokens = per_second / 10
        self.t = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.per_second / 10, self.tokens + (now - self.t) * self.per_second)
        self.t = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


INLINE = InlineBudget()
NO_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)
KEEP_WARM_MAKERS = 8  # at most this many idle makers rehearse per period
KEEP_WARM_FOR_S = 1.0  # a maker with no turn for this long is left to cool (a quiet market costs ~no CPU)


async def keep_warm(makers: Callable[[], Iterable[Maker]], period_s: float) -> None:
    """Every ``period_s``, makers idle that long, but not longer than ``KEEP_WARM_FOR_S``, rehearse
    their decision (:meth:`Maker.rehearse`).

    An idle process loses its code and data from the CPU caches within a millisecond on a shared
    machine, and the first update after a quiet spell pays for it (on the development machine:
    tick-to-quote p50 ~70 us at 50 updates a second against ~30 us kept warm). Rehearsing costs
    about 5% of one CPU while markets move; a busy maker rehearses nothing, and once no maker has
    had a turn for ``KEEP_WARM_FOR_S`` the warmer looks only every tenth of that. asyncio's timers do
    not go below ~1 ms (epoll)."""
    pause = period_s
    while True:
        await asyncio.sleep(pause)
        now = time.perf_counter()
        cooling = (m for m in makers() if now - KEEP_WARM_FOR_S < m.active_at < now - period_s)
        rehearsed = 0
        for maker in itertools.islice(cooling, KEEP_WARM_MAKERS):
            maker.rehearse()
            rehearsed += 1
        quiet = not rehearsed and not any(m.active_at > now - KEEP_WARM_FOR_S for m in makers())
        pause = max(period_s, KEEP_WARM_FOR_S / 10) if quiet else period_s


class Maker:
    """See the module docstring. ``run()`` is its task; ``status()`` what ``mm status`` shows."""

    def __init__(
        self,
        maker_id: str,
        venue: Venue,
        store: Store,
        strategy: Strategy,
        risk: RiskConfig | None = None,
        lane: Lane | None = None,
    ) -> None:
        self.maker_id = maker_id
        self.venue = venue
        self.store = store
        self.inst = venue.instrument
        self.strategy = strategy
        self._use(strategy)
        self.guard = RiskEngine(risk, self.inst) if risk is not None else None
        self.om = OrderManager(venue, post_only=strategy.params.post_only)
        self.book = OrderBook(*venue.price_range)
        self.speed = float(getattr(venue, "speed", 1.0))
        self._events: list[np.ndarray] = []
        self._responses: list[tuple[Response, int]] = []
        self._seen: list[np.ndarray] = []
        self._wake = asyncio.Event()
        self._pending_config: tuple[Strategy, RiskConfig | None] | None = None
        self.cash = 0.0
        self.fees = 0.0
        self.last_seq = 0
        self.fills = 0
        self.next_decision = 0
        self.decisions = 0
        self.last_decision: int | None = None
        self._last_update: np.ndarray | None = None  # the last update applied (see last_event)
        self.decision_seconds = 0.0
        self.offload = False
        self.state = "running"
        self.error = ""
        self.changed = False  # anything new since the last decision
        self._stepping = False  # inside a turn
        self.active_at = 0.0  # perf_counter at the end of the last turn taken outside the task
        self._soon: asyncio.Handle | None = None  # a turn scheduled for the loop's next pass
        self._armed: int | None = None  # the deadline the task is waiting for (None: input only)
        self.on_failure: Callable[[Maker, str], None] | None = None  # set by the engine
        self.on_decided: Any = None  # hook for the latency benchmark: called after each decision
        self.lane = lane
        self._slot: int | None = None  # this maker's place in the lane, while it qualifies
        self._take_lane()
        venue.subscribe(self)

    def end(self, state: str, error: str = "") -> None:
        """No more quoting: ``stopping``, ``stopped``, ``finishing`` (the data ended; the venue is
        answering our orders), ``finished`` or ``failed``; the lane slot is given back."""
        self.state = state
        if error:
            self.error = error
        self._take_lane()

    def _take_lane(self) -> None:
        """Join the lane while the decision depends on the touch alone (a built-in strategy without a
        risk engine, running); leave it otherwise."""
        qualifies = self._kernel is not None and self.guard is None and self.state == "running"
        if self.lane is None or qualifies == (self._slot is not None):
            return
        if qualifies:
            self._slot = self.lane.join(self)
        else:
            slot, self._slot = self._slot, None
            self.lane.leave(slot)

    def _use(self, strategy: Strategy) -> None:
        """Start ``strategy``; a built-in whose settings the compiled rule covers quotes through it
        (:func:`quotewise.sim.engine.quote_prices`, the backtest's own), the same prices at a
        fraction of the cost."""
        self.strategy = strategy
        strategy.on_start(self.inst)
        self._kernel = compiled_quoting(strategy)
        self._interval = strategy.interval_ns
        self._size = int(self._kernel[E.SP_SIZE]) if self._kernel is not None else 0
        self._reconciled: tuple | None = None  # (compiled decision, order version) last reconciled

    # -- what the venue calls (never blocks) ----------------------------------------------------------
    def on_market(self, events: np.ndarray) -> None:
        behind = self._soon is not None or (self._slot is not None and not self.lane.idle)
        inline = not (behind or self._stepping) and self._kernel is not None and self.state == "running"
        if inline and INLINE.take():
            # the latency path: the fewer functions it passes through, the less an idle engine pays for
            # caches gone cold (several microseconds each)
            self._step(events)  # an idle engine: this update and the decision on it, at once
        elif self._slot is not None:
            self.lane.push(self._slot, events)
        else:
            self._events.append(events)
            self._input_arrived()

    def touch_moved(self) -> None:
        """The lane applied updates that moved the touch since this maker last decided: a turn now."""
        self.changed = True
        if self._soon is None and not self._stepping:
            self._step()
        elif self._soon is None:
            self._soon = asyncio.get_running_loop().call_soon(self._step_soon)

    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        if self._responses or any(r.kind == "fill" for r, _ in responses):
            self._responses.extend(responses)  # fills are stored first, in the maker's turn
            self._input_arrived()
            return
        version = self.om.live_version
        for r, _ in responses:  # acks and cancel results: noted now, no turn unless they matter
            self.om.on_response(r.kind, r.order_id, r.exch_ts, r.qty, r.left, r.reason)
        self.persist_orders()
        if self.om.live_version != version:  # a reject or an unsolicited cancel: quote again
            self.changed = True
            self._input_arrived()

    def _input_arrived(self) -> None:
        """A built-in strategy takes its turn right here within the engine's inline budget, else on the
        loop's next turn (input that piles up meanwhile is applied together); a Python strategy's
        task is woken."""
        if self._kernel is None or self.state != "running":
            self._wake.set()
        elif self._soon is not None:
            return  # a turn is already scheduled: it takes this input too
        elif not self._stepping and INLINE.take():
            self._step()
        else:
            self._soon = asyncio.get_running_loop().call_soon(self._step_soon)

    def _step_soon(self) -> None:
        self._soon = None
        self._step()

    def _step(self, update: np.ndarray | None = None) -> None:
        """A turn outside the task (built-in strategies), with ``update`` if the venue just handed one
        over. A failure here is the maker's own: it is reported through ``on_failure``, never raised
        into the venue's callback."""
        if self.state != "running":
            return
        self._stepping = True
        try:
            if not self._turn(in_task=False, update=update):
                self._wake.set()  # the config switched to a Python strategy: its task decides
            wake = self._next_wake()
            if wake is not None and (self._armed is None or wake < self._armed):
                self._wake.set()  # the task waits on a later deadline than this turn needs
            self.active_at = time.perf_counter()
        except Exception as exc:
            self.end("failed", repr(exc))
            if self.on_failure is not None:
                self.on_failure(self, self.error)
        finally:
            self._stepping = False

    def rehearse(self) -> None:
        """Walk a decision without acting: the clock, the compiled call on an empty update, the quotes
        and their diff against our orders (:meth:`_decide_compiled`). Changes nothing; run on an idle
        maker (see :func:`keep_warm`) so that the next real update finds this code and data still in
        the CPU's caches."""
        in_lane = self._slot is not None and not self.lane.idle
        queued = self._events or self._responses or self._pending_config or in_lane
        idle = not (self._stepping or self._soon or queued)
        if self._kernel is None or self.state != "running" or not idle:
            return
        now = self.venue.now
        if now >= self.next_decision:
            self._decide_compiled(now, None, act=False)

    # -- recovery ----------------------------------------------------------------------------------
    def resume_from(self, position: PositionRecord | None, open_orders: list[OrderRecord]) -> dict[str, int]:
        """Continue after a restart: our records, then every fill the venue made since the last one
        stored, then our open orders checked against the venue's."""
        if position is not None:
            self.om.position = position.position
            self.cash, self.fees = position.cash, position.fees
            self.last_seq, self.fills = position.last_seq, position.fills
            if self.guard is not None:
                self.guard.cash = self.cash
        for o in open_orders:
            status = "pending_cancel" if o.status == "cancel_requested" else "working"
            self.om.orders[o.order_id] = WorkingOrder(o.order_id, o.side, o.price, o.size, o.left, status)
        recovered = sum(self._apply_fill(f) for f in self.venue.fills_since(self.last_seq))
        at_venue = {o.order_id for o in self.venue.open_orders()}
        closed = [oid for oid in self.om.orders if oid not in at_venue]
        self.persist_orders()  # what the recovered fills did to our orders
        for oid in closed:
            o = self.om.orders.pop(oid)
            row = OrderRecord(oid, o.side, o.price, o.size, o.left, "closed", self.venue.now)
            self.store.queue_orders(self.maker_id, [row])
        unknown = [oid for oid in at_venue if oid not in self.om.orders]
        for oid in unknown:
            self.venue.cancel(oid)
        self.store.flush_orders()
        return {"fills_recovered": recovered, "orders_closed": len(closed), "unknown_cancelled": len(unknown)}

    # -- the task ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Decide at the first decision time after anything changed (market data, a response, a new
        config), as the backtest does; wait without polling when nothing did."""
        while self.state == "running":
            self._armed = self._next_wake()
            await self._wait(self._armed)
            self._armed = None
            if self.state != "running":  # stopped while it waited: no more turns
                break
            self._stepping = True
            try:
                thought = self._turn(in_task=True)
            finally:
                self._stepping = False
            if not thought:
                await self._decide_in_thread()

    def _turn(self, in_task: bool, update: np.ndarray | None = None) -> bool:
        """Queued input applied, then ``update`` (one the venue just handed over), then a decision if one
        is due, then order states queued for the store. A compiled decision applies ``update`` in
        its own call. False when the due decision is left to the task (a strategy that thinks in a
        thread)."""
        if self._events or self._responses or (self._slot is not None and not self.lane.idle):
            self.process_inputs()
        now = self.venue.now
        due = (self.changed or update is not None) and now >= self.next_decision
        if due and self._pending_config is not None:
            self._take_config()
        if due and self._kernel is not None:
            self._decide_compiled(now, update)
        else:
            if update is not None:
                self._apply_updates([update])
            if not due:
                self._watch(now)
            elif not self.book.two_sided:
                self._nothing_to_quote(now)
            elif self.offload or not in_task:
                return False
            else:
                self._decide_python(now)
        self.persist_orders()
        return True

    def _watch(self, now: int) -> None:
        """No decision this turn: the risk engine still checks the market (stale data, drawdown)."""
        if self.guard is not None:
            self.guard.update(self._market(now), self.om)

    def _nothing_to_quote(self, now: int) -> None:
        """A side of the book is empty: no decision until the next input (waiting on the decision time
        instead would wake the task at once, again and again)."""
        self.changed = False
        self._watch(now)

    async def _decide_in_thread(self) -> None:
        now = self.venue.now
        self.changed = False
        view = self._view(now, with_events=True)
        t0 = time.perf_counter()
        wanted = await asyncio.to_thread(self.strategy.quotes, view)
        if self.state != "running":  # stopped or finished while it thought: nothing is sent
            return
        self._act(wanted, now, time.perf_counter() - t0)
        self.next_decision = now + self._interval
        self.persist_orders()

    def _next_wake(self) -> int | None:
        """When (venue clock, ns) this maker must act without new input; None: only input wakes it."""
        wakes = []
        if self.changed:
            wakes.append(self.next_decision)
        if self.guard is not None:
            wake = self.guard.next_wake(self.venue.now)
            if wake is not None:
                wakes.append(wake)
        return min(wakes) if wakes else None

    async def _wait(self, wake: int | None) -> None:
        timeout = None if wake is None else max(wake - self.venue.now, 0) / 1e9 / self.speed
        if timeout == 0:
            await asyncio.sleep(0)
        else:
            with contextlib.suppress(TimeoutError):  # asyncio.timeout, unlike wait_for, never eats a cancel
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        self._wake.clear()

    def process_inputs(self) -> None:
        """Apply queued market events to the book, then queued responses (each fill stored first)."""
        if self._slot is not None and not self.lane.idle:
            self.lane.drain()  # updates the lane holds for this maker come first
        if self._events:
            events, self._events = self._events, []
            self._apply_updates(events)
        if not self._responses:
            return
        responses, self._responses = self._responses, []
        version = self.om.live_version
        view: MarketView | None = None
        for r, seq in responses:
            if r.kind == "fill":
                fill = VenueFill(seq, r.order_id, r.exch_ts, r.side, r.price, r.qty, r.left, r.fee, r.maker)
                if self._apply_fill(fill):
                    self.changed = True
                    view = view or self._view(self.venue.now)
                    self.strategy.on_fill(r, view)
            else:
                self.om.on_response(r.kind, r.order_id, r.exch_ts, r.qty, r.left, r.reason)
        if self.om.live_version != version:
            self.changed = True

    def _apply_updates(self, events: list[np.ndarray]) -> None:
        """Market updates to the book, kept for what reads them later: a Python strategy's flow
        signals (MarketView.events) and the risk engine's stale-data check (:attr:`last_event`)."""
        self.changed = True
        for batch in events:  # one by one: joining structured arrays costs more than applying
            self.book.apply(batch)
        if self._kernel is None:
            self._seen = [*self._seen, *events][-64:]
        self._last_update = events[-1]

    @property
    def last_event(self) -> int | None:
        """Local time (ns) of the latest market event applied, read when asked (it is rarely asked)."""
        last = self._last_update
        return None if last is None else int(last["local_ts"][-1])

    def _apply_fill(self, fill: VenueFill) -> bool:
        """Store the fill with the position it leaves (committed), then update the order manager;
        False when it was already counted."""
        if fill.seq <= self.last_seq:
            return False
        position = self.om.position + fill.side * fill.qty
        cash = self.cash + self.inst.cash_flow(fill.side, fill.price, fill.qty, fill.fee)
        fees = self.fees + fill.fee
        if not self.store.record_fill(self.maker_id, fill, position, cash, fees):
            return False
        self.cash, self.fees, self.last_seq = cash, fees, fill.seq
        self.fills += 1
        self.om.on_response("fill", fill.order_id, fill.exch_ts, fill.qty, fill.left, "")
        self.om.position = position  # also when the order was not ours to know (recovered)
        if self.guard is not None:
            self.guard.on_fill(fill.side, fill.price, fill.qty, fill.fee)
        return True

    def _take_config(self) -> None:
        """New settings from ``mm config``, taken at the decision they were asked for."""
        if self._pending_config is None:
            return
        strategy, risk = self._pending_config
        self._use(strategy)
        self.om.post_only = self.strategy.params.post_only
        self.guard = self._new_guard(risk)
        self._pending_config = None
        self._take_lane()

    def _decide_python(self, now: int) -> None:
        """The strategy's own ``quotes()``, in this turn."""
        self.changed = False
        t0 = time.perf_counter()
        self._act(self.strategy.quotes(self._view(now, with_events=True)), now, time.perf_counter() - t0)
        self.next_decision = now + self._interval

    def _decide_compiled(self, now: int, update: np.ndarray | None, act: bool = True) -> None:
        """``update`` applied and the built-in rule decided, in one compiled call. A decision equal to
        the last one reconciled, with no order changed since and no risk engine to consult,
        reconciles to nothing: it is counted and skipped (most book updates leave the touch, and so
        the quotes, where they were). ``act=False`` (a rehearsal, :meth:`rehearse`) stops after
        comparing the quotes with our orders and changes nothing."""
        t0 = time.perf_counter()
        book, om = self.book, self.om
        events = NO_EVENTS if update is None else update
        want_bid, want_ask, bid, ask, touch_bid, touch_ask = E.apply_and_quote(
            book.bid, book.ask, book.st, events, self._kernel, float(om.position)
        )
        spent = time.perf_counter() - t0
        two_sided = touch_bid >= 0 and touch_ask >= 0
        if act:
            if update is not None:
                self._last_update = update
            if not two_sided:
                if self._slot is not None:  # the lane wakes it when this touch changes, not before
                    self.lane.decided[self._slot] = (touch_bid, touch_ask)
                self._nothing_to_quote(now)
                return
            self.changed = False
            self.next_decision = now + self._interval
        elif not two_sided:
            return
        decided = (want_bid, want_ask, bid, ask)
        if act and self.guard is None and (decided, om.live_version) == self._reconciled:
            settled = True  # the working orders already are these: nothing to send
        else:
            # what a QuoteSet checks holds by construction: the size is at least the instrument's
            # minimum, and the fee floor puts the ask above the bid whenever both are quoted
            bids = [Quote(bid, self._size)] if want_bid else []
            asks = [Quote(ask, self._size)] if want_ask else []
            if not act:
                diff_quotes(bids, asks, om.orders.values())
                return
            settled = om.reconcile(bids, asks) if self.guard is None else self._reconcile(bids, asks, now)
            self._reconciled = (decided, om.live_version) if settled else None
        if self._slot is not None:  # the lane wakes this maker again when the touch leaves this one
            self.lane.decided[self._slot] = (touch_bid, touch_ask) if settled else (NEVER, NEVER)
        self._decided(now, spent)

    def _act(self, wanted: QuoteSet, now: int, spent: float) -> None:
        """A Python strategy's quotes, through risk, to the venue."""
        if spent > SLOW_DECISION_S:
            self.offload = True
        if self.state == "running":  # not stopped while the strategy was thinking
            self._reconcile(wanted.bids, wanted.asks, now)
            self._decided(now, spent)

    def _decided(self, now: int, spent: float) -> None:
        self.decision_seconds += spent
        self.decisions += 1
        self.last_decision = now
        if self.on_decided is not None:
            self.on_decided(self)

    def _reconcile(self, bids: list[Quote], asks: list[Quote], now: int) -> bool:
        """``bids`` and ``asks`` through risk to the venue. True when the orders now are exactly
        these, with no risk engine in between."""
        if self.guard is None:
            return self.om.reconcile(bids, asks)
        before = len(self.guard.events)
        self.guard.decide(QuoteSet(bids, asks), self._market(now), self.om)
        self.store.add_risk_events(self.maker_id, self.guard.events[before:])
        return False

    def _new_guard(self, risk: RiskConfig | None) -> RiskEngine | None:
        if risk is None:
            return None
        guard = RiskEngine(risk, self.inst)
        guard.cash = self.cash
        return guard

    def _market(self, now: int) -> MarketState:
        mid = self.book.mid
        return MarketState(now, mid, self.last_event)

    def _view(self, now: int, with_events: bool = False) -> MarketView:
        bb, ba = self.book.best_bid, self.book.best_ask
        events = None
        if with_events and self._seen:
            seen, self._seen = self._seen, []
            events = (seen[0] if len(seen) == 1 else np.concatenate(seen))[-MAX_VIEW_EVENTS:]
        return MarketView(
            time=now,
            instrument=self.inst,
            best_bid=bb,
            best_ask=ba,
            bid_size=self.book.size_at(1, bb) if bb is not None else 0,
            ask_size=self.book.size_at(-1, ba) if ba is not None else 0,
            position=self.om.position,
            book=self.book,
            events=events,
        )

    def persist_orders(self) -> None:
        """Every order state change since the last call, one transaction."""
        if not self.om.log:
            return
        latest: dict[int, OrderRecord] = {}
        for e in self.om.log:
            left = e.size - e.filled
            latest[e.order_id] = OrderRecord(e.order_id, e.side, e.price, e.size, left, e.status, e.ts)
        self.om.log.clear()
        self.store.queue_orders(self.maker_id, list(latest.values()))

    # -- control -----------------------------------------------------------------------------------
    def reconfigure(self, strategy: Strategy, risk: RiskConfig | None) -> None:
        """New settings, taken at the next decision (the position and orders carry over)."""
        self._pending_config = (strategy, risk)
        self.next_decision = 0
        self.changed = True
        self._wake.set()

    async def cancel_all(self, reason: str, wait_s: float = 2.0) -> int:
        """Stop quoting, cancel every order and wait (bounded) for the venue to confirm; returns the
        number of orders still open."""
        self.end("stopping")  # the task decides no more
        self.om.cancel_all(reason)
        self.persist_orders()
        deadline = time.monotonic() + wait_s
        while self.om.orders and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            self.process_inputs()
            self.persist_orders()
        self.store.flush_orders()
        return len(self.om.orders)

    def finish(self) -> None:
        """The venue's data has ended and it has answered every order (the maker took no turn since
        it heard of the end): what came after the last turn is applied and queued for the store, so
        that a finished maker leaves no order open."""
        self.process_inputs()
        self.persist_orders()
        self.end("finished")

    def quotes(self) -> list[dict[str, Any]]:
        """Our orders, prices and sizes on the instrument's grid."""
        inst = self.inst
        return [
            {
                "order_id": o.order_id,
                "side": "bid" if o.side == 1 else "ask",
                "price": inst.px(o.price),
                "size": inst.qty(o.left),
                "status": o.status,
            }
            for o in sorted(self.om.orders.values(), key=lambda o: (-o.side, -o.side * o.price))
        ]

    def status(self) -> dict[str, Any]:
        """What ``mm status`` shows; prices on the tick grid and sizes on the lot grid (no binary noise)."""
        inst = self.inst
        mid = self.book.mid
        bid, ask = self.book.best_bid, self.book.best_ask
        guard = self.guard
        return {
            "state": self.state,
            "error": self.error,
            "position": inst.qty(self.om.position),
            "cash": self.cash,
            "fees": self.fees,
            "pnl": self.cash + inst.value(mid, self.om.position) if mid is not None else self.cash,
            "currency": inst.settle_currency,  # of pnl, cash and fees (the coin for inverse contracts)
            "fills": self.fills,
            "last_fill_seq": self.last_seq,
            "quotes": self.quotes(),
            "best_bid": None if bid is None else inst.px(bid),
            "best_ask": None if ask is None else inst.px(ask),
            "decisions": self.decisions,
            "last_decision": self.last_decision,
            "market_time": self.venue.now,
            "slow_strategy": self.offload,
            "mean_decision_us": 1e6 * self.decision_seconds / self.decisions if self.decisions else None,
            "risk": {
                "enabled": guard is not None,
                "blocked": bool(guard is not None and guard.blocked),
                "halted": bool(guard is not None and guard.halted),
                "actions": guard.counts() if guard is not None else {},
            },
        }
