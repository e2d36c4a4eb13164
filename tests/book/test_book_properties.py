"""Property tests: the books against naive dict models on random valid update sequences."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quotewise.book import L3Book, OrderBook, core
from quotewise.model.events import ADD, ASK, BID, CLEAR, DELETE, EVENT_DTYPE, EXECUTE, REDUCE, SET, TRADE

LO, HI = 100, 130  # a narrow range so that updates collide on the same levels
SETTINGS = settings(max_examples=200, deadline=None)


def ev(kind: int, side: int, price: int, size: int, order_id: int = 0) -> np.ndarray:
    e = np.zeros(1, EVENT_DTYPE)
    e["kind"], e["side"], e["price"], e["size"], e["order_id"] = kind, side, price, size, order_id
    return e


class NaiveL3:
    """Orders in arrival order plus anonymous volume per level: FIFO by construction."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # id -> [side, price, remaining]; dict order = arrival
        self.anon: dict[tuple[int, int], int] = {}

    def levels(self, side: int) -> dict[int, int]:
        out = {p: q for (s, p), q in self.anon.items() if s == side and q > 0}
        for s, p, q in self.orders.values():
            if s == side:
                out[p] = out.get(p, 0) + q
        return out

    def best(self, side: int) -> int | None:
        lv = self.levels(side)
        return (max(lv) if side == BID else min(lv)) if lv else None

    def queue(self, side: int, price: int) -> list[tuple[int, int]]:
        return [(oid, o[2]) for oid, o in self.orders.items() if (o[0], o[1]) == (side, price)]

    def ahead(self, oid: int) -> int:
        side, price, _ = self.orders[oid]
        total = self.anon.get((side, price), 0)
        for other, rem in self.queue(side, price):
            if other == oid:
                return total
            total += rem
        raise AssertionError("order not in its queue")


def dense(levels: dict[int, int]) -> np.ndarray:
    out = np.zeros(HI - LO + 1, np.int64)
    for p, q in levels.items():
        out[p - LO] = q
    return out


def valid_price(data: st.DataObject, side: int, bid: int | None, ask: int | None) -> int | None:
    """A price that does not reach the opposite best (None when there is no room)."""
    lo = LO if side == BID else (bid + 1 if bid is not None else LO)
    hi = (ask - 1 if ask is not None else HI) if side == BID else HI
    return data.draw(st.integers(lo, hi)) if lo <= hi else None


def check_l2(book: OrderBook, bids: dict[int, int], asks: dict[int, int]) -> None:
    assert not book.is_crossed
    assert (book.bid >= 0).all() and (book.ask >= 0).all()
    assert np.array_equal(book.bid, dense(bids)) and np.array_equal(book.ask, dense(asks))
    assert book.best_bid == (max(bids) if bids else None)
    assert book.best_ask == (min(asks) if asks else None)
    for side, lv in ((BID, bids), (ASK, asks)):
        prices, sizes = book.levels(side, 5)
        want = sorted(lv.items(), reverse=side == BID)[:5]
        assert list(zip(prices.tolist(), sizes.tolist(), strict=True)) == want
    assert book.counters == {"cross_fixes": 0, "out_of_range": 0, "neg_clamps": 0}


