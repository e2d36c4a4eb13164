"""Each rule of docs/fill-rules.md, shown on a hand-built event stream."""

from __future__ import annotations

import pytest
from simkit import INST, MS, T0, at, book, events, fills, kinds, run, with_clock

from quotewise.sim.exchange import SimConfig, SimExchange

BUY, SELL = 1, -1


def place(side: int, price: int, size: int, post_only: bool = True):
    return lambda ex: ex.place(side, price, size, post_only)


# -- latency ---------------------------------------------------------------------------------------


def test_order_reaches_exchange_after_entry_latency():
    """A trade before the order's arrival cannot fill it; one after can."""
    rows = [*book(), (10, "trade", 1, 100, 50), (10.5, "trade", 1, 100, 50), (12, "trade", 1, 100, 50)]
    # sent at 9.x ms with 2 ms entry latency: arrives ~11.x ms, so only the 12 ms trade reaches it
    _, seen = run(rows, at(9, place(BUY, 100, 5)), entry_ms=2)
    (fill,) = [r for r in seen if r.kind == "fill"]
    assert fill.exch_ts == T0 + 12 * MS
    assert fill.qty == 5


def test_responses_arrive_after_response_latency():
    rows = [*book(), (5, "trade", 1, 100, 1), (20, "trade", 1, 100, 1)]
    _, seen = run(rows, at(1, place(BUY, 100, 1)), entry_ms=1, resp_ms=3)
    ack = next(r for r in seen if r.kind == "accepted")
    assert ack.deliver_ts - ack.exch_ts == 3 * MS


def test_feed_latency_delays_what_the_strategy_sees():
    """With 5 ms feed latency the book change at 10 ms is visible only at 15 ms."""
    rows = [*book(), (10, "set", 1, 100, 0), (10, "set", 1, 99, 7), (30, "set", -1, 101, 3)]
    seen_bids: list[tuple[int, int | None]] = []

    def script(ex):
        seen_bids.append((ex.now, ex.best_bid()))

    run(rows, script, feed_ms=5)
    before = [b for t, b in seen_bids if t < T0 + 15 * MS]
    after = [b for t, b in seen_bids if t >= T0 + 15 * MS]
    assert set(before) == {100}
    assert after and set(after) == {99}


# -- post-only and taking ------------------------------------------------------------------------


def test_post_only_rejected_when_crossing_on_arrival():
    """Not crossing when sent, but the ask moved down before the order arrived: rejected."""
    rows = [*book(100, 103), (5.5, "set", -1, 101, 4), (20, "trade", 1, 100, 1)]
    _, seen = run(rows, at(5, place(BUY, 101, 1)), entry_ms=1)
    rej = next(r for r in seen if r.kind == "rejected")
    assert rej.reason == "post-only order would cross the book"
    assert not fills(seen)


def test_crossing_order_takes_book_liquidity_at_book_prices():
    rows = [*book(100, 101, 10, 3), (0, "set", -1, 102, 4), (0, "set", -1, 104, 9), (20, "set", 1, 98, 1)]
    ex, seen = run(rows, at(1, place(BUY, 102, 10, post_only=False)))
    got = fills(seen)
    assert [(p, q, maker) for _, p, q, maker in got] == [(101, 3, False), (102, 4, False)]
    # the remaining 3 lots rest at 102 as a maker order
    assert ex.position_lots == 7
    assert any(r.kind == "accepted" for r in seen)


def test_liquidity_taken_once_is_not_taken_again():
    rows = [*book(100, 101, 10, 3), (0, "set", -1, 102, 50), (20, "set", 1, 99, 1)]

    def script(ex):
        if ex.now >= T0 + MS and ex.orders_placed == 0:
            ex.place(BUY, 101, 2, False)
            ex.place(BUY, 101, 2, False)

    _, seen = run(rows, script)
    assert [q for _, _, q, _ in fills(seen)] == [2, 1]  # only 3 lots were ever at 101


