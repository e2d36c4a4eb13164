"""One market maker: a strategy quoting one market on one venue, live.

The same parts as the backtest (``Strategy``, ``RiskEngine``, ``OrderManager``) on the same data
path: market events -> the maker's own book -> strategy -> risk -> order manager -> venue; venue
responses -> store (committed) -> order manager, risk, strategy. Venue callbacks only queue work and
set an event; the maker's task does the work, so a venue never waits on a maker, and market updates
that piled up are applied together (coalesced) before one decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import numpy as np

from quotewise.book.orderbook import OrderBook
from quotewise.execution.order_manager import OrderManager, WorkingOrder
from quotewise.live.store import OrderRecord, PositionRecord, Store
from quotewise.live.venue import Venue, VenueFill
from quotewise.quoting.base import MAX_VIEW_EVENTS, MarketView, QuoteSet, Strategy
from quotewise.risk import MarketState, RiskConfig, RiskEngine
from quotewise.sim.exchange import Response

# a strategy whose decisions take longer than this runs them in a worker thread from then on, so
# the event loop keeps serving the other makers
SLOW_DECISION_S = 0.005
STORE_STATUS = {"pending_new": "submitted", "working": "working", "pending_cancel": "cancel_requested"}


class Maker:
    """See the module docstring. ``run()`` is its task; ``status()`` what ``mm status`` shows."""

    def __init__(
        self,
        maker_id: str,
        venue: Venue,
        store: Store,
        strategy: Strategy,
        risk: RiskConfig | None = None,
    ) -> None:
        self.maker_id = maker_id
        self.venue = venue
        self.store = store
        self.inst = venue.instrument
        self.strategy = strategy
        strategy.on_start(self.inst)
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
        self.last_event: int | None = None
        self.decision_seconds = 0.0
        self.offload = False
        self.state = "running"
        self.error = ""
        self.coalesced = 0  # market updates applied together with another before a decision
        self.on_decided: Any = None  # hook for the latency benchmark: called after each decision
        venue.subscribe(self)

    # -- what the venue calls (never blocks) ----------------------------------------------------------
    def on_market(self, events: np.ndarray) -> None:
        self._events.append(events)
        self._wake.set()

    def on_responses(self, responses: list[tuple[Response, int]]) -> None:
        self._responses.extend(responses)
        self._wake.set()

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
        for oid in closed:
            o = self.om.orders.pop(oid)
            self.om.log.clear()
            self.store.upsert_orders(
                self.maker_id, [OrderRecord(oid, o.side, o.price, o.size, o.left, "closed", self.venue.now)]
            )
        unknown = [oid for oid in at_venue if oid not in self.om.orders]
        for oid in unknown:
            self.venue.cancel(oid)
        self._persist_orders()
        return {"fills_recovered": recovered, "orders_closed": len(closed), "unknown_cancelled": len(unknown)}

    # -- the task ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Wait for input or the next decision time; process; repeat until stopped."""
        interval = self.strategy.interval_ns
        while self.state == "running":
            due = self.next_decision - self.venue.now
            wait = max(due, 0) / 1e9 / self.speed if self.next_decision else 0.05
            with contextlib.suppress(TimeoutError):  # asyncio.timeout, unlike wait_for, never eats a cancel
                async with asyncio.timeout(min(max(wait, 0.0005), 1.0)):
                    await self._wake.wait()
            self._wake.clear()
            self.process_inputs()
            now = self.venue.now
            two_sided = self.book.best_bid is not None and self.book.best_ask is not None
            if now >= self.next_decision and two_sided:
                await self.decide(now)
                self.next_decision = now + interval
            elif self.guard is not None:
                self.guard.update(self._market(now), self.om)
            self._persist_orders()

    def process_inputs(self) -> None:
        """Apply queued market events to the book, then queued responses (each fill stored first)."""
        events, self._events = self._events, []
        if events:
            self.coalesced += len(events) - 1
            batch = events[0] if len(events) == 1 else np.concatenate(events)
            self.book.apply(batch)
            self._seen.append(batch)
            self.last_event = int(batch["local_ts"][-1])
        responses, self._responses = self._responses, []
        view: MarketView | None = None
        for r, seq in responses:
            if r.kind == "fill":
                fill = VenueFill(seq, r.order_id, r.exch_ts, r.side, r.price, r.qty, r.left, r.fee, r.maker)
                if self._apply_fill(fill):
                    view = view or self._view(self.venue.now)
                    self.strategy.on_fill(r, view)
            else:
                self.om.on_response(r.kind, r.order_id, r.exch_ts, r.qty, r.left, r.reason)

    def _apply_fill(self, fill: VenueFill) -> bool:
        """Store the fill with the position it leaves (committed), then update the order manager;
        False when it was already counted."""
        if fill.seq <= self.last_seq:
            return False
        notional = fill.price * fill.qty * self.inst.tick_size * self.inst.lot_size
        position = self.om.position + fill.side * fill.qty
        cash = self.cash - fill.side * notional - fill.fee
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

    async def decide(self, now: int) -> None:
        """One decision: the strategy's quotes, through risk, reconciled with our orders."""
        if self._pending_config is not None:
            self.strategy, risk = self._pending_config
            self.strategy.on_start(self.inst)
            self.om.post_only = self.strategy.params.post_only
            self.guard = self._new_guard(risk)
            self._pending_config = None
        view = self._view(now, with_events=True)
        t0 = time.perf_counter()
        if self.offload:
            wanted = await asyncio.to_thread(self.strategy.quotes, view)
        else:
            wanted = self.strategy.quotes(view)
        spent = time.perf_counter() - t0
        self.decision_seconds += spent
        if spent > SLOW_DECISION_S:
            self.offload = True
        if self.state != "running":  # stopped while the strategy was thinking
            return
        self._reconcile(wanted, now)
        self.decisions += 1
        self.last_decision = now
        if self.on_decided is not None:
            self.on_decided(self)

    def _reconcile(self, wanted: QuoteSet, now: int) -> None:
        if self.guard is None:
            self.om.reconcile(wanted)
            return
        before = len(self.guard.events)
        self.guard.decide(wanted, self._market(now), self.om)
        self.store.add_risk_events(self.maker_id, self.guard.events[before:])

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

    def _persist_orders(self) -> None:
        """Every order state change since the last call, one transaction."""
        if not self.om.log:
            return
        latest: dict[int, OrderRecord] = {}
        for e in self.om.log:
            left = e.size - e.filled
            latest[e.order_id] = OrderRecord(e.order_id, e.side, e.price, e.size, left, e.status, e.ts)
        self.om.log.clear()
        self.store.upsert_orders(self.maker_id, list(latest.values()))

    # -- control -----------------------------------------------------------------------------------
    def reconfigure(self, strategy: Strategy, risk: RiskConfig | None) -> None:
        """New settings, taken at the next decision (the position and orders carry over)."""
        self._pending_config = (strategy, risk)
        self.next_decision = 0
        self._wake.set()

    async def cancel_all(self, reason: str, wait_s: float = 2.0) -> int:
        """Stop quoting, cancel every order and wait (bounded) for the venue to confirm; returns the
        number of orders still open."""
        self.state = "stopping"  # the task decides no more
        self.om.cancel_all(reason)
        self._persist_orders()
        deadline = time.monotonic() + wait_s
        while self.om.orders and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            self.process_inputs()
            self._persist_orders()
        return len(self.om.orders)

    def quotes(self) -> list[dict[str, Any]]:
        inst = self.inst
        return [
            {
                "order_id": o.order_id,
                "side": "bid" if o.side == 1 else "ask",
                "price": o.price * inst.tick_size,
                "size": o.left * inst.lot_size,
                "status": o.status,
            }
            for o in sorted(self.om.orders.values(), key=lambda o: (-o.side, -o.side * o.price))
        ]

    def status(self) -> dict[str, Any]:
        inst = self.inst
        mid = self.book.mid
        position = self.om.position * inst.lot_size
        guard = self.guard
        return {
            "state": self.state,
            "error": self.error,
            "position": position,
            "cash": self.cash,
            "fees": self.fees,
            "pnl": self.cash + position * mid * inst.tick_size if mid is not None else self.cash,
            "fills": self.fills,
            "last_fill_seq": self.last_seq,
            "quotes": self.quotes(),
            "best_bid": None if self.book.best_bid is None else self.book.best_bid * inst.tick_size,
            "best_ask": None if self.book.best_ask is None else self.book.best_ask * inst.tick_size,
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
