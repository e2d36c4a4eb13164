"""Quoting components: spread, fee floor, inventory bands, ladder, requote threshold, pressure, markouts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotewise.book.view import MarketView
from quotewise.model.instrument import Instrument
from quotewise.parsing import parse_distance
from quotewise.quoting.base import Quote
from quotewise.quoting.components import (
    AdverseSelection,
    Pressure,
    RequoteFilter,
    TickDistance,
    apply_fee_floor,
    floor_fee,
    half_spread,
    inventory_band,
    ladder,
    round_trip_profit,
    skew_shift,
)
from quotewise.quoting.loader import make_strategy

S = 1_000_000_000
INST = Instrument(symbol="T", tick_size=0.01, lot_size=1.0)


def view(bb=9_999, ba=10_001, position=0, bid_size=5, ask_size=5, inst=INST) -> MarketView:
    return MarketView(0, inst, bb, ba, bid_size, ask_size, position)


def test_distance_in_ticks_bp_and_price():
    assert TickDistance.of(parse_distance("2ticks"), 0.01).at(10_000) == pytest.approx(2.0)
    assert TickDistance.of(parse_distance("2"), 0.01).at(10_000) == pytest.approx(2.0)
    # 5bp of a 100.00 mid (10,000 ticks of 0.01) = 0.05 = 5 ticks
    assert TickDistance.of(parse_distance("5bp"), 0.01).at(10_000) == pytest.approx(5.0)
    assert TickDistance.of(parse_distance("0.03px"), 0.01).at(10_000) == pytest.approx(3.0)


def test_half_spread_base_vol_and_caps():
    assert half_spread(2.0, 3.0, 0.5) == pytest.approx(3.5)  # 2 + 0.5 * 3
    assert half_spread(2.0, 3.0, 0.5, lo=4.0) == pytest.approx(4.0)
    assert half_spread(2.0, 3.0, 0.5, hi=3.0) == pytest.approx(3.0)


def test_fee_floor_by_hand():
    # bid 9999, ask 10001 (ticks), fee 10.5bp: d = bid (1 + f) - ask (1 - f) = -2 + 0.00105 * 20000 = 19
    # widening both by x lowers d by 2x: x = floor(19 / 2) + 1 = 10 -> (9989, 10011)
    assert apply_fee_floor(9_999, 10_001, 0.00105) == (9_989, 10_011)
    # 10011 (1 - 0.00105) - 9989 (1.00105) = 22 - 21 = 1 > 0; one tick less: 20 - 21 = -1 loses
    assert round_trip_profit(9_989, 10_011, 0.00105) == pytest.approx(1.0)
    assert round_trip_profit(9_990, 10_010, 0.00105) == pytest.approx(-1.0)
    assert apply_fee_floor(9_999, 10_001, 0.0) == (9_999, 10_001)  # no fee: any bid < ask


def test_fee_floor_with_a_rebate_and_the_zero_spread_rule():
    # a maker rebate pays on both legs: every bid < ask earns, so nothing widens ...
    assert apply_fee_floor(10_000, 10_001, -0.0001) == (10_000, 10_001)
    # ... and even bid == ask would earn 2 * 0.0001 * price, but we never quote a bid at our own ask:
    # the floor is then one tick each way
    assert apply_fee_floor(10_000, 10_000, -0.0001) == (9_999, 10_001)
    # the rebate is only certain when post-only: otherwise the quote may take and pay the taker fee
    assert floor_fee(True, -0.0001, 0.0005) == -0.0001
    assert floor_fee(False, -0.0001, 0.0005) == 0.0005


@settings(max_examples=300, deadline=None)
@given(
    mid2=st.integers(min_value=3, max_value=2_000_000),
    spread_ticks=st.floats(min_value=0.0, max_value=20.0),
    maker=st.floats(min_value=-0.0005, max_value=0.005),
    taker=st.floats(min_value=0.0, max_value=0.005),
    post_only=st.booleans(),
    position=st.integers(min_value=-12, max_value=12),
    name=st.sampled_from(["symmetric", "skew", "ladder", "glft", "avellaneda-stoikov"]),
)
def test_no_quote_pair_spans_less_than_the_round_trip_fee(
    mid2, spread_ticks, maker, taker, post_only, position, name
):
    inst = Instrument(symbol="T", tick_size=0.01, maker_fee=maker, taker_fee=taker)
    bb = mid2 // 2
    ba = bb + 1 + mid2 % 2
    params: dict[str, object] = {"post_only": post_only}
    if name in ("glft", "avellaneda-stoikov"):
        params.update(sigma=0.01, k=100.0 / (1.0 + spread_ticks), gamma=0.5)
        if name == "glft":
            params["A"] = 10.0
    else:
        params["spread"] = f"{spread_ticks}ticks"
        if spread_ticks == 0:  # a zero base spread is valid with a volatility term (none known yet)
            params["vol_mult"] = 1.0
    s = make_strategy(name, params)
    s.on_start(inst)
    q = s.quotes(view(bb, ba, position, inst=inst))
    fee = floor_fee(post_only, maker, taker)
    for b in q.bids:
        for a in q.asks:
            assert a.price > b.price
            assert round_trip_profit(b.price, a.price, fee) > 0


def test_inventory_bands():
    assert inventory_band(2, 10) == "normal"
    assert inventory_band(6, 10, skew_band=0.5) == "skew"
    assert inventory_band(-10, 10, skew_band=0.5) == "stop"  # at the limit the adding side stops
    assert inventory_band(15, 10, flatten_band=1.5) == "stop"  # 1.5 x is still "at", not beyond
    assert inventory_band(16, 10, flatten_band=1.5) == "flatten"


def test_skew_shift_by_hand():
    # -skew * half * q / max = -1 * 2 * 2 / 4 = -1 tick; in the skew band (from 0.5 x) doubled: -2
    assert skew_shift(2, 4, 1.0, 2.0) == pytest.approx(-1.0)
    assert skew_shift(2, 4, 1.0, 2.0, skew_band=0.5, skew_band_factor=2.0) == pytest.approx(-2.0)
    assert skew_shift(1, 4, 1.0, 2.0, skew_band=0.5, skew_band_factor=2.0) == pytest.approx(-0.5)


def test_long_position_stops_bids_at_the_band_and_flattens_beyond():
    params = {"spread": "2ticks", "skew": 0.0, "max_inventory": 4, "flatten_band": 1.5, "size": 1}
    s = make_strategy("skew", params)
    s.on_start(INST)
    assert s.quotes(view(position=3)).bids  # below the band: both sides
    stop = s.quotes(view(position=4))  # at max_inventory: the bid (which adds) stops
    assert stop.bids == [] and stop.asks == [Quote(10_002, 1)]  # the ask stays where it was
    flat = s.quotes(view(position=7))  # beyond 1.5 x 4 = 6: only the ask, at the touch
    assert flat.bids == [] and flat.asks == [Quote(10_001, 1)]
    short = s.quotes(view(position=-7))
    assert short.asks == [] and short.bids == [Quote(9_999, 1)]
    # with skew the model's ask is already inside the spread (centre 10000 - 2 * 7 / 4 = 9996.5,
    # ask 9998.5 -> clamped to bid + 1 = 10000): flattening never quotes worse than the model
    skewed = make_strategy("skew", {**params, "skew": 1.0})
    skewed.on_start(INST)
    assert skewed.quotes(view(position=7)).asks == [Quote(10_000, 1)]


def test_ladder_by_hand():
    # 3 levels from 100 down, 2 ticks apart, sizes 10 * 0.6^i = 10, 6, 3.6 -> 10, 6, 4
    assert ladder(100, 1, 3, 2, 10, 0.6, 1) == [Quote(100, 10), Quote(98, 6), Quote(96, 4)]
    assert ladder(100, -1, 2, 1, 10, 0.01, 2) == [Quote(100, 10), Quote(101, 2)]  # at least min lots
    assert ladder(2, 1, 5, 1, 1, 1.0, 1) == [Quote(2, 1), Quote(1, 1)]  # no bid at or below zero
    # the venue's size step: 10 x 0.6 = 6 -> 5 in steps of 5; 3.6 -> 5 (the minimum)
    assert ladder(100, 1, 3, 1, 10, 0.6, 5, 5) == [Quote(100, 10), Quote(99, 5), Quote(98, 5)]


def test_ladder_strategy_levels():
    s = make_strategy("ladder", {"spread": "1tick", "size": 10, "max_orders": 3, "level_decay": 0.5})
    s.on_start(INST)
    q = s.quotes(view())
    # mid 10000: top bid 9999, ask 10001, then 1 tick apart; sizes 10, 5, 2.5 -> 2 (round half to even)
    assert q.bids == [Quote(9_999, 10), Quote(9_998, 5), Quote(9_997, 2)]
    assert q.asks == [Quote(10_001, 10), Quote(10_002, 5), Quote(10_003, 2)]


def test_requote_filter_keeps_a_price_until_it_should_move_by_the_threshold():
    f = RequoteFilter()
    assert f.apply(1, 100, 2.0, 1, 200) == 100
    assert f.apply(1, 101, 2.0, 1, 200) == 100  # moved 1 < 2: keep the order (and its queue place)
    assert f.apply(1, 102, 2.0, 1, 200) == 102  # moved 2: requote
    assert f.apply(1, 101, 2.0, 1, 101) == 101  # 102 is no longer allowed (would cross): move
    f.clear(1)
    assert f.apply(1, 50, 2.0, 1, 200) == 50


def test_threshold_in_a_strategy():
    s = make_strategy("symmetric", {"spread": "2ticks", "threshold": "2ticks"})
    s.on_start(INST)
    first = s.quotes(view(9_999, 10_001))  # mid 10000: 9998 / 10002
    assert (first.bids[0].price, first.asks[0].price) == (9_998, 10_002)
    moved1 = s.quotes(view(10_000, 10_002))  # mid +1: the new prices 9999 / 10003 are kept back
    assert (moved1.bids[0].price, moved1.asks[0].price) == (9_998, 10_002)
    moved2 = s.quotes(view(10_001, 10_003))  # mid +2 from the quotes' mid: both move
    assert (moved2.bids[0].price, moved2.asks[0].price) == (10_000, 10_004)


def test_book_pressure_reproduces_the_weighted_mid():
    # bid 3 lots, ask 1 lot, 2-tick market: imbalance (3 - 1) / 4 = 0.5; shift 0.5 * 2 / 2 = 0.5 tick,
    # exactly weighted mid - mid = 2 * (3/4 - 1/2) = 0.5
    p = Pressure(1.0, 0.0, 0.0, None, None)
    assert p.shift(view(bid_size=3, ask_size=1), 2) == pytest.approx(0.5)


def test_pressure_widens_only_the_threatened_side():
    # strong bid pressure (9 v 1 lots): an expected rise threatens our ask, which widens
    base = make_strategy("symmetric", {"spread": "2ticks"})
    wide = make_strategy("symmetric", {"spread": "2ticks", "book_skew": 4.0, "pressure_mode": "widen"})
    for s in (base, wide):
        s.on_start(INST)
    v = view(bid_size=9, ask_size=1)
    # shift = 4 * (9 - 1) / 10 * 2 / 2 = 3.2 ticks added to the ask's distance: 10000 + 2 + 3.2 -> 10006
    assert base.quotes(v).asks[0].price == 10_002
    assert wide.quotes(v).asks[0].price == 10_006
    assert wide.quotes(v).bids == base.quotes(v).bids


def test_adverse_selection_widens_and_pauses_the_picked_off_side():
    adv = AdverseSelection(horizon_ns=S, widen=0.5, pause=TickDistance(2.0, 0.0), pause_ns=5 * S)
    adv.on_fill(0, 1, 10_000)  # bought at 10000
    adv.update(S, 9_999.0)  # marked at 9999: -1 tick
    assert adv.extra(1) == pytest.approx(0.5)  # 0.5 * 1 tick
    assert adv.extra(-1) == 0.0
    assert not adv.paused(1, S)  # -1 is not as bad as -2
    adv.on_fill(2 * S, 1, 10_000)
    adv.update(3 * S, 9_990.0)  # -10: EWMA 0.2 * -10 + 0.8 * -1 = -2.8 <= -2: pause 5 s
    assert adv.paused(1, 3 * S) and adv.paused(1, 8 * S - 1) and not adv.paused(1, 8 * S)
    assert not adv.paused(-1, 3 * S)