@SETTINGS
@given(st.data())
def test_l3_book_matches_naive_fifo_model(data: st.DataObject) -> None:
    book = L3Book(LO, HI)
    plain = OrderBook(LO, HI)
    model = NaiveL3()
    next_id = 1
    unknown = 0

    def apply(e: np.ndarray) -> None:
        book.apply(e)
        plain.apply(e)

    # an opening snapshot of anonymous volume, bids below asks
    split = data.draw(st.integers(LO + 1, HI))
    apply(ev(CLEAR, 0, 0, 0))
    for price in data.draw(st.sets(st.integers(LO, HI), max_size=8)):
        side = BID if price < split else ASK
        size = data.draw(st.integers(1, 50))
        apply(ev(SET, side, price, size))
        model.anon[(side, price)] = size

    for _ in range(data.draw(st.integers(1, 40))):
        bid, ask = model.best(BID), model.best(ASK)
        op = data.draw(st.sampled_from(["add", "add", "reduce", "delete", "execute", "anonymous"]))
        if op == "add" or (op != "anonymous" and not model.orders):
            side = data.draw(st.sampled_from([BID, ASK]))
            price = valid_price(data, side, bid, ask)
            if price is None:
                continue
            size = data.draw(st.integers(1, 40))
            apply(ev(ADD, side, price, size, next_id))
            model.orders[next_id] = [side, price, size]
            next_id += 1
        elif op == "anonymous":
            held = [k for k, q in model.anon.items() if q > 0]
            if not held:
                continue
            (side, price) = data.draw(st.sampled_from(held))
            size = data.draw(st.integers(1, model.anon[(side, price)]))
            kind = data.draw(st.sampled_from([REDUCE, DELETE, EXECUTE]))
            apply(ev(kind, side, price, size, 10_000 + next_id))  # an id never added: pre-data order
            next_id += 1
            unknown += 1
            model.anon[(side, price)] -= size
        else:
            oid = data.draw(st.sampled_from(sorted(model.orders)))
            side, price, rem = model.orders[oid]
            size = rem if op == "delete" else data.draw(st.integers(1, rem))
            kind = {"reduce": REDUCE, "delete": DELETE, "execute": EXECUTE}[op]
            apply(ev(kind, side, price, size, oid))
            model.orders[oid][2] -= size
            if model.orders[oid][2] == 0:
                del model.orders[oid]

        bids, asks = model.levels(BID), model.levels(ASK)
        check_l2(book.l2, bids, asks)
        assert np.array_equal(plain.bid, book.l2.bid) and np.array_equal(plain.ask, book.l2.ask)
        for side, lv in ((BID, bids), (ASK, asks)):
            for price, total in lv.items():
                queue = book.orders_at(side, price)
                assert queue == model.queue(side, price)
                assert book.anonymous(side, price) == model.anon.get((side, price), 0)
                assert book.anonymous(side, price) + sum(q for _, q in queue) == total
        assert len(book) == len(model.orders)
        for oid in model.orders:
            assert book.queue_ahead(oid) == model.ahead(oid)
    assert book.counters.unknown_orders == unknown
    c = book.counters
    assert (c.duplicate_adds, c.size_mismatches, c.mismatched_orders, c.orders_dropped) == (0, 0, 0, 0)


@SETTINGS
@given(st.data())
def test_l2_book_matches_naive_levels_under_set_and_clear(data: st.DataObject) -> None:
    book = OrderBook(LO, HI)
    levels: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
    for _ in range(data.draw(st.integers(1, 40))):
        bids, asks = levels[BID], levels[ASK]
        if data.draw(st.integers(0, 9)) == 0:
            side = data.draw(st.sampled_from([0, BID, ASK]))
            book.apply(ev(CLEAR, side, 0, 0))
            for s in (BID, ASK):
                if side in (0, s):
                    levels[s].clear()
        else:
            side = data.draw(st.sampled_from([BID, ASK]))
            size = data.draw(st.integers(0, 30))
            if size:
                price = valid_price(data, side, max(bids, default=None), min(asks, default=None))
                if price is None:
                    continue
            else:
                price = data.draw(st.integers(LO, HI))
            book.apply(ev(SET, side, price, size))
            if size:
                levels[side][price] = size
            else:
                levels[side].pop(price, None)
        check_l2(book, bids, asks)
        if bids and asks:
            bb, ba = max(bids), min(asks)
            assert book.mid == (bb + ba) / 2 and book.spread == ba - bb
            assert book.weighted_mid == (bb * asks[ba] + ba * bids[bb]) / (bids[bb] + asks[ba])
            assert book.imbalance == (bids[bb] - asks[ba]) / (bids[bb] + asks[ba])
            assert bb < book.weighted_mid < ba
        else:
            assert book.mid is book.weighted_mid is book.imbalance is None
        k = data.draw(st.integers(0, 5))
        assert book.depth(BID, k) == (sum(q for p, q in bids.items() if p >= max(bids) - k) if bids else 0)
        assert book.depth(ASK, k) == (sum(q for p, q in asks.items() if p <= min(asks) + k) if asks else 0)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([BID, ASK]), st.integers(LO, HI), st.integers(1, 20)), max_size=40))
def test_any_set_leaves_an_uncrossed_book_where_the_newest_level_survives(
    updates: list[tuple[int, int, int]],
) -> None:
    book = OrderBook(LO, HI)
    for side, price, size in updates:
        book.apply(ev(SET, side, price, size))
        assert not book.is_crossed
        assert book.size_at(side, price) == size
        assert (book.bid >= 0).all() and (book.ask >= 0).all()