def test_taken_liquidity_returns_when_tape_shows_it_leaving():
    """After we took 3 at 101, the tape removes 3 there (its own trade) and adds 5: 5 are new."""
    rows = [*book(100, 101, 10, 3), (5, "set", -1, 101, 0), (6, "set", -1, 101, 5), (20, "set", 1, 99, 1)]

    def script(ex):
        if ex.now >= T0 + MS and ex.orders_placed == 0:
            ex.place(BUY, 101, 3, False)
        elif ex.now >= T0 + 10 * MS and ex.orders_placed == 1:
            ex.place(BUY, 101, 5, False)

    _, seen = run(rows, script)
    assert [q for _, _, q, _ in fills(seen)] == [3, 5]


# -- risk-averse queue (L2) ----------------------------------------------------------------------


def test_risk_averse_advances_only_by_trades_and_fills_partially():
    rows = [
        *book(100, 101, 10, 10),
        (5, "trade", 1, 100, 4),  # 10 ahead -> 6
        (6, "set", 1, 100, 6),  # the tape's level shows the trade; no further advance
        (7, "set", 1, 100, 3),  # a cancel of 3 somewhere: queue ahead cannot exceed the level: 3
        (8, "trade", 1, 100, 5),  # 3 consumes the queue, 2 fill us
        (9, "trade", 1, 100, 10),  # the rest of our 5 fills
    ]
    _, seen = run(rows, at(1, place(BUY, 100, 5)))
    assert [q for _, _, q, _ in fills(seen)] == [2, 3]
    assert all(maker for *_, maker in fills(seen))


def test_risk_averse_level_growth_goes_behind_us():
    rows = [*book(100, 101, 4, 10), (5, "set", 1, 100, 40), (6, "trade", 1, 100, 5)]
    _, seen = run(rows, at(1, place(BUY, 100, 2)))
    assert [q for _, _, q, _ in fills(seen)] == [1]


def test_trade_through_our_price_fills_in_full():
    rows = [*book(100, 101, 10, 10), (5, "trade", 1, 99, 1)]
    _, seen = run(rows, at(1, place(BUY, 100, 7)))
    assert [(p, q) for _, p, q, _ in fills(seen)] == [(100, 7)]


def test_tape_ask_through_our_bid_fills_by_added_size():
    """Our bid improves the spread to 101; the tape then adds 2 lots on the ask at 101."""
    rows = [*book(100, 103, 10, 10), (5, "set", -1, 101, 2), (6, "set", -1, 101, 2), (7, "set", -1, 101, 6)]
    _, seen = run(rows, at(1, place(BUY, 101, 5)))
    assert [q for _, _, q, _ in fills(seen)] == [2, 3]  # the unchanged re-send at 6 ms adds nothing


def test_probabilistic_queue_splits_cancels_by_position():
    """Ahead 9 of a level of 10 (1 behind): with n=3 a cancel of 5 is almost all ahead of us."""
    rows = [*book(100, 101, 9, 10), (5, "set", 1, 100, 10), (6, "set", 1, 100, 5), (7, "trade", 1, 100, 2)]
    _, seen = run(rows, at(1, place(BUY, 100, 3)), queue="prob")
    # ahead 9 -> 9 - round(5 * 9^3 / (9^3 + 1^3)) = 4 ; the trade of 2 leaves 2 ahead: no fill
    assert not fills(seen)
    _, seen = run([*rows, (8, "trade", 1, 100, 4)], at(1, place(BUY, 100, 3)), queue="prob")
    assert [q for _, _, q, _ in fills(seen)] == [2]


def test_probabilistic_queue_does_not_count_a_trade_twice():
    """A trade of 4 then the depth update showing it (10 -> 6): the queue moves by 4, not 4 + split."""
    rows = [*book(100, 101, 9, 10), (5, "set", 1, 100, 10), (6, "trade", 1, 100, 4), (7, "set", 1, 100, 6)]
    rows_then = [*rows, (8, "trade", 1, 100, 5)]
    _, seen = run(rows_then, at(1, place(BUY, 100, 3)), queue="prob")
    # ahead 9 -> 5 after the trade; the update 10 -> 6 is that same trade; the 5-lot trade fills nothing
    assert not fills(seen)
    _, seen = run([*rows_then, (9, "trade", 1, 100, 2)], at(1, place(BUY, 100, 3)), queue="prob")
    assert [q for _, _, q, _ in fills(seen)] == [2]


