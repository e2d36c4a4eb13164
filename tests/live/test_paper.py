"""The paper venue: the backtest's exchange in real time, numbered fills, rebuilt after a crash."""

from __future__ import annotations

import pytest

from quotewise.book.orderbook import OrderBook
from quotewise.errors import ConfigError
from quotewise.live.paper import PaperVenue
from quotewise.live.store import Store, db_url
from quotewise.live.venue import NotSupported

SECOND = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.t = 1_000 * SECOND

    def __call__(self) -> int:
        return self.t


class Listener:
    def __init__(self, venue: PaperVenue) -> None:
        self.book = OrderBook(*venue.price_range)
        self.responses: list = []
        self.events = 0

    def on_market(self, events) -> None:
        self.book.apply(events)
        self.events += len(events)

    def on_responses(self, responses) -> None:
        self.responses += responses


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "paper.db")))
    yield s
    s.close()


def quote_both_sides(venue: PaperVenue, book: OrderBook) -> None:
    venue.place(1, book.best_bid, 1)
    venue.place(-1, book.best_ask, 1)


def run_for(
    venue: PaperVenue, clock: Clock, seconds: float, listener: Listener, requote: bool = True
) -> None:
    """Step the venue every 100 ms of wall time; keep a bid and an ask at the touch."""
    for _ in range(int(seconds * 10)):
        clock.t += SECOND // 10
        venue.step()
        if requote and listener.book.best_bid is not None and not venue.open_orders():
            quote_both_sides(venue, listener.book)


def fills_of(listener: Listener) -> list[tuple]:
    return [(r, seq) for r, seq in listener.responses if r.kind == "fill"]


def test_orders_fill_and_every_fill_is_numbered_and_stored(store):
    clock = Clock()
    venue = PaperVenue("mm-1", "synthetic:300000", store, speed=5.0, clock=clock)
    listener = Listener(venue)
    venue.subscribe(listener)
    run_for(venue, clock, 20, listener)
    got = fills_of(listener)
    assert listener.events > 1000 and len(got) >= 4
    seqs = [seq for _, seq in got]
    assert seqs == list(range(1, len(seqs) + 1))
    stored = venue.fills_since(0)
    assert [f.seq for f in stored] == seqs and [f.qty for f in stored] == [r.qty for r, _ in got]
    position, cash, _ = venue.position()
    assert position == sum(f.side * f.qty for f in stored)
    assert cash == pytest.approx(got[-1][0].cash)
    assert {r.kind for r, _ in listener.responses} >= {"accepted", "fill"}


def test_replay_runs_at_the_given_speed(store):
    clock = Clock()
    venue = PaperVenue("mm-1", "synthetic:100000", store, speed=4.0, clock=clock)
    start = venue.replay_time()
    clock.t += 3 * SECOND
    assert venue.replay_time() - start == 12 * SECOND


def test_a_restored_venue_continues_exactly_and_fills_during_the_downtime(store, tmp_path):
    clock = Clock()
    venue = PaperVenue("mm-1", "synthetic:2000000", store, speed=5.0, clock=clock)
    listener = Listener(venue)
    venue.subscribe(listener)
    run_for(venue, clock, 15, listener)
    quote_both_sides(venue, listener.book)
    clock.t += SECOND // 10
    venue.step()  # the new orders reach the exchange; the state is saved with them
    venue.save()
    before_orders, before_position = venue.open_orders(), venue.position()
    last_seq = venue.fills_since(0)[-1].seq
    assert before_orders, "orders should be resting when the process dies"

    # the process dies here (no close); a new venue is built from the same store
    revived = PaperVenue("mm-1", "synthetic:2000000", store, speed=5.0, clock=clock, resume=True)
    assert revived.open_orders() == before_orders
    assert revived.position() == before_position

    # the venue that never died goes on in a store of its own: it is what "the market went on" means
    venue.store = Store(db_url(str(tmp_path / "twin.db")))
    down = 0
    while len(venue.fills_since(0)) == 0:
        clock.t += SECOND
        down += 1
        venue.step()
        assert down < 600, "no fill in 10 minutes of replay"
    revived.step()  # the first step after the restart replays the whole downtime
    missed = revived.fills_since(last_seq)
    assert [f.seq for f in missed] == list(range(last_seq + 1, last_seq + 1 + len(missed)))
    twin = venue.fills_since(0)
    assert [(f.order_id, f.exch_ts, f.price, f.qty) for f in missed] == [
        (f.order_id, f.exch_ts, f.price, f.qty) for f in twin
    ]
    assert revived.position() == venue.position()
    assert revived.open_orders() == venue.open_orders()


def test_when_the_data_ends_the_venue_answers_every_order_itself(store):
    clock = Clock()
    venue = PaperVenue("mm-1", "synthetic:5000", store, clock=clock)  # about 3 s of market
    listener = Listener(venue)
    venue.subscribe(listener)
    answered_at_end: list[int] = []
    venue.on_end = lambda: answered_at_end.append(len(listener.responses))
    run_for(venue, clock, 0.5, listener, requote=False)
    far_bid = venue.place(1, listener.book.best_bid - 200, 1)  # far from the touch: never filled
    far_ask = venue.place(-1, listener.book.best_ask + 200, 1)
    for _ in range(100):
        clock.t += SECOND // 10
        if not venue.step():
            break
    ours = {r.order_id: r for r, _ in listener.responses if r.kind != "accepted"}
    answers = [(ours[oid].kind, ours[oid].reason) for oid in (far_bid, far_ask)]
    assert answers == [("cancelled", "data ended")] * 2
    assert venue.open_orders() == [] and venue.ended and not venue.step()
    assert answered_at_end == [2]  # the engine hears of the end before the answers are handed out

    late = venue.place(1, listener.book.best_bid, 1)  # nothing would ever match it: refused
    assert not venue.cancel(late)
    clock.t += SECOND // 10
    venue.step()
    assert (listener.responses[-1][0].order_id, listener.responses[-1][0].kind) == (late, "rejected")
    assert venue.open_orders() == [] and answered_at_end == [2]


def test_amend_is_not_supported_and_bad_data_is_named(store, tmp_path):
    venue = PaperVenue("mm-1", "synthetic:50000", store, clock=Clock())
    with pytest.raises(NotSupported):
        venue.amend(1, 100, 1)
    with pytest.raises(ConfigError, match="not found"):
        PaperVenue("mm-2", str(tmp_path / "missing.gz"), store)
    with pytest.raises(ConfigError, match="speed"):
        PaperVenue("mm-3", "synthetic:1000", store, speed=0)
    with pytest.raises(ConfigError, match="synthetic"):
        PaperVenue("mm-4", "synthetic:lots", store)
