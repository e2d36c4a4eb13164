"""The reconcile rule: keep what still matches (queue place kept), cancel the rest, place what is missing."""

from __future__ import annotations

from quotewise.execution.order_manager import OrderManager, WorkingOrder, diff_quotes
from quotewise.quoting.base import Quote, QuoteSet


def wo(oid: int, side: int, price: int, size: int = 1, status: str = "working", left: int | None = None):
    return WorkingOrder(oid, side, price, size, size if left is None else left, status)


def test_matching_orders_are_kept_and_others_replaced():
    working = [wo(1, 1, 99), wo(2, 1, 98), wo(3, -1, 101)]
    cancels, places = diff_quotes(QuoteSet([Quote(99, 1)], [Quote(102, 1)]), working)
    assert sorted(cancels) == [2, 3]
    assert places == [(-1, Quote(102, 1))]


def test_partially_filled_order_keeps_its_place():
    working = [wo(1, 1, 99, size=5, left=2)]
    assert diff_quotes(QuoteSet([Quote(99, 5)], []), working) == ([], [])


def test_size_change_replaces_the_order():
    working = [wo(1, 1, 99, size=5)]
    assert diff_quotes(QuoteSet([Quote(99, 3)], []), working) == ([1], [(1, Quote(99, 3))])


def test_pending_cancel_is_ignored_and_pending_new_counts_as_working():
    working = [wo(1, 1, 99, status="pending_cancel"), wo(2, -1, 101, status="pending_new")]
    cancels, places = diff_quotes(QuoteSet([Quote(99, 1)], [Quote(101, 1)]), working)
    assert cancels == []
    assert places == [(1, Quote(99, 1))]


def test_duplicate_working_orders_at_one_price_keep_one():
    working = [wo(1, 1, 99), wo(2, 1, 99)]
    cancels, places = diff_quotes(QuoteSet([Quote(99, 1)], []), working)
    assert cancels == [2] and places == []


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
    om.reconcile(QuoteSet([Quote(99, 2)], [Quote(101, 2)]))
    assert venue.placed == [(1, 99, 2), (-1, 101, 2)]
    om.reconcile(QuoteSet([Quote(99, 2)], [Quote(101, 2)]))
    assert len(venue.placed) == 2  # in flight: not sent twice
    om.on_response("accepted", 1, 10, 0, 2, "")
    om.on_response("fill", 1, 20, 2, 0, "")
    assert om.position == 2
    assert 1 not in om.orders
    om.reconcile(QuoteSet([Quote(98, 2)], [Quote(100, 2)]))
    assert venue.cancelled == [2]
    assert venue.placed[-2:] == [(1, 98, 2), (-1, 100, 2)]
    statuses = [e.status for e in om.log if e.order_id == 1]
    assert statuses == ["submitted", "accepted", "filled"]
    om.on_response("rejected", 3, 30, 0, 2, "post-only order would cross the book")
    assert om.rejects == 1 and 3 not in om.orders
