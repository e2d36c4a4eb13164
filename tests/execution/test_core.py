"""The decision core: one ledger from the fill reports, the strategy -> risk -> order manager path,
and the hook that stores a fill before anything acts on it."""

from __future__ import annotations

import pytest

from quotewise.execution.core import DecisionCore, Ledger
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.quoting.base import Quote, QuoteSet, Strategy
from quotewise.risk import MarketState, RiskConfig

INST = Instrument(symbol="T", tick_size=0.01, lot_size=1.0)


class Venue:
    now = 0

    def __init__(self) -> None:
        self.placed: list[tuple[int, int, int]] = []
        self.cancelled: list[int] = []

    def place(self, side, price, size, post_only=True, reject_reason=0) -> int:
        self.placed.append((side, price, size))
        return len(self.placed)

    def cancel(self, order_id) -> bool:
        self.cancelled.append(order_id)
        return True


class Fixed(Strategy):
    name = "fixed"

    def __init__(self) -> None:
        super().__init__()
        self.fills: list[tuple[int, int]] = []

    def quotes(self, view) -> QuoteSet:
        return QuoteSet([Quote(9_999, 2)], [Quote(10_001, 2)])

    def on_fill(self, fill, view) -> None:
        self.fills.append((fill.order_id, view.position))


def fill(order_id: int, side: int, price: int, qty: int, left: int, fee: float = 0.0) -> Response:
    return Response("fill", order_id, 0, 0, side, price, qty, left, True, "", 0, 0.0, fee, -1)


def market(fair: float = 10_000.0) -> MarketState:
    return MarketState(0, fair, 0)


def test_fills_move_one_ledger_that_the_strategy_and_the_risk_engine_read():
    venue = Venue()
    strategy = Fixed()
    core = DecisionCore(INST, venue, strategy, RiskConfig(max_pos=3))
    core.decide(None, market())  # Fixed ignores the view
    assert venue.placed == [(1, 9_999, 2), (-1, 10_001, 2)]
    core.on_response(Response("accepted", 1, 0, 0, 1, 9_999, 0, 2, False, "", 0, 0.0, 0.0, -1))
    views = []
    core.on_response(fill(1, 1, 9_999, 2, 0, fee=0.01), view=lambda: views.append(1) or _View(core))
    ledger = core.ledger
    assert (ledger.position, ledger.fees, ledger.fills) == (2, 0.01, 1)
    assert ledger.cash == pytest.approx(-199.98 - 0.01, rel=1e-12)
    assert strategy.fills == [(1, 2)] and views == [1]
    assert core.guard is not None and core.guard.account is core.ledger  # one copy, read by the risk engine
    core.decide(None, market())  # position 2 of max 3 (from the ledger): 1 lot of bid room left
    assert (1, 9_999, 1) in venue.placed[2:]


class _View:
    def __init__(self, core: DecisionCore) -> None:
        self.position = core.ledger.position


def test_a_fill_is_stored_before_the_ledger_moves_and_a_replayed_one_is_not_counted_twice():
    stored: list[tuple[int, int, float]] = []

    def record(r, seq, after: Ledger) -> bool:
        if any(s == seq for s, _, _ in stored):
            return False  # already stored (a report delivered twice)
        assert core.ledger.fills == len(stored)  # the ledger has not moved yet
        stored.append((seq, after.position, after.cash))
        return True

    core = DecisionCore(INST, Venue(), Fixed(), record_fill=record)
    assert core.book_fill(fill(7, -1, 10_000, 3, 0), seq=1)
    assert not core.book_fill(fill(7, -1, 10_000, 3, 0), seq=1)  # same sequence number
    assert core.book_fill(fill(8, 1, 9_990, 1, 0), seq=2)
    assert stored == [(1, -3, pytest.approx(300.0)), (2, -2, pytest.approx(300.0 - 99.9))]
    assert (core.ledger.position, core.ledger.fills, core.ledger.last_seq) == (-2, 2, 2)


def test_inverse_fills_book_coins():
    coinm = Instrument(symbol="X", tick_size=0.1, contract="inverse", contract_size=100.0)
    core = DecisionCore(coinm, Venue(), Fixed())
    core.book_fill(fill(1, 1, 600_000, 2, 0))
    assert core.ledger.cash == pytest.approx(2 * 100 / 60_000, rel=1e-12)
    assert core.ledger.pnl(coinm, 660_000) == pytest.approx(200 * (1 / 60_000 - 1 / 66_000), rel=1e-12)


def test_switching_strategy_and_limits_keeps_position_and_orders():
    core = DecisionCore(INST, Venue(), Fixed())
    core.decide(None, market())
    core.book_fill(fill(1, 1, 9_999, 2, 0))
    orders = dict(core.om.orders)
    core.use(Fixed(), RiskConfig(max_pos=1))
    assert core.ledger.position == 2 and core.om.orders == orders
    assert core.guard is not None and core.guard.account is core.ledger