def test_risk_averse_would_not_advance_on_the_same_cancel():
    rows = [*book(100, 101, 9, 10), (5, "set", 1, 100, 10), (6, "set", 1, 100, 5), (7, "trade", 1, 100, 6)]
    _, seen = run(rows, at(1, place(BUY, 100, 3)), queue="risk-averse")
    assert [q for _, _, q, _ in fills(seen)] == [1]  # ahead min(9, 5) = 5, trade 6 -> 1 fill


# -- exact FIFO (L3) -----------------------------------------------------------------------------


def l3_book() -> list[tuple]:
    return [
        (0, "add", 1, 100, 3, 1),
        (0, "add", 1, 100, 4, 2),
        (0, "add", -1, 101, 5, 3),
    ]


def test_fifo_executions_ahead_move_us_up_then_fill_us():
    rows = [
        *l3_book(),
        (5, "exec", 1, 100, 3, 1),  # order 1 (ahead) trades: 4 ahead
        (6, "add", 1, 100, 8, 4),  # order 4 joins behind us
        (7, "exec", 1, 100, 4, 2),  # order 2 (ahead) trades: we are first
        (8, "exec", 1, 100, 2, 4),  # order 4 behind us trades: the aggressor met us first
    ]
    _, seen = run(rows, at(1, place(BUY, 100, 5)), queue="fifo")
    assert [q for _, _, q, _ in fills(seen)] == [2]


def test_fifo_cancels_ahead_move_us_up_cancels_behind_do_not():
    rows = [
        *l3_book(),
        (5, "add", 1, 100, 6, 4),  # behind us
        (6, "delete", 1, 100, 6, 4),  # cancel behind us: no change (4+3 ahead)
        (7, "reduce", 1, 100, 2, 1),  # order 1 cancels 2 of 3: 5 ahead
        (8, "delete", 1, 100, 4, 2),  # order 2 gone: 1 ahead
        (9, "exec", 1, 100, 1, 1),  # order 1 trades its last lot: 0 ahead
        (10, "add", 1, 100, 9, 5),
        (11, "exec", 1, 100, 9, 5),  # order 5 behind us trades: we fill 5 of it first
    ]
    _, seen = run(rows, at(1, place(BUY, 100, 5)), queue="fifo")
    assert [q for _, _, q, _ in fills(seen)] == [5]


def test_fifo_hidden_trade_at_our_price_does_not_fill_us():
    rows = [*l3_book(), (5, "trade", 1, 100, 50, 99)]
    _, seen = run(rows, at(1, place(BUY, 100, 5)), queue="fifo")
    assert not fills(seen)


# -- fees, tick and lot ------------------------------------------------------------------------------


def test_maker_rebate_and_taker_fee_in_cash():
    rows = [*book(100, 101, 10, 10), (5, "trade", -1, 101, 20), (6, "trade", -1, 102, 1)]

    def script(ex):
        if ex.now >= T0 + MS and ex.orders_placed == 0:
            ex.place(SELL, 101, 2)  # maker: behind 10, the 20-lot buy fills it
            ex.place(SELL, 100, 1, False)  # taker: hits the bid at 100

    ex, seen = run(rows, script)
    by_maker = {r.maker: r for r in seen if r.kind == "fill"}
    taker, maker = by_maker[False], by_maker[True]
    value = INST.tick_size * INST.lot_size
    assert taker.fee == pytest.approx(100 * 1 * value * INST.taker_fee)
    assert maker.fee == pytest.approx(101 * 2 * value * INST.maker_fee)
    assert maker.fee < 0  # a rebate
    assert ex.cash == pytest.approx((100 * 1 + 101 * 2) * value - taker.fee - maker.fee)
    assert ex.fees == pytest.approx(taker.fee + maker.fee)


