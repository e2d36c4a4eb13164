"""Shared pieces of the risk tests: a touch-joining strategy, a scripted venue, a gap in a stream."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field

from quotewise.backtest.runner import BacktestResult, run_backtest
from quotewise.backtest.source import DataSource
from quotewise.book.view import MarketView
from quotewise.data.store import EventData
from quotewise.execution.core import Ledger
from quotewise.execution.order_manager import OrderManager
from quotewise.model.instrument import Instrument
from quotewise.quoting.base import Quote, QuoteSet, Strategy, StrategyParams
from quotewise.risk import MarketState, RiskConfig, RiskEngine
from quotewise.sim.exchange import SimConfig

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
SECOND = 1_000_000_000
INST = Instrument(symbol="TEST", tick_size=0.01, lot_size=1.0)


class TouchParams(StrategyParams):
    lots: int = Field(1, ge=1, description="size of each quote, lots")
    depth: int = Field(1, ge=1, description="levels quoted on each side, one tick apart")


class Touch(Strategy):
    """Quotes ``depth`` levels from the best bid and ask: it trades often, so limits bind."""

    name = "touch"
    Params = TouchParams
    params: TouchParams

    def quotes(self, view: MarketView) -> QuoteSet:
        if view.best_bid is None or view.best_ask is None:
            return QuoteSet()
        n, lots = self.params.depth, self.params.lots
        return QuoteSet(
            [Quote(view.best_bid - k, lots) for k in range(n)],
            [Quote(view.best_ask + k, lots) for k in range(n)],
        )


class ScriptedVenue:
    """A venue that accepts every request and answers only when the test says so."""

    def __init__(self) -> None:
        self.now = T0
        self._next = 1
        self.cancels: list[int] = []

    def place(self, side: int, price: int, size: int, post_only: bool = True, reject_reason: int = 0) -> int:
        oid = self._next
        self._next += 1
        return oid

    def cancel(self, order_id: int) -> bool:
        self.cancels.append(order_id)
        return True


class Desk:
    """A risk engine, an order manager, a ledger and a scripted venue, driven by hand."""

    def __init__(self, inst: Instrument = INST, **limits: object) -> None:
        self.venue = ScriptedVenue()
        self.inst = inst
        self.om = OrderManager(self.venue)
        self.ledger = Ledger()
        self.risk = RiskEngine(RiskConfig(**limits), inst, self.ledger)
        self.fair: float | None = 10_000.0  # 100.00
        self.last_event: int | None = T0

    def market(self) -> MarketState:
        return MarketState(self.venue.now, self.fair, self.last_event)

    def at(self, seconds: float) -> Desk:
        self.venue.now = T0 + round(seconds * SECOND)
        self.last_event = self.venue.now
        return self

    def decide(self, bids: Sequence[tuple[int, int]] = (), asks: Sequence[tuple[int, int]] = ()) -> None:
        wanted = QuoteSet([Quote(p, s) for p, s in bids], [Quote(p, s) for p, s in asks])
        self.risk.decide(wanted, self.market(), self.om)

    def update(self) -> None:
        self.risk.update(self.market(), self.om)

    def ack_all(self) -> None:
        for o in list(self.om.orders.values()):
            if o.status == "pending_new":
                self.om.on_response("accepted", o.order_id, self.venue.now, o.left, "")

    def confirm_cancels(self) -> None:
        for o in list(self.om.orders.values()):
            if o.status == "pending_cancel":
                self.om.on_response("cancelled", o.order_id, self.venue.now, o.left, "")

    def fill(self, side: int, price: int, qty: int) -> None:
        """Fill ``qty`` of our order on ``side`` at ``price``, reported to both listeners."""
        o = next(o for o in self.om.orders.values() if o.side == side and o.price == price)
        self.om.on_response("fill", o.order_id, self.venue.now, o.left - qty, "")
        self.ledger.take(self.ledger.after(self.inst, side, price, qty, 0.0))

    def book(self, side: int) -> list[tuple[int, int, str]]:
        """Our orders on ``side`` as (price, size, status), best first."""
        orders = [o for o in self.om.orders.values() if o.side == side]
        return sorted(((o.price, o.size, o.status) for o in orders), key=lambda t: -side * t[0])

    def actions(self) -> list[tuple[str, str]]:
        return [(e.rule, e.action) for e in self.risk.events]


def with_gap(data: EventData, index: int, gap_ns: int) -> EventData:
    """The same stream with every event from ``index`` on moved ``gap_ns`` later."""
    events = data.events.copy()
    events["exch_ts"][index:] += gap_ns
    events["local_ts"][index:] += gap_ns
    return EventData(events, data.instrument, data.source, data.report)


def backtest(source: DataSource, out: Path, risk: RiskConfig, **params: object) -> BacktestResult:
    strategy = Touch(**params)
    return run_backtest(source, strategy, SimConfig(interval_ns=strategy.interval_ns), out, risk=risk)


def outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """fills, orders and risk events of a run directory."""
    return tuple(
        pq.read_table(out / f"{name}.parquet").to_pandas() for name in ("fills", "orders", "risk_events")
    )
