"""The decision core: one object that owns a market maker's strategy, risk engine, order manager and
ledger, driven the same way by the backtest runner and the live maker.

The data path, in both:

    market -> (the driver's book and clock) -> decide(): strategy -> risk -> order manager -> venue
    venue responses -> on_response(): ledger (fills) -> order manager -> risk, strategy

The driver owns the clock and the book (a replay, or a live feed) and says when to decide; the core
owns what is decided and what is known of our orders and account. Our position, cash, fees and fill
count live in one place, the :class:`Ledger`, built from the fill reports as they arrive (never from
the venue's own books); the risk engine reads it. A live maker must store a fill before anything
acts on it: :attr:`DecisionCore.record_fill` is that hook, called with the fill and the ledger it
leaves, before the ledger moves; it returns False for a fill already counted (a replayed report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quotewise.book.view import MarketView
from quotewise.execution.order_manager import OrderManager, Venue
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.quoting.base import Quote, QuoteSet, Strategy
from quotewise.risk import MarketState, RiskConfig, RiskEngine


@dataclass(slots=True)
class Ledger:
    """Our account as the fill reports tell it: position (lots), cash and fees (settlement currency),
    fills counted and the venue sequence number of the last one (live venues number them)."""

    position: int = 0
    cash: float = 0.0
    fees: float = 0.0
    fills: int = 0
    last_seq: int = 0

    def after(self, inst: Instrument, side: int, price: int, qty: int, fee: float, seq: int = 0) -> Ledger:
        """The ledger once this fill is booked (this one unchanged)."""
        return Ledger(
            self.position + side * qty,
            self.cash + inst.cash_flow(side, price, qty, fee),
            self.fees + fee,
            self.fills + 1,
            max(self.last_seq, seq),
        )

    def take(self, other: Ledger) -> None:
        self.position, self.cash, self.fees = other.position, other.cash, other.fees
        self.fills, self.last_seq = other.fills, other.last_seq

    def pnl(self, inst: Instrument, mark: float | None) -> float:
        """Cash plus the position marked at ``mark`` (ticks); cash alone without a mark."""
        return self.cash + inst.value(mark, self.position) if mark is not None else self.cash


class DecisionCore:
    """See the module docstring. ``venue`` takes orders and cancels (``place``/``cancel``/``now``)."""

    def __init__(
        self,
        instrument: Instrument,
        venue: Venue,
        strategy: Strategy,
        risk: RiskConfig | None = None,
        record_fill: Callable[[Response, int, Ledger], bool] | None = None,
    ) -> None:
        self.inst = instrument
        self.ledger = Ledger()
        self.om = OrderManager(venue, post_only=strategy.params.post_only)
        # a real venue: never more orders alive per side than the strategy quotes (see OrderManager)
        self._strict = bool(getattr(venue, "strict_order_count", False))
        self.record_fill = record_fill
        self.strategy = strategy
        self.guard: RiskEngine | None = None
        self.use(strategy, risk)

    def use(self, strategy: Strategy, risk: RiskConfig | None) -> None:
        """Start (or switch to) ``strategy`` and ``risk``; position, orders and ledger carry over."""
        strategy.on_start(self.inst)
        self.strategy = strategy
        self.om.post_only = strategy.params.post_only
        self.om.max_per_side = getattr(strategy.params, "max_orders", 1) if self._strict else None
        self.guard = RiskEngine(risk, self.inst, self.ledger) if risk is not None else None

    # -- what the venue says ----------------------------------------------------------------------
    def on_response(self, r: Response, seq: int = 0, view: Callable[[], MarketView] | None = None) -> bool:
        """One venue response: a fill goes to the ledger (through :attr:`record_fill`), then the order
        manager, then the strategy (with ``view()``, the market now); False when a fill was already
        counted and so ignored."""
        if r.kind != "fill":
            self.om.on_response(r.kind, r.order_id, r.exch_ts, r.left, r.reason)
            return True
        if not self.book_fill(r, seq):
            return False
        if view is not None:
            self.strategy.on_fill(r, view())
        return True

    def book_fill(self, r: Response, seq: int = 0) -> bool:
        """A fill to the ledger and the order manager (a live venue's recovered fills come this way
        too, their order possibly unknown here); False when it was already counted."""
        if seq and seq <= self.ledger.last_seq:
            return False
        after = self.ledger.after(self.inst, r.side, r.price, r.qty, r.fee, seq)
        if self.record_fill is not None and not self.record_fill(r, seq, after):
            return False
        self.ledger.take(after)
        self.om.on_response("fill", r.order_id, r.exch_ts, r.left, "")
        return True

    # -- decisions ----------------------------------------------------------------------------------
    def decide(self, view: MarketView, market: MarketState | None) -> bool:
        """The strategy's quotes for ``view``, through risk, to the venue (see :meth:`act`; ``market``
        only with a risk engine)."""
        wanted = self.strategy.quotes(view)
        return self.act(wanted.bids, wanted.asks, market)

    def act(self, bids: Sequence[Quote], asks: Sequence[Quote], market: MarketState | None = None) -> bool:
        """Wanted quotes (ticks, lots) through the risk engine to the order manager; True when our
        orders are now exactly these (no risk engine in between, no cancel refused). The risk engine
        needs ``market``."""
        if self.guard is None:
            return self.om.reconcile(bids, asks)
        assert market is not None, "the risk engine decides on the market"
        self.guard.decide(QuoteSet(list(bids), list(asks)), market, self.om)
        return False

    def watch(self, market: MarketState) -> None:
        """No decision now: the risk engine still applies its market rules (stale data, losses)."""
        if self.guard is not None:
            self.guard.update(market, self.om)

    def next_wake(self, now: int) -> int | None:
        """When the risk engine must act even if nothing happens (a pause ending, data going stale)."""
        return self.guard.next_wake(now) if self.guard is not None else None