def test_off_tick_and_below_minimum_are_rejected_with_reason():
    inst = INST.model_copy(update={"min_size_lots": 2})
    rows = [*book(), (20, "trade", 1, 99, 1)]

    def script(ex):
        if ex.orders_placed == 0 and ex.now >= T0 + MS:
            ex.submit(BUY, 1.005, 5)  # off the 0.01 grid
            ex.submit(BUY, 0.99, 1)  # 1 lot < minimum 2
            ex.submit(BUY, 0.99, 2.5)  # not whole lots

    _, seen = run(rows, script, instrument=inst)
    reasons = sorted(r.reason for r in seen if r.kind == "rejected")
    assert reasons == sorted(
        [
            "price is not on the tick grid",
            "size is below the instrument minimum",
            "size is not a whole number of the venue's size step (lot)",
        ]
    )


def test_below_the_venue_minimum_order_value_is_rejected_with_reason():
    """Binance's MIN_NOTIONAL: price x size below the minimum (quote currency) is rejected on arrival;
    at or above it the order rests. 5 lots at 1.00 is worth 5.00; 4 lots is worth 4.00."""
    inst = INST.model_copy(update={"min_notional": 5.0})
    rows = [*book(100, 101), (20, "trade", 1, 99, 1)]

    def script(ex):
        if ex.orders_placed == 0 and ex.now >= T0 + MS:
            ex.place(BUY, 100, 4)
            ex.place(BUY, 100, 5)

    _, seen = run(rows, script, instrument=inst)
    outcome = {r.order_id: (r.kind, r.reason) for r in seen if r.kind in ("accepted", "rejected")}
    assert outcome == {
        1: ("rejected", "order value is below the venue's minimum (min notional)"),
        2: ("accepted", ""),
    }


def test_inverse_minimum_order_value_counts_contracts_not_price():
    """An inverse contract's order value in the quote currency is size x contract size, whatever the
    price: with 10 USD contracts and a 20 USD minimum, 1 contract is refused and 2 pass."""
    inst = INST.model_copy(update={"contract": "inverse", "contract_size": 10.0, "min_notional": 20.0})
    rows = [*book(100, 101), (20, "trade", 1, 99, 1)]

    def script(ex):
        if ex.orders_placed == 0 and ex.now >= T0 + MS:
            ex.place(BUY, 100, 1)
            ex.place(BUY, 100, 2)

    _, seen = run(rows, script, instrument=inst)
    assert [r.kind for r in seen if r.kind in ("accepted", "rejected")] == ["rejected", "accepted"]


def test_price_outside_the_venue_band_is_rejected_with_reason():
    """Binance's PERCENT_PRICE: a price beyond up x mid or below down x mid is rejected. The mid is
    100.5 ticks and the band 0.95-1.05, so the edges are 95.475 and 105.525: 95 and 106 fail, 96
    passes."""
    inst = INST.model_copy(update={"price_band": (0.95, 1.05)})
    rows = [*book(100, 101), (20, "trade", 1, 99, 1)]

    def script(ex):
        if ex.orders_placed == 0 and ex.now >= T0 + MS:
            ex.place(BUY, 95, 1)
            ex.place(BUY, 96, 1)
            ex.place(SELL, 106, 1)

    _, seen = run(rows, script, instrument=inst)
    outcome = {r.order_id: r.kind for r in seen if r.kind in ("accepted", "rejected")}
    assert outcome == {1: "rejected", 2: "accepted", 3: "rejected"}
    reason = next(r.reason for r in seen if r.kind == "rejected")
    assert reason == "price is outside the venue's band around the mid (percent price filter)"


