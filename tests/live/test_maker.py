"""A maker with a built-in strategy decides inside the venue's callback when idle, past the
engine-wide budget on the loop's next pass; a Python strategy decides in its task."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from venues_for_tests import SYMMETRIC, RecordingVenue, book, symmetric_maker

from quotewise.live import scheduler as scheduler_module
from quotewise.live.lane import Lane
from quotewise.live.maker import Maker
from quotewise.live.scheduler import InlineBudget, Scheduler, keep_warm
from quotewise.live.store import Store, db_url
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.quoting.loader import make_strategy


@pytest.fixture(params=["own turn", "lane"])
def lane(request):
    """Built-in makers on their own turns, and in a lane (each test runs both ways)."""
    return Lane() if request.param == "lane" else None


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "m.db")))
    yield s
    s.close()


def test_a_built_in_strategy_quotes_within_the_callback(store, lane):
    scheduler = Scheduler(InlineBudget(1_000), lane)
    venue = RecordingVenue()
    maker = symmetric_maker("m1", venue, store, scheduler)
    maker.on_market(book(9_999, 10_001))
    assert ("place", 1, 9_999) in venue.sent and ("place", -1, 10_001) in venue.sent
    assert maker.decisions == 1
    venue.sent.clear()
    maker.on_market(book(10_004, 10_006))  # the touch moved: old quotes cancelled, new ones placed
    assert [s[0] for s in venue.sent].count("cancel") == 2 and ("place", 1, 10_004) in venue.sent


def test_a_python_strategy_waits_for_its_task(store):
    venue = RecordingVenue()
    ladder = Maker("m2", venue, store, make_strategy("ladder", SYMMETRIC))
    ladder.on_market(book(9_999, 10_001))
    assert venue.sent == [] and ladder.decisions == 0  # the ladder runs its Python quotes() in the task


def test_past_the_budget_updates_pile_up_for_one_decision_on_the_next_loop_pass(store, lane):
    scheduler = Scheduler(InlineBudget(0), lane)

    async def scenario() -> None:
        venue = RecordingVenue()
        busy = symmetric_maker("m3", venue, store, scheduler)
        busy.on_market(book(9_999, 10_001))
        busy.on_market(book(9_997, 9_999))
        assert venue.sent == [] and busy.decisions == 0
        await asyncio.sleep(0)
        assert busy.decisions == 1  # both updates, one decision
        assert venue.sent == [("place", 1, 9_997), ("place", -1, 9_999)]  # quoted on the latest book

    asyncio.run(scenario())


def test_a_failing_turn_in_the_callback_fails_the_maker_not_the_venue(store, lane):
    scheduler = Scheduler(InlineBudget(1_000), lane)

    class BrokenVenue(RecordingVenue):
        def place(self, side, price, size, post_only=True, reject_reason=0) -> int:
            raise ConnectionError("venue down")

    strategy = make_strategy("symmetric", {"spread": "1tick"})
    maker = Maker("m4", BrokenVenue(), store, strategy, scheduler=scheduler)
    reported = []
    maker.on_failure = lambda m, error, exc: reported.append((m.maker_id, error, exc))
    maker.on_market(book(9_999, 10_001))  # does not raise into the venue
    assert maker.state == "failed" and "venue down" in maker.error
    [(maker_id, error, exc)] = reported
    assert (maker_id, error) == ("m4", maker.error)
    assert isinstance(exc, ConnectionError) and exc.__traceback__ is not None  # its traceback, for the engine
    maker.on_market(book(9_998, 10_000))  # a failed maker takes no more turns
    assert maker.decisions == 0


def response(kind: str, order_id: int, side: int, price: int, left: int = 1) -> tuple[Response, int]:
    return Response(kind, order_id, 0, 0, side, price, 0, left, True, "", 0, 0.0, 0.0, -1), 0


def test_an_update_that_leaves_the_quotes_alone_sends_nothing(store, lane):
    scheduler = Scheduler(InlineBudget(1_000), lane)
    venue = RecordingVenue()
    maker = symmetric_maker("m5", venue, store, scheduler)
    maker.on_market(book(9_999, 10_001))
    maker.on_responses([response("accepted", 1, 1, 9_999), response("accepted", 2, -1, 10_001)])
    sent = list(venue.sent)
    update = book(9_999, 10_001)
    update["size"] = 3  # sizes change, the touch does not
    maker.on_market(update)
    assert venue.sent == sent and maker.decisions == 2


def test_an_order_the_venue_ended_on_its_own_is_quoted_again(store, lane):
    """A cancel we did not ask for (or a reject) changes the orders: the same quotes are placed again,
    with no market update needed."""
    scheduler = Scheduler(InlineBudget(1_000), lane)
    venue = RecordingVenue()
    maker = symmetric_maker("m6", venue, store, scheduler)
    maker.on_market(book(9_999, 10_001))
    maker.on_responses([response("accepted", 1, 1, 9_999), response("accepted", 2, -1, 10_001)])
    venue.sent.clear()
    maker.on_responses([response("cancelled", 1, 1, 9_999)])  # e.g. the venue expired it
    assert venue.sent == [("place", 1, 9_999)]
    venue.sent.clear()
    maker.on_responses([response("rejected", 3, 1, 9_999)])
    assert venue.sent == [("place", 1, 9_999)]


def test_a_cancel_the_venue_refused_is_asked_again_at_the_next_decision(store, lane):
    scheduler = Scheduler(InlineBudget(1_000), lane)

    class RefusingVenue(RecordingVenue):
        refuse = True

        def cancel(self, order_id) -> bool:
            self.sent.append(("cancel", order_id))
            return not self.refuse

    venue = RefusingVenue()
    maker = symmetric_maker("m7", venue, store, scheduler)
    maker.on_market(book(9_999, 10_001))
    venue.sent.clear()
    maker.on_market(book(9_995, 9_997))  # the touch moved: cancels refused, the old orders stay live
    refused = [s for s in venue.sent if s[0] == "cancel"]
    assert refused
    venue.sent.clear()
    venue.refuse = False
    maker.on_market(book(9_995, 9_997))  # the same quotes: the refused cancels go again, nothing else
    assert venue.sent == refused


def test_a_rehearsal_changes_nothing(store, lane):
    scheduler = Scheduler(InlineBudget(1_000), lane)
    venue = RecordingVenue()
    maker = symmetric_maker("m8", venue, store, scheduler)
    maker.rehearse()  # no book yet: nothing to rehearse, nothing raised
    maker.on_market(book(9_999, 10_001))
    before = (maker.book.bid.copy(), maker.book.st.copy(), dict(maker.om.orders), list(venue.sent))
    maker.rehearse()
    after = (maker.book.bid, maker.book.st, maker.om.orders, venue.sent)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:] and maker.decisions == 1 and not maker.om.log


def test_a_one_sided_book_leaves_the_task_waiting(store, lane):
    """With a side of the book empty there is nothing to quote on: the maker waits for the next input
    (it used to wake its task again at once, thousands of times a second)."""
    scheduler = Scheduler(InlineBudget(1_000), lane)

    async def scenario() -> None:
        venue = RecordingVenue()
        maker = symmetric_maker("m9", venue, store, scheduler)
        turns = []  # every turn starts by taking its queued input
        process_inputs = maker.process_inputs
        maker.process_inputs = lambda: turns.append(1) or process_inputs()
        task = asyncio.create_task(maker.run())
        maker.on_market(book(9_999, 10_001)[:1])  # a bid, no ask
        await asyncio.sleep(0.05)
        assert venue.sent == [] and len(turns) <= 2
        maker.on_market(book(9_999, 10_001)[1:])  # the ask arrives: quoted at once
        assert venue.sent == [("place", 1, 9_999), ("place", -1, 10_001)]
        maker.end("stopped")
        task.cancel()

    asyncio.run(scenario())


def test_a_fill_while_stopping_places_nothing(store, lane):
    """A fill that arrives while the maker cancels its orders wakes its task to store the fill; the
    task must not quote again (it used to, leaving an order open after ``mm stop``)."""
    scheduler = Scheduler(InlineBudget(1_000), lane)

    async def scenario() -> None:
        venue = RecordingVenue()
        maker = symmetric_maker("m10", venue, store, scheduler)
        task = asyncio.create_task(maker.run())
        maker.on_market(book(9_999, 10_001))  # orders 1 (bid) and 2 (ask)
        await asyncio.sleep(0)
        stopping = asyncio.create_task(maker.cancel_all("operator stop", wait_s=0.05))
        await asyncio.sleep(0)  # cancels sent, waiting for their confirmations
        venue.sent.clear()
        fill = Response("fill", 1, 0, 0, 1, 9_999, 1, 0, True, "", 1, 0.0, 0.0, -1)
        maker.on_responses([(fill, 1)])
        await stopping
        assert maker.fills == 1 and venue.sent == []
        task.cancel()

    asyncio.run(scenario())


def test_keep_warm_rehearses_makers_idle_a_while_and_lets_quiet_ones_cool(monkeypatch):
    monkeypatch.setattr(scheduler_module, "KEEP_WARM_FOR_S", 0.2)

    class Idle:
        def __init__(self, active_ago: float) -> None:
            self.active_at = time.perf_counter() - active_ago
            self.rehearsals = 0

        def rehearse(self) -> None:
            self.rehearsals += 1

    async def scenario() -> None:
        busy, cooling, cold = Idle(0.0), Idle(0.01), Idle(5.0)
        warmer = asyncio.create_task(keep_warm(lambda: [busy, cooling, cold], 0.002))
        end = time.perf_counter() + 0.03
        while time.perf_counter() < end:
            busy.active_at = time.perf_counter()  # a turn at every pass of the loop
            await asyncio.sleep(0)
        assert cooling.rehearsals >= 5 and busy.rehearsals <= cooling.rehearsals // 5 and cold.rehearsals == 0
        await asyncio.sleep(0.25)  # now no maker has had a turn for KEEP_WARM_FOR_S
        done = cooling.rehearsals + busy.rehearsals
        await asyncio.sleep(0.05)
        assert cooling.rehearsals + busy.rehearsals == done and cold.rehearsals == 0  # left to cool
        warmer.cancel()

    asyncio.run(scenario())


def test_status_shows_prices_and_sizes_on_the_instruments_grid(store):
    venue = RecordingVenue()
    venue.instrument = Instrument(symbol="T", tick_size=0.01, lot_size=0.1)
    venue.price_range = (58_000, 59_000)
    maker = Maker("m9", venue, store, make_strategy("symmetric", {**SYMMETRIC, "size": 0.3}))
    maker.on_market(book(58_480, 58_482))  # in floats 58,480 x 0.01 is 584.8000000000001
    bid = next(o for o in maker.om.orders.values() if o.side == 1)
    fill = Response("fill", bid.order_id, 1, 1, 1, 58_480, 3, 0, True, "", 3, 0.0, 0.0, -1)
    maker.on_responses([(fill, 1)])
    status = maker.status()
    assert (status["best_bid"], status["best_ask"], status["position"]) == (584.8, 584.82, 0.3)
    assert [(q["side"], q["price"], q["size"]) for q in status["quotes"]] == [
        ("bid", 584.8, 0.3),
        ("ask", 584.82, 0.3),
    ]
