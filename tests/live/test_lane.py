"""The lane applies many makers' book updates in one compiled call: every book ends as if it had
taken its updates alone, and only makers whose touch moved take a turn."""

from __future__ import annotations

import asyncio

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from venues_for_tests import SYMMETRIC, RecordingVenue, book, symmetric_maker

from quotewise.book.orderbook import OrderBook
from quotewise.live.lane import Lane
from quotewise.live.maker import Maker
from quotewise.live.scheduler import InlineBudget, Scheduler
from quotewise.live.store import Store, db_url
from quotewise.model.events import ADD, DELETE, EVENT_DTYPE, SET
from quotewise.quoting.loader import make_strategy
from quotewise.risk import RiskConfig

updates = st.lists(
    st.tuples(
        st.integers(0, 2),  # which maker
        st.sampled_from([SET, ADD, DELETE]),
        st.sampled_from([1, -1]),
        st.integers(9_990, 10_010),
        st.integers(0, 5),
        st.booleans(),  # drain after this update
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(updates)
def test_every_book_ends_as_if_it_took_its_updates_alone(tmp_path_factory, script):
    store = Store(db_url(str(tmp_path_factory.mktemp("lane") / "l.db")))
    lane = Lane(capacity=8)  # small, so the buffer grows too
    scheduler = Scheduler(lane=lane)

    async def scenario() -> None:
        makers = [symmetric_maker(f"m{i}", RecordingVenue(), store, scheduler) for i in range(3)]
        alone = [OrderBook(*RecordingVenue.price_range) for _ in makers]
        for who, kind, side, price, size, drain in script:
            ev = np.zeros(1, dtype=EVENT_DTYPE)
            ev["kind"], ev["side"], ev["price"], ev["size"] = kind, side, price, size
            lane.push(lane.makers.index(makers[who]), ev)
            alone[who].apply(ev)
            if drain:
                lane.drain()
        lane.drain()
        for maker, reference in zip(makers, alone, strict=True):
            assert np.array_equal(maker.book.bid, reference.bid)
            assert np.array_equal(maker.book.ask, reference.ask)
            assert np.array_equal(maker.book.st, reference.st)

    asyncio.run(scenario())
    store.close()


def test_past_the_budget_only_makers_whose_touch_moved_take_a_turn(tmp_path, monkeypatch):
    scheduler = Scheduler(InlineBudget(0), Lane())  # a busy engine: updates go to the lane
    store = Store(db_url(str(tmp_path / "l.db")))

    async def scenario() -> None:
        venues = [RecordingVenue(), RecordingVenue()]
        makers = [symmetric_maker(f"m{i}", v, store, scheduler) for i, v in enumerate(venues)]
        for maker in makers:
            maker.on_market(book(9_999, 10_001))
        assert [m.decisions for m in makers] == [0, 0]
        await asyncio.sleep(0)  # one drain: both touches are new
        assert [m.decisions for m in makers] == [1, 1]
        sizes_only = book(9_999, 10_001)
        sizes_only["size"] = 4
        makers[0].on_market(sizes_only)
        makers[1].on_market(book(9_998, 10_000))
        await asyncio.sleep(0)
        assert [m.decisions for m in makers] == [1, 2]
        assert venues[0].sent == [("place", 1, 9_999), ("place", -1, 10_001)]
        assert ("place", 1, 9_998) in venues[1].sent

    asyncio.run(scenario())
    store.close()


def test_makers_join_while_the_touch_alone_decides_and_leave_when_they_stop(tmp_path):
    store = Store(db_url(str(tmp_path / "l.db")))
    lane = Lane()
    scheduler = Scheduler(lane=lane)

    async def scenario() -> None:
        plain = symmetric_maker("a", RecordingVenue(), store, scheduler)
        risky = make_strategy("symmetric", SYMMETRIC)
        Maker("b", RecordingVenue(), store, risky, RiskConfig(max_pos=5), scheduler)
        Maker("c", RecordingVenue(), store, make_strategy("ladder", SYMMETRIC), scheduler=scheduler)
        assert lane.makers == [plain]  # a risk engine or a Python strategy decides on every update
        await plain.cancel_all("stop", wait_s=0.0)
        assert lane.makers == [None]
        again = symmetric_maker("d", RecordingVenue(), store, scheduler)
        assert lane.makers == [again]  # the slot is reused

    asyncio.run(scenario())
    store.close()


def test_a_due_decision_takes_the_updates_the_lane_still_holds(tmp_path, monkeypatch):
    """A maker deciding for another reason (here a fill would do; a timer is the same) first applies
    the updates queued for it in the lane, so it never quotes a touch it has already been told moved."""
    scheduler = Scheduler(InlineBudget(0), Lane())
    store = Store(db_url(str(tmp_path / "l.db")))

    async def scenario() -> None:
        venue = RecordingVenue()
        maker = symmetric_maker("m", venue, store, scheduler)
        maker.on_market(book(9_999, 10_001))
        await asyncio.sleep(0)
        venue.sent.clear()
        maker.on_market(book(9_995, 9_997))  # queued in the lane, not applied yet
        maker.changed = True  # something else asks for a decision first
        maker.step()
        assert ("place", 1, 9_995) in venue.sent and ("place", -1, 9_997) in venue.sent

    asyncio.run(scenario())
    store.close()


def test_a_maker_whose_data_ended_gives_its_slot_back(tmp_path):
    store = Store(db_url(str(tmp_path / "l.db")))
    lane = Lane()
    maker = symmetric_maker("a", RecordingVenue(), store, Scheduler(lane=lane))
    assert lane.makers == [maker]
    maker.end("finished")
    assert lane.makers == [None] and maker.state == "finished"
    store.close()


def test_a_one_sided_book_in_the_lane_waits_for_its_touch_to_change(tmp_path, monkeypatch):
    store = Store(db_url(str(tmp_path / "l.db")))

    async def scenario() -> None:
        venue = RecordingVenue()
        maker = symmetric_maker("m", venue, store, Scheduler(InlineBudget(0), Lane()))
        turns = []
        process_inputs = maker.process_inputs
        maker.process_inputs = lambda: turns.append(1) or process_inputs()
        bid_only = book(9_999, 10_001)[:1]
        maker.on_market(bid_only)
        await asyncio.sleep(0)
        assert len(turns) == 1  # its first look: nothing to quote on
        for size in (3, 4, 5):  # the same one-sided touch
            bid_only["size"] = size
            maker.on_market(bid_only.copy())
            await asyncio.sleep(0)
        assert len(turns) == 1 and venue.sent == []
        maker.on_market(book(9_999, 10_001)[1:])  # the ask arrives: the touch changed
        await asyncio.sleep(0)
        assert venue.sent == [("place", 1, 9_999), ("place", -1, 10_001)]

    asyncio.run(scenario())
    store.close()