def test_inverse_fill_books_coins_and_fees_on_the_coin_notional():
    """An inverse contract (10 USD each, settled in the coin): buying q at p pays nothing in USD but
    gains q x 10 / p coins of cash against a position worth -q x 10 / m at mark m; the fee is a
    fraction of the coin notional q x 10 / p. Price 100 ticks of 0.01 = 1.00 USD."""
    inst = INST.model_copy(update={"contract": "inverse", "contract_size": 10.0})
    rows = [*book(100, 101, 10, 10), (5, "trade", -1, 101, 20), (6, "trade", -1, 102, 1)]

    def script(ex):
        if ex.now >= T0 + MS and ex.orders_placed == 0:
            ex.place(SELL, 101, 2)  # maker at 1.01
            ex.place(SELL, 100, 1, False)  # taker at 1.00

    ex, seen = run(rows, script, instrument=inst)
    by_maker = {r.maker: r for r in seen if r.kind == "fill"}
    taker, maker = by_maker[False], by_maker[True]
    coins_taker, coins_maker = 1 * 10 / 1.00, 2 * 10 / 1.01
    assert taker.fee == pytest.approx(coins_taker * INST.taker_fee, rel=1e-12)
    assert maker.fee == pytest.approx(coins_maker * INST.maker_fee, rel=1e-12)
    # selling inverse contracts: cash = sum(side x q x 10 / p) - fees with side -1
    assert ex.cash == pytest.approx(-(coins_taker + coins_maker) - taker.fee - maker.fee, rel=1e-12)
    assert ex.notional == pytest.approx(coins_taker + coins_maker, rel=1e-12)
    assert ex.position_lots == -3


# -- cancels -----------------------------------------------------------------------------------------


def test_fill_while_cancel_is_in_flight_counts_and_cancel_is_rejected():
    rows = [*book(100, 101, 0, 10), (5, "trade", 1, 100, 3), (5.5, "trade", 1, 100, 3), (30, "set", 1, 99, 1)]
    oid = []

    def script(ex):
        if not oid and ex.now >= T0 + MS:
            oid.append(ex.place(BUY, 100, 3))
        elif oid and ex.now >= T0 + 4.5 * MS and ex.cancels_sent == 0:
            ex.cancel(oid[0])  # arrives at ~5.5+ ms, after the 5 ms trade filled us

    _, seen = run(rows, script, entry_ms=1)
    assert kinds(seen) == ["accepted", "fill", "cancel_rejected"]


def test_cancel_removes_order_before_later_trades():
    rows = [*book(100, 101, 0, 10), (10, "trade", 1, 100, 3)]
    oid = []

    def script(ex):
        if not oid and ex.now >= T0 + MS:
            oid.append(ex.place(BUY, 100, 3))
        elif oid and ex.now >= T0 + 4 * MS and ex.cancels_sent == 0:
            ex.cancel(oid[0])

    _, seen = run(rows, script)
    assert kinds(seen) == ["accepted", "cancelled"]


def test_timer_wakes_the_strategy_inside_a_data_gap():
    """No events between 5 ms and 500 ms: a timer at 100 ms still wakes the strategy then."""
    from simkit import events

    from quotewise.sim.exchange import SimConfig, SimExchange

    ex = SimExchange(INST, 0, 1_000, SimConfig(interval_ns=10**12))
    ex.feed(events([*book(), (5, "set", 1, 99, 1), (500, "set", 1, 98, 1)]))
    ex.set_timer(T0 + 100 * MS)
    wakes = []
    while ex.advance():
        wakes.append(ex.now)
        if ex.timer_due:
            assert ex.last_event_local == T0 + 5 * MS  # the gap: nothing since 5 ms
            ex.set_timer(None)
        if ex.decision_due:
            ex.schedule_next_decision()
    assert T0 + 100 * MS in wakes


def test_fill_report_can_reach_the_strategy_before_the_trade_it_shows():
    """Feed latency 20 ms, response latency 1 ms: the trade at 40 ms fills us at the exchange and the
    report reaches the strategy at 41 ms, while the market data showing that trade arrives only at
    60 ms, as it can live. The exchange works at exchange time, not when the strategy sees events."""
    rows = [*book(100, 101, 0, 10), (40, "trade", 1, 100, 5)]
    wake_times: list[int] = []
    delivered: list[tuple[int, int]] = []  # (strategy clock, last event it had seen) at the fill

    def script(ex):
        wake_times.append(ex.now)
        if ex.orders_placed == 0:
            ex.place(BUY, 100, 5)

    config = SimConfig(entry_latency_ns=MS, response_latency_ns=MS, feed_latency_ns=20 * MS, interval_ns=1)
    ex = SimExchange(INST, 0, 1_000, config)
    ex.feed(events(with_clock(rows)))
    while (woke := ex.advance()) or ex.pending_responses():
        delivered += [(ex.now, ex.last_event_local) for r in ex.responses() if r.kind == "fill"]
        if not woke:
            break
        if ex.decision_due:
            script(ex)
            ex.schedule_next_decision()
    assert delivered, "the fill report never reached the strategy"
    now, last_seen = delivered[0]
    assert now == T0 + 41 * MS
    assert last_seen < T0 + 60 * MS  # the trade print itself is still on its way
    assert wake_times == sorted(wake_times)


