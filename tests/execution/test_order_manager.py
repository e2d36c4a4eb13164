"""The reconcile rule: keep what still matches (queue place kept), cancel the rest, place what is missing."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from quotewise.execution.order_manager import OrderManager, WorkingOrder, diff_quotes
from quotewise.quoting.base import Quote


def wo(oid: int, side: int, price: int, size: int = 1, status: str = "working", left: int | None = None):
    return WorkingOrder(oid, side, price, size, size if left is None else left, status)


def test_matching_orders_are_kept_and_others_replaced():
    working = [wo(1, 1, 99), wo(2, 1, 98), wo(3, -1, 101)]
    cancels, places = diff_quotes([Quote(99, 1)], [Quote(102, 1)], working)
    assert sorted(cancels) == [2, 3]
    assert places == [(-1, Quote(102, 1))]


def test_partially_filled_order_keeps_its_place():
    working = [wo(1, 1, 99, size=5, left=2)]
    assert diff_quotes([Quote(99, 5)], [], working) == ([], [])


def test_size_change_replaces_the_order():
    working = [wo(1, 1, 99, size=5)]
    assert diff_quotes([Quote(99, 3)], [], working) == ([1], [(1, Quote(99, 3))])


def test_pending_cancel_is_ignored_and_pending_new_counts_as_working():
    working = [wo(1, 1, 99, status="pending_cancel"), wo(2, -1, 101, status="pending_new")]
    cancels, places = diff_quotes([Quote(99, 1)], [Quote(101, 1)], working)
    assert cancels == []
    assert places == [(1, Quote(99, 1))]


def test_duplicate_working_orders_at_one_price_keep_one():
    working = [wo(1, 1, 99), wo(2, 1, 99)]
    cancels, places = diff_quotes([Quote(99, 1)], [], working)
    assert cancels == [2] and places == []


quotes = st.lists(st.builds(Quote, st.integers(98, 101), st.integers(1, 2)), max_size=3)
orders = st.lists(
    st.tuples(st.sampled_from([1, -1]), st.integers(98, 101), st.integers(1, 2), st.booleans()), max_size=5
)


@given(quotes, quotes, orders)
def test_the_diff_leaves_exactly_the_wanted_quotes_with_the_fewest_changes(bids, asks, working_specs):
    working = [
        wo(oid, side, price, size, "pending_cancel" if cancelling else "working")
        for oid, (side, price, size, cancelling) in enumerate(working_specs, start=1)
    ]
    cancels, places = diff_quotes(bids, asks, working)
    live = [o for o in working if o.status != "pending_cancel"]
    assert set(cancels) <= {o.order_id for o in live} and len(set(cancels)) == len(cancels)
    kept = Counter((o.side, o.price, o.size) for o in live if o.order_id not in cancels)
    placed = Counter((side, q.price, q.size) for side, q in places)
    wanted = Counter([(1, q.price, q.size) for q in bids] + [(-1, q.price, q.size) for q in asks])
    assert kept + placed == wanted
    have = Counter((o.side, o.price, o.size) for o in live)
    assert sum(placed.values()) == sum((wanted - have).values())  # every order still wanted is kept
    assert cancels == sorted(cancels, key=lambda oid: -working[oid - 1].side)  # bids first


class FakeVenue:
    def __init__(self) -> None:
        self.now = 0
        self.placed: list[tuple] = []
        self.cancelled: list[int] = []
        self.next_id = 1

    def place(self, side, price, size, post_only=True, reject_reason=0):
        self.placed.append((side, price, size))
        self.next_id += 1
        return self.next_id - 1

    def cancel(self, order_id):
        self.cancelled.append(order_id)
        return True


def test_reconcile_drives_the_venue_and_tracks_responses():
    venue = FakeVenue()
    om = OrderManager(venue)
    om.reconcile([Quote(99, 2)], [Quote(101, 2)])
    assert venue.placed == [(1, 99, 2), (-1, 101, 2)]
    om.reconcile([Quote(99, 2)], [Quote(101, 2)])
    assert len(venue.placed) == 2  # in flight: not sent twice
    om.on_response("accepted", 1, 10, 2, "")
    om.on_response("fill", 1, 20, 0, "")
    assert 1 not in om.orders
    om.reconcile([Quote(98, 2)], [Quote(100, 2)])
    assert venue.cancelled == [2]
    assert venue.placed[-2:] == [(1, 98, 2), (-1, 100, 2)]
    statuses = [e.status for e in om.log if e.order_id == 1]
    assert statuses == ["submitted", "accepted", "filled"]
    om.on_response("rejected", 3, 30, 2, "post-only order would cross the book")
    assert om.rejects == 1 and 3 not in om.orders
