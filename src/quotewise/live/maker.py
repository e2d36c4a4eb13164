"""One market maker: a strategy quoting one market on one venue, live.

The decision is the backtest's own (:class:`quotewise.execution.core.DecisionCore`: strategy, risk
engine, order manager, ledger) on the same data path: market events -> the maker's own book ->
strategy -> risk -> order manager -> venue; venue responses -> store (committed) -> ledger, order
manager, risk, strategy. What the maker adds is the live part: its book fed by the venue, its clock
(the venue's), its turns (:meth:`Maker.step`, scheduled by the engine's
:class:`~quotewise.live.scheduler.Scheduler`), storing every fill before anything acts on it, and
its task for a Python strategy (in a worker thread once it proves slow). Venue callbacks never wait
on a maker; acks and cancel confirmations are noted at once.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from quotewise.book.orderbook import OrderBook
from quotewise.book.view import MAX_VIEW_EVENTS, MarketView
from quotewise.execution.core import DecisionCore, Ledger
from quotewise.execution.order_manager import OrderManager, WorkingOrder, diff_quotes
from quotewise.live.scheduler import Scheduler
from quotewise.live.store import OrderRecord, PositionRecord, Store
from quotewise.live.venue import Venue, VenueFill
from quotewise.model.events import EVENT_DTYPE
from quotewise.model.response import Response
from quotewise.quoting.base import Quote, Strategy
from quotewise.quoting.kernel import apply_and_quote, compiled_quoting, order_size
from quotewise.risk import MarketState, RiskConfig, RiskEngine

# a strategy whose decisions take longer than this runs them in a worker thread from then on, so
# the event loop keeps serving the other makers
SLOW_DECISION_S = 0.005
NO_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)
MAX_SEEN_BATCHES = 64  # a Python strategy's unread update batches, joined into one past this


# upper bounds (seconds) of the tick-to-quote histogram's buckets (/metrics)
LATENCY_BUCKETS_S = (5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.25)


@dataclass
class Halt:
    """An operator's halt: whether it flattens the position, who asked, the flatten orders sent and
    the ones the risk limits refused."""

    flatten: bool
    actor: str
    orders: int = 0
    refused: int = 0


class Maker:
    """See the module docstring. ``run()`` is its task; ``status()`` what ``mm status`` shows."""

    def __init__(
        self,
        maker_id: str,
        venue: Venue,
        store: Store,
        strategy: Strategy,
        risk: RiskConfig | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.maker_id = maker_id
        self.venue = venue
        self.store = store
        self.inst = venue.instrument
        self.core = DecisionCore(self.inst, venue, strategy, risk, record_fill=self._store_fill)
        self.scheduler = scheduler or Scheduler()  # a maker alone (a test) gets its own
        self.book = OrderBook(*venue.price_range)
        self.speed = float(getattr(venue, "speed", 1.0))
        self._events: list[np.ndarray] = []
        self._responses: list[tuple[Response, int]] = []
        self._seen: list[np.ndarray] = []
        self._wake = asyncio.Event()
        self._pending_config: tuple[Strategy, RiskConfig | None] | None = None
        self._risk_logged = 0  # risk events already stored
        self.next_decision = 0
        self.decisions = 0
        self.last_decision: int | None = None
        self._last_update: np.ndarray | None = None  # the last update applied (see last_event)
        self.decision_seconds = 0.0
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)  # tick-to-quote, by upper bound (+Inf last)
        self.latency_seconds = 0.0
        self.offload = False
        self.state = "running"
        self.error = ""
        self.changed = False  # anything new since the last decision
        self.stepping = False  # inside a turn
        self.active_at = 0.0  # perf_counter at the end of the last turn taken outside the task
        self._armed: int | None = None  # the deadline the task is waiting for (None: input only)
        self.on_failure: Any = None  # set by the engine: called with (maker, error, exception)
        self.on_decided: Any = None  # hook for the latency benchmark: called after each decision
        self.halt: Halt | None = None  # an operator's halt (with or without flattening), until resumed
        self._use_kernel()
        self.scheduler.update(self)
        venue.subscribe(self)

    # -- the parts, named -----------------------------------------------------------------------------
    @property
    def om(self) -> OrderManager:
        return self.core.om

    @property
    def guard(self) -> RiskEngine | None:
        return self.core.guard

    @property
    def strategy(self) -> Strategy:
        return self.core.strategy

    @property
    def ledger(self) -> Ledger:
        return self.core.ledger

    @property
    def fills(self) -> int:
        return self.core.ledger.fills

    @property
    def compiled(self) -> bool:
        """Quotes through the compiled rule and takes its turns outside its task (a running built-in)."""
        return self._kernel is not None and self.state == "running" and self.halt is None

    @property
    def touch_only(self) -> bool:
        """Its decision depends on the touch alone (compiled, no risk engine): the lane may hold it."""
        return self.compiled and self.core.guard is None

    def end(self, state: str, error: str = "") -> None:
        """No more quoting: ``stopping``, ``stopped``, ``finishing`` (the data ended; the venue is
        answering our orders), ``finished`` or ``failed``; the scheduler lets it go."""
        self.state = state
        if error:
            self.error = error
        self.scheduler.update(self)
        self.scheduler.forget(self)

    def _use_kernel(self) -> None:
        """A built-in whose settings the compiled rule covers quotes through it
        (:func:`quotewise.quoting.kernel.quote_prices`, the backtest's own), the same prices at a
        fraction of the cost."""
        strategy = self.core.strategy
        self._kernel = compiled_quoting(strategy)
        self._interval = strategy.interval_ns
        self._size = order_size(self._kernel) if self._kernel is not None else 0
        self._reconciled: tuple | None = None  # (compiled decision, order version) last reconciled

    # -- what the venue calls (never blocks) ----------------------------------------------------------
    def on_market(self, events: np.ndarray) -> None:
        self.scheduler.market(self, events)

    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        if self._responses or any(r.kind == "fill" for r, _ in responses):
            self._responses.extend(responses)  # fills are stored first, in the maker's turn
            self.scheduler.input(self)
            return
        om = self.om
        version = om.live_version
        for r, _ in responses:  # acks and cancel results: noted now, no turn unless they matter
            om.on_response(r.kind, r.order_id, r.exch_ts, r.left, r.reason)
        self.persist_orders()
        if om.live_version != version:  # a reject or an unsolicited cancel: quote again
            self.changed = True
            self.scheduler.input(self)

    def touch_moved(self) -> None:
        """The lane applied updates that moved the touch since this maker last decided."""
        self.changed = True
        self.scheduler.touch_moved(self)

    # -- what the scheduler calls ---------------------------------------------------------------------
    def queue(self, events: np.ndarray) -> None:
        """Hold a market update for the next turn."""
        self._events.append(events)

    def wake(self) -> None:
        """Wake the task (a Python strategy decides there)."""
        self._wake.set()

    def step(self, update: np.ndarray | None = None) -> None:
        """A turn outside the task (built-in strategies), with ``update`` if the venue just handed one
        over. A failure here is the maker's own: it is reported through ``on_failure``, never raised
        into the venue's callback."""
        if self.state != "running":
            return
        self.stepping = True
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
                self.on_failure(self, self.error, exc)  # the exception: the engine keeps its traceback
        finally:
            self.stepping = False

    def rehearse(self) -> None:
        """Walk a decision without acting: the clock, the compiled call on an empty update, the quotes
        and their diff against our orders (:meth:`_decide_compiled`). Changes nothing; run on an idle
        maker (see :func:`~quotewise.live.scheduler.keep_warm`) so that the next real update finds
        this code and data still in the CPU's caches."""
        queued = self._events or self._responses or self._pending_config
        if not self.compiled or self.stepping or queued or self.scheduler.behind(self):
            return
        now = self.venue.now
        if now >= self.next_decision:
            self._decide_compiled(now, None, act=False)

    # -- recovery ----------------------------------------------------------------------------------
    def resume_from(self, position: PositionRecord | None, open_orders: list[OrderRecord]) -> dict[str, int]:
        """Continue after a restart: our records, then every fill the venue made since the last one
        stored, then our open orders checked against the venue's."""
        ledger, om = self.ledger, self.om
        if position is not None:
            p = position
            ledger.take(Ledger(p.position, p.cash, p.fees, p.fills, p.last_seq))
        for o in open_orders:
            status = "pending_cancel" if o.status == "cancel_requested" else "working"
            om.orders[o.order_id] = WorkingOrder(o.order_id, o.side, o.price, o.size, o.left, status)
        recovered = sum(self.core.book_fill(f, f.seq) for f in self.venue.fills_since(ledger.last_seq))
        at_venue = {o.order_id for o in self.venue.open_orders()}
        closed = [oid for oid in om.orders if oid not in at_venue]
        self.persist_orders()  # what the recovered fills did to our orders
        for oid in closed:
            o = om.orders.pop(oid)
            row = OrderRecord(oid, o.side, o.price, o.size, o.left, "closed", self.venue.now)
            self.store.queue_orders(self.maker_id, [row])
        unknown = [oid for oid in at_venue if oid not in om.orders]
        for oid in unknown:
            self.venue.cancel(oid)
        if getattr(self.venue, "resend_cancels", False):  # a cancel sent before the crash may be lost
            for o in om.orders.values():
                if o.status == "pending_cancel" and o.order_id in at_venue:
                    self.venue.cancel(o.order_id)
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
            self.stepping = True
            try:
                thought = self._turn(in_task=True)
            finally:
                self.stepping = False
            if not thought:
                await self._decide_in_thread()

    def _turn(self, in_task: bool, update: np.ndarray | None = None) -> bool:
        """Queued input applied, then ``update`` (one the venue just handed over), then a decision if one
        is due, then order states and risk events queued for the store. A compiled decision applies
        ``update`` in its own call. False when the due decision is left to the task (a strategy
        that thinks in a thread)."""
        if self._events or self._responses or self.scheduler.behind(self):
            self.process_inputs()
        now = self.venue.now
        if self.halt is not None:
            if update is not None:
                self._apply_updates([update])
            self._halted(now)
            self.persist_orders()
            return True
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

    def _nothing_to_quote(self, now: int) -> None:
        """A side of the book is empty: no decision until the next input (waiting on the decision time
        instead would wake the task at once, again and again)."""
        self.changed = False
        self._watch(now)

    def _watch(self, now: int) -> None:
        """No decision this turn: the risk engine still checks the market (stale data, drawdown)."""
        if self.core.guard is not None:
            self.core.watch(self._market(now))

    async def _decide_in_thread(self) -> None:
        now = self.venue.now
        self.changed = False
        view = self._view(now, with_events=True)
        t0 = time.perf_counter()
        wanted = await asyncio.to_thread(self.strategy.quotes, view)
        if self.state != "running":  # stopped or finished while it thought: nothing is sent
            return
        self._act(wanted.bids, wanted.asks, now, time.perf_counter() - t0, t0)
        self.next_decision = now + self._interval
        self.persist_orders()

    def _next_wake(self) -> int | None:
        """When (venue clock, ns) this maker must act without new input; None: only input wakes it."""
        wakes = []
        if self.changed:
            wakes.append(self.next_decision)
        if self.core.guard is not None:
            wake = self.core.next_wake(self.venue.now)
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
        self.scheduler.drain_for(self)  # updates the lane holds for this maker come first
        if self._events:
            events, self._events = self._events, []
            self._apply_updates(events)
        if not self._responses:
            return
        responses, self._responses = self._responses, []
        version = self.om.live_version
        view: MarketView | None = None

        def market_now() -> MarketView:
            nonlocal view
            view = view or self._view(self.venue.now)
            return view

        for r, seq in responses:
            if self.core.on_response(r, seq, market_now) and r.kind == "fill":
                self.changed = True
        if self.om.live_version != version:
            self.changed = True

    def _apply_updates(self, events: list[np.ndarray]) -> None:
        """Market updates to the book, kept for what reads them later: a Python strategy's flow
        signals (MarketView.events) and the risk engine's stale-data check (:attr:`last_event`)."""
        self.changed = True
        for batch in events:  # one by one: joining structured arrays costs more than applying
            self.book.apply(batch)
        if self._kernel is None:
            self._seen = [*self._seen, *events]
            if len(self._seen) > MAX_SEEN_BATCHES:  # joined, not dropped: a replay needs every event
                self._seen = [np.concatenate(self._seen)[-MAX_VIEW_EVENTS:]]
        self._last_update = events[-1]

    @property
    def last_event(self) -> int | None:
        """Local time (ns) of the latest market event applied, read when asked (it is rarely asked)."""
        last = self._last_update
        return None if last is None else int(last["local_ts"][-1])

    def _store_fill(self, fill: Any, seq: int, after: Ledger) -> bool:
        """The decision core's hook: a fill is committed to the store, with the position, cash and fees
        it leaves, before anything acts on it; False when the store already had it."""
        f = fill
        row = VenueFill(
            seq, f.order_id, f.exch_ts, f.side, f.price, f.qty, f.left, f.fee, f.maker, f.trade_id
        )
        mid = self.book.mid
        return self.store.record_fill(self.maker_id, row, after.position, after.cash, after.fees, mid)

    def _take_config(self) -> None:
        """New settings from ``mm config``, taken at the decision they were asked for."""
        if self._pending_config is None:
            return
        strategy, risk = self._pending_config
        self.core.use(strategy, risk)
        self._risk_logged = 0
        self._use_kernel()
        self._pending_config = None
        self.scheduler.update(self)

    def _decide_python(self, now: int) -> None:
        """The strategy's own ``quotes()``, in this turn."""
        self.changed = False
        t0 = time.perf_counter()
        wanted = self.strategy.quotes(self._view(now, with_events=True))
        self._act(wanted.bids, wanted.asks, now, time.perf_counter() - t0, t0)
        self.next_decision = now + self._interval

    def _decide_compiled(self, now: int, update: np.ndarray | None, act: bool = True) -> None:
        """``update`` applied and the built-in rule decided, in one compiled call. A decision equal to
        the last one reconciled, with no order changed since and no risk engine to consult,
        reconciles to nothing: it is counted and skipped (most book updates leave the touch, and so
        the quotes, where they were). ``act=False`` (a rehearsal, :meth:`rehearse`) stops after
        comparing the quotes with our orders and changes nothing."""
        t0 = time.perf_counter()
        book, core = self.book, self.core
        events = NO_EVENTS if update is None else update
        want_bid, want_ask, bid, ask, touch_bid, touch_ask = apply_and_quote(
            book.bid, book.ask, book.st, events, self._kernel, float(core.ledger.position)
        )
        spent = time.perf_counter() - t0
        two_sided = touch_bid >= 0 and touch_ask >= 0
        if act:
            if update is not None:
                self._last_update = update
            if not two_sided:
                self.scheduler.decided(self, touch_bid, touch_ask)  # woken when this touch changes
                self._nothing_to_quote(now)
                return
            self.changed = False
            self.next_decision = now + self._interval
        elif not two_sided:
            return
        decided = (want_bid, want_ask, bid, ask)
        om = core.om
        if act and core.guard is None and (decided, om.live_version) == self._reconciled:
            settled = True  # the working orders already are these: nothing to send
        else:
            # what a QuoteSet checks holds by construction: the size is at least the instrument's
            # minimum, and the fee floor puts the ask above the bid whenever both are quoted
            bids = [Quote(bid, self._size)] if want_bid else []
            asks = [Quote(ask, self._size)] if want_ask else []
            if not act:
                diff_quotes(bids, asks, om.orders.values())
                return
            settled = self._act(bids, asks, now)
            self._reconciled = (decided, om.live_version) if settled else None
        if settled:  # the lane wakes this maker again when the touch leaves this one
            self.scheduler.decided(self, touch_bid, touch_ask)
        else:
            self.scheduler.unsettled(self)
        self._decided(now, spent, t0)

    def _act(
        self, bids: list[Quote], asks: list[Quote], now: int, spent: float | None = None, started: float = 0.0
    ) -> bool:
        """Wanted quotes through the core (risk, order manager) to the venue, the risk engine's new
        events stored; ``spent`` is a Python decision's time (a slow strategy moves to a thread).
        True when the orders now are exactly these."""
        if spent is not None and spent > SLOW_DECISION_S:
            self.offload = True
        if self.state != "running":  # stopped while the strategy was thinking
            return False
        core = self.core
        settled = core.act(bids, asks, self._market(now) if core.guard is not None else None)
        if core.guard is not None:
            self._store_risk_events()
        if spent is not None:
            self._decided(now, spent, started)
        return settled

    def _store_risk_events(self) -> None:
        events = self.core.guard.events if self.core.guard is not None else []
        if len(events) > self._risk_logged:
            self.store.add_risk_events(self.maker_id, events[self._risk_logged :])
            self._risk_logged = len(events)

    def _decided(self, now: int, spent: float, started: float) -> None:
        """Count a decision: ``spent`` computing it, and its latency from ``started`` (perf_counter at
        the decision's start; for a built-in deciding in the venue's callback, the update's arrival)
        to now, its orders sent: one bisect into the tick-to-quote histogram."""
        latency = time.perf_counter() - started
        self.latency_buckets[bisect.bisect_left(LATENCY_BUCKETS_S, latency)] += 1
        self.latency_seconds += latency
        self.decision_seconds += spent
        self.decisions += 1
        self.last_decision = now
        if self.on_decided is not None:
            self.on_decided(self)

    def _market(self, now: int) -> MarketState:
        return MarketState(now, self.book.mid, self.last_event)

    def _view(self, now: int, with_events: bool = False) -> MarketView:
        bb, bid_size, ba, ask_size = self.book.touch()
        events = None
        if with_events and self._seen:
            seen, self._seen = self._seen, []
            events = (seen[0] if len(seen) == 1 else np.concatenate(seen))[-MAX_VIEW_EVENTS:]
        return MarketView(
            time=now,
            instrument=self.inst,
            best_bid=bb,
            best_ask=ba,
            bid_size=bid_size,
            ask_size=ask_size,
            position=self.ledger.position,
            book=self.book,
            events=events,
        )

    def persist_orders(self) -> None:
        """Every order state change since the last call, one transaction; the risk engine's events too."""
        core = self.core
        if core.guard is not None:
            self._store_risk_events()
        om = core.om
        if not om.log:
            return
        latest: dict[int, OrderRecord] = {}
        for e in om.log:
            left = e.size - e.filled
            latest[e.order_id] = OrderRecord(e.order_id, e.side, e.price, e.size, left, e.status, e.ts)
        om.log.clear()
        self.store.queue_orders(self.maker_id, list(latest.values()))

    # -- control -----------------------------------------------------------------------------------
    def stop_quoting(self, flatten: bool, actor: str) -> None:
        """An operator's halt: every order cancelled now and no decision until :meth:`resume`; with
        ``flatten`` the position is then closed by marketable orders, each inside the risk limits."""
        self.halt = Halt(flatten, actor)
        self.om.cancel_all("operator halt")
        self.persist_orders()
        self.scheduler.update(self)  # no longer compiled: its turns are the task's
        self.scheduler.input(self)
        self._wake.set()

    def resume(self) -> None:
        """Quote again from the next decision (the position and the risk state carry over)."""
        self.halt = None
        self.next_decision = 0
        self.changed = True
        self.scheduler.update(self)
        self.scheduler.input(self)
        self._wake.set()

    def _halted(self, now: int) -> None:
        """A halted maker's turn: nothing is quoted; a flattening one works its position to zero, one
        marketable order at a time at the touch (re-sent when the touch moves away from it)."""
        halt = self.halt
        assert halt is not None
        self.changed = False
        if not halt.flatten or self.ledger.position == 0:
            if halt.flatten:
                self.store.audit(halt.actor, "flattened", self.maker_id, {"orders": halt.orders})
                self.halt = Halt(False, halt.actor, halt.orders)
            return
        side = -1 if self.ledger.position > 0 else 1
        price = self.book.best_bid if side < 0 else self.book.best_ask
        working = [o for o in self.om.orders.values() if o.status != "pending_cancel"]
        if working:
            if any(o.price != price for o in working):
                self.om.cancel_all("flatten: the touch moved")
            return
        if price is None or self.om.orders:  # no one to trade with, or cancels still in flight
            return
        self._flatten_order(side, price, now, halt)

    def _flatten_order(self, side: int, price: int, now: int, halt: Halt) -> None:
        """One marketable order toward flat: at most the position, the size at the touch and the risk
        limits' largest order; an order the risk limits refuse is not sent (recorded instead)."""
        touch = self.book.size_at(-side, price)
        size = min(abs(self.ledger.position), touch or abs(self.ledger.position))
        refused = ""
        if self.guard is not None:
            size = self.guard.largest_order(price, size)
            problem = self.guard.problem(Quote(price, size)) if size else None
            refused = "max_order_size" if not size else problem[0] if problem is not None else ""
        details = {
            "side": "buy" if side > 0 else "sell",
            "price": self.inst.px(price),
            "size": self.inst.qty(size),
        }
        if refused:
            self.store.audit(halt.actor, "flatten_refused", self.maker_id, {**details, "rule": refused})
            halt.refused += 1
            return
        order_id = self.venue.place(side, price, size, post_only=False)
        self.om.note_submitted(now, order_id, side, price, size)
        halt.orders += 1
        self.store.audit(halt.actor, "flatten_order", self.maker_id, {**details, "order_id": order_id})

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
        inst, ledger, guard = self.inst, self.ledger, self.guard
        mid = self.book.mid
        bid, ask = self.book.best_bid, self.book.best_ask
        return {
            "state": self.state,
            "error": self.error,
            "position": inst.qty(ledger.position),
            "cash": ledger.cash,
            "fees": ledger.fees,
            "pnl": ledger.pnl(inst, mid),
            "currency": inst.settle_currency,  # of pnl, cash and fees (the coin for inverse contracts)
            "fills": ledger.fills,
            "last_fill_seq": ledger.last_seq,
            "quotes": (quotes := self.quotes()),
            "open_orders": quotes,  # the API's name for them
            "best_bid": None if bid is None else inst.px(bid),
            "best_ask": None if ask is None else inst.px(ask),
            "decisions": self.decisions,
            "last_decision": self.last_decision,
            "market_time": self.venue.now,
            "slow_strategy": self.offload,
            "mean_decision_us": 1e6 * self.decision_seconds / self.decisions if self.decisions else None,
            "connection": self.venue.status() if hasattr(self.venue, "status") else None,
            "halted": None if self.halt is None else ("flattening" if self.halt.flatten else "halted"),
            "risk": {
                "enabled": guard is not None,
                "blocked": bool(guard is not None and guard.blocked),
                "halted": bool(guard is not None and guard.halted),
                "actions": guard.counts() if guard is not None else {},
            },
        }