def test_whole_fill_mode_fills_the_order_once_the_queue_is_passed():
    """Comparison mode (hftbacktest's no-partial exchange): 3 ahead, a trade of 4 fills all 5 lots."""
    from simkit import events, with_clock

    from quotewise.sim.exchange import SimConfig, SimExchange

    rows = [*book(100, 101, 3, 10), (5, "trade", 1, 100, 4)]
    for partial, expected in ((True, [1]), (False, [5])):
        ex = SimExchange(INST, 0, 1_000, SimConfig(interval_ns=1, partial_fills=partial))
        ex.feed(events(with_clock(rows)))
        got = []
        while ex.advance():
            got += [r.qty for r in ex.responses() if r.kind == "fill"]
            if ex.decision_due:
                if ex.orders_placed == 0 and ex.now >= T0 + MS:
                    ex.place(BUY, 100, 5)
                ex.schedule_next_decision()
        assert got == expected


def test_strategy_decides_at_the_first_grid_time_after_a_change():
    """Events at 0 and 1000 ms, decisions every 100 ms: the strategy decides at 0 (it has just seen
    the book), and at 100 ms (its order's ack arrived at 2 ms), not at the grid times just before
    the next event; grid times with nothing new are skipped."""
    from simkit import events

    from quotewise.sim.exchange import SimConfig, SimExchange

    ex = SimExchange(INST, 0, 1_000, SimConfig(interval_ns=100 * MS))
    ex.feed(events([*book(), (1000, "set", 1, 99, 1)]))
    decisions = []
    while ex.advance():
        ex.responses()
        if ex.decision_due:
            decisions.append(ex.now - T0)
            if not decisions[1:]:
                ex.place(BUY, 100, 1)
            ex.schedule_next_decision()
    assert decisions == [0, 100 * MS]


def test_decision_grid_can_start_at_a_given_origin():
    """With an origin at 30 ms the grid is 30 ms + k x 100 ms: decisions at 30 ms (the book is
    there) and 130 ms (the order's ack came at 32 ms), never at 0 or 100 ms."""
    config = SimConfig(interval_ns=100 * MS, decision_origin_ns=T0 + 30 * MS)
    ex = SimExchange(INST, 0, 1_000, config)
    ex.feed(events([*book(), (1000, "set", 1, 99, 1)]))
    decisions = []
    while ex.advance():
        ex.responses()
        if ex.decision_due:
            decisions.append(ex.now - T0)
            if not decisions[1:]:
                ex.place(BUY, 100, 1)
            ex.schedule_next_decision()
    assert decisions == [30 * MS, 130 * MS]


@pytest.mark.parametrize(("market_first", "filled"), [(False, True), (True, False)])
def test_tie_between_an_arrival_and_a_trade(market_first, filled):
    """An order sent at 1 ms arrives at 2 ms, the exchange time of a trade at its price. By default
    the order goes first (a millisecond stamp truncates the trade's true time, which is at or after
    the arrival), so the trade fills it; hftbacktest's rule lets the market go first."""
    rows = [*book(100, 101, 0, 10), (1, "set", -1, 500, 1), (2, "trade", 1, 100, 5)]
    config = SimConfig(interval_ns=1, market_first_on_ties=market_first)
    ex = SimExchange(INST, 0, 1_000, config)
    ex.feed(events(with_clock(rows)))
    seen = []
    while ex.advance():
        seen += ex.responses()
        if ex.decision_due:
            if ex.orders_placed == 0 and ex.now >= T0 + MS:
                assert ex.now == T0 + MS
                ex.place(BUY, 100, 5)
            ex.schedule_next_decision()
    seen += ex.pending_responses()
    assert ("fill" in kinds(seen)) == filled
