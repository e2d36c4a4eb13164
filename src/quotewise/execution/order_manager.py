"""The order manager: reconciles the quotes a strategy wants with the orders actually working.

It keeps its own view of our orders, built only from what it sent and what the venue answered
(never from the venue's internal state), exactly as it must live. On each decision it:

1. keeps every working order whose side, price and original size match a wanted quote (one order
   per quote), so that order keeps its place in the queue, partially filled or not;
2. cancels every other working order;
3. places the wanted quotes that no working order covers.

Orders already being cancelled are left alone; orders in flight count as working, so a quote is
never sent twice while its first copy is on its way.

With ``max_per_side`` (a real venue), a side never has more orders alive at the venue than that: a
replacement waits until the order it replaces is confirmed gone (cancelled, filled or rejected),
and the next decision after that confirmation places it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from quotewise.quoting.base import Quote


class Venue(Protocol):
    """What the order manager needs from a venue (simulated or real)."""

    @property
    def now(self) -> int: ...

    def place(
        self, side: int, price: int, size: int, post_only: bool = True, reject_reason: int = 0
    ) -> int: ...

    def cancel(self, order_id: int) -> bool: ...


@dataclass(slots=True)
class WorkingOrder:
    order_id: int
    side: int
    price: int
    size: int
    left: int
    status: str  # pending_new | working | pending_cancel


class OrderEvent(NamedTuple):
    """One state change of one order, with the reason, for ``orders.parquet`` and the live store."""

    ts: int
    order_id: int
    side: int
    price: int
    size: int
    filled: int
    status: str
    reason: str


def diff_quotes(
    bids: Sequence[Quote], asks: Sequence[Quote], working: Iterable[WorkingOrder]
) -> tuple[list[int], list[tuple[int, Quote]]]:
    """Which order ids to cancel and which (side, quote) to place so that ``working`` becomes the
    wanted ``bids`` and ``asks`` (bid cancels first, then ask cancels)."""
    open_bids, open_asks = list(bids), list(asks)
    cancel_bids: list[int] = []
    cancel_asks: list[int] = []
    for order in working:
        if order.status == "pending_cancel":
            continue
        quotes, cancels = (open_bids, cancel_bids) if order.side == 1 else (open_asks, cancel_asks)
        for k, q in enumerate(quotes):
            if q.price == order.price and q.size == order.size:
                del quotes[k]
                break
        else:
            cancels.append(order.order_id)
    return cancel_bids + cancel_asks, [(1, q) for q in open_bids] + [(-1, q) for q in open_asks]


class OrderManager:
    """Our orders as we know them, and the reconcile step that drives the venue."""

    def __init__(self, venue: Venue, post_only: bool = True, max_per_side: int | None = None) -> None:
        self.venue = venue
        self.post_only = post_only
        self.max_per_side = max_per_side
        self.held_back = False  # places waited for cancels to be confirmed (max_per_side)
        self.orders: dict[int, WorkingOrder] = {}
        self.log: list[OrderEvent] = []
        # bumped whenever the orders a reconcile compares against (those not being cancelled) may have
        # changed: the same wanted quotes against the same version reconcile to nothing
        self.live_version = 0
        self.orders_placed = 0
        self.cancels_sent = 0
        self.rejects = 0

    def _record(self, ts: int, o: WorkingOrder, status: str, reason: str = "") -> None:
        self.log.append(OrderEvent(ts, o.order_id, o.side, o.price, o.size, o.size - o.left, status, reason))

    def diff(self, bids: Sequence[Quote], asks: Sequence[Quote]) -> tuple[list[int], list[tuple[int, Quote]]]:
        """What :meth:`reconcile` would send now: order ids to cancel, (side, quote) to place."""
        return diff_quotes(bids, asks, self.orders.values())

    def reconcile(self, bids: Sequence[Quote], asks: Sequence[Quote]) -> bool:
        """Cancel what is no longer wanted, then place what is missing, so that our orders become the
        wanted ``bids`` and ``asks`` (a :class:`QuoteSet`'s sides); False when the venue refused a
        cancel (that order is still live, so the same quotes must be reconciled again)."""
        cancels, places = self.diff(bids, asks)
        now = self.venue.now
        settled = True
        for oid in cancels:
            if self.venue.cancel(oid):
                self.note_cancel_requested(now, oid, "no longer wanted")
            else:
                settled = False
        if self.max_per_side is not None:
            allowed = self._within_limit(places, self.max_per_side)
            self.held_back = len(allowed) < len(places)
            settled = settled and not self.held_back
            places = allowed
        for side, quote in places:
            oid = self.venue.place(side, quote.price, quote.size, self.post_only)
            self.note_submitted(now, oid, side, quote.price, quote.size)
        return settled

    def _within_limit(self, places: list[tuple[int, Quote]], limit: int) -> list[tuple[int, Quote]]:
        """The places that keep each side at ``limit`` orders alive at the venue or fewer (orders being
        cancelled are still there until the venue says so)."""
        alive = {1: 0, -1: 0}
        for order in self.orders.values():
            alive[order.side] += 1
        out = []
        for side, quote in places:
            if alive[side] < limit:
                alive[side] += 1
                out.append((side, quote))
        return out

    def note_submitted(self, ts: int, oid: int, side: int, price: int, size: int) -> None:
        """An order was sent (by this manager, or by the engine's compiled quoting)."""
        order = WorkingOrder(oid, side, price, size, size, "pending_new")
        self.orders[oid] = order
        self.live_version += 1
        self.orders_placed += 1
        self._record(ts, order, "submitted", "wanted by strategy")

    def note_cancel_requested(self, ts: int, oid: int, reason: str) -> None:
        order = self.orders[oid]
        order.status = "pending_cancel"
        self.live_version += 1
        self.cancels_sent += 1
        self._record(ts, order, "cancel_requested", reason)

    def cancel_all(self, reason: str) -> None:
        now = self.venue.now
        for order in self.orders.values():
            if order.status != "pending_cancel" and self.venue.cancel(order.order_id):
                order.status = "pending_cancel"
                self.live_version += 1
                self.cancels_sent += 1
                self._record(now, order, "cancel_requested", reason)

    def on_response(self, kind: str, order_id: int, exch_ts: int, left: int, reason: str) -> None:
        """Update our view from one venue response (ack, reject, fill, cancel result)."""
        order = self.orders.get(order_id)
        if order is None:
            return
        expected = kind == "cancelled" and order.status == "pending_cancel" and not self.held_back
        if kind != "accepted" and not expected:
            # a fill, a reject, a cancel we did not ask for, a cancel refused, or one a held-back place
            # waited for: the same quotes must be reconciled again
            self.live_version += 1
        if kind == "accepted":
            if order.status == "pending_new":
                order.status = "working"
            self._record(exch_ts, order, "accepted")
        elif kind == "rejected":
            self.rejects += 1
            self._record(exch_ts, order, "rejected", reason)
            del self.orders[order_id]
        elif kind == "fill":
            order.left = left
            self._record(exch_ts, order, "filled" if left <= 0 else "partially_filled")
            if left <= 0:
                del self.orders[order_id]
        elif kind == "cancelled":
            self._record(exch_ts, order, "cancelled", "cancel confirmed")
            del self.orders[order_id]
        elif kind == "cancel_rejected":
            order.status = "working" if order.left > 0 else order.status
            self._record(exch_ts, order, "cancel_rejected", reason)

    def exposure(self, side: int) -> int:
        """Lots that could still fill on ``side``: what is left of every order not yet seen to end.

        Orders pending new, working and pending cancel all count (a cancel in flight can lose the
        race to a fill), so ``position + exposure(1)`` bounds the position if every bid fills.
        """
        return sum(o.left for o in self.orders.values() if o.side == side)

    def best_working(self, side: int) -> int | None:
        """Our best working price on ``side`` in ticks (for the quotes-over-book chart)."""
        prices = [o.price for o in self.orders.values() if o.side == side and o.status == "working"]
        if not prices:
            return None
        return max(prices) if side == 1 else min(prices)