def test_a_set_through_the_opposite_best_removes_the_crossed_levels() -> None:
    book = OrderBook(LO, HI)
    for price, size in ((110, 5), (111, 6), (112, 7)):
        book.apply(ev(SET, ASK, price, size))
    book.apply(ev(SET, BID, 108, 9))
    book.apply(ev(SET, BID, 111, 4))  # reaches 110 and 111
    assert book.counters["cross_fixes"] == 1
    assert (book.best_bid, book.best_ask) == (111, 112)
    assert book.size_at(ASK, 110) == book.size_at(ASK, 111) == 0
    assert book.size_at(BID, 108) == 9 and book.size_at(ASK, 112) == 7

    book.apply(ev(SET, ASK, 105, 3))  # the ask side wins back every bid at or above 105
    assert book.counters["cross_fixes"] == 2
    assert (book.best_bid, book.best_ask) == (None, 105)
    assert not book.is_crossed


def test_a_crossing_add_drops_the_orders_on_the_removed_levels() -> None:
    book = L3Book(LO, HI)
    book.apply(np.concatenate([ev(ADD, ASK, 110, 5, 1), ev(ADD, ASK, 111, 5, 2), ev(ADD, BID, 110, 3, 3)]))
    assert book.l2.counters["cross_fixes"] == 1
    assert book.order(1) is None and book.order(2) == (ASK, 111, 5)
    assert book.counters.orders_dropped == 1
    assert book.queue_ahead(3) == 0


def test_unknown_order_and_snapshot_volume_queue_ahead() -> None:
    book = L3Book(LO, HI)
    book.apply(np.concatenate([ev(SET, BID, 105, 30), ev(ADD, BID, 105, 10, 7), ev(ADD, BID, 105, 5, 8)]))
    assert book.queue_ahead(7) == 30 and book.queue_ahead(8) == 40
    book.apply(ev(EXECUTE, BID, 105, 12, 999))  # an order from before the data: level only
    assert book.counters.unknown_orders == 1
    assert book.anonymous(BID, 105) == 18 and book.queue_ahead(8) == 28
    book.apply(ev(SET, BID, 105, 8))  # fewer lots than the known orders: they cannot be trusted
    assert len(book) == 0 and book.counters.orders_dropped == 2
    assert book.anonymous(BID, 105) == 8


LEVEL_EVENTS = st.lists(
    st.tuples(
        st.sampled_from([SET, ADD, REDUCE, TRADE, CLEAR]),
        st.sampled_from([BID, ASK]),
        st.integers(0, 3_000),
        st.integers(0, 9),
    ),
    max_size=60,
)


@SETTINGS
@given(LEVEL_EVENTS)
def test_emptying_the_marked_blocks_leaves_a_fresh_book(rows):
    """A book emptied by its marked blocks (as a model's replay leaves the backtest's book) is a fresh one."""
    events = np.zeros(len(rows), EVENT_DTYPE)
    for k, (kind, side, price, size) in enumerate(rows):
        events[k]["kind"], events[k]["side"], events[k]["price"], events[k]["size"] = kind, side, price, size
    bid, ask, state = core.new_book(0, 2_999)  # the last event price is out of range: counted, not written
    blocks = core.new_blocks(state)
    core.apply_events(bid, ask, state, events)
    core.mark_blocks(events, state, blocks)
    core.empty_blocks(bid, ask, state, blocks)
    fresh = core.new_book(0, 2_999)
    assert not bid.any() and not ask.any() and not blocks.any()
    assert np.array_equal(state, fresh[2])


def test_emptying_leaves_the_other_sides_blocks_unwritten():
    """A block only bids were written to is cleared on the bid side alone: clearing the ask side too
    would map a page of the ask array that nothing wrote (a sentinel there must survive)."""
    events = np.zeros(2, EVENT_DTYPE)
    events["kind"], events["side"], events["price"], events["size"] = SET, BID, [100, 5_000], 3
    bid, ask, state = core.new_book(0, 9_999)
    blocks = core.new_blocks(state)
    core.apply_events(bid, ask, state, events)
    core.mark_blocks(events, state, blocks)
    ask[101] = ask[5_001] = 7  # untouched by any event: emptying must not write here
    core.empty_blocks(bid, ask, state, blocks)
    assert not bid.any()
    assert ask[101] == 7 and ask[5_001] == 7
