"""Each risk limit and action of docs/risk.md on small hand-made inputs (a scripted venue, no market)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError
from riskkit import INST, SECOND, T0, Desk

from quotewise.errors import ConfigError
from quotewise.model.instrument import Instrument
from quotewise.quoting.base import Quote, QuoteSet
from quotewise.risk import ACTIONS, RiskConfig, events_table
from quotewise.risk.config import parse_band

BUY, SELL = 1, -1

# -- the configuration -----------------------------------------------------------------------------


def test_config_reads_units_and_defaults_to_no_limit():
    cfg = RiskConfig(max_loss=5, max_loss_window="2m", stale_after="500ms", price_band="5%", pause_for=30)
    assert cfg.max_loss_window == 120 * SECOND
    assert cfg.stale_after == SECOND // 2
    assert cfg.pause_for == 30 * SECOND // 1000  # a bare number is milliseconds, as everywhere in Quotewise
    assert cfg.price_band == pytest.approx(0.05)
    assert RiskConfig(price_band="50bp").price_band == pytest.approx(0.005)
    off = RiskConfig()
    assert off.max_pos is None and off.stale_after is None and off.pause_for == 60 * SECOND
    assert RiskConfig(**cfg.model_dump()) == cfg  # round-trips, as a YAML file will


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_pos": -1}, "greater than 0"),
        ({"max_loss_window": "1m"}, "needs max_loss"),
        ({"stale_after": "soon"}, "stale_after"),
        ({"reduce_only_at": 1.5}, "less than or equal to 1"),
        ({"max_order_rate": 0.5}, "greater than or equal to 1"),
        ({"max_postion": 3}, "max_postion"),
    ],
)
def test_config_refuses_bad_values(fields, message):
    with pytest.raises((ValidationError, ConfigError), match=message):
        RiskConfig(**fields)


def test_price_band_text():
    assert parse_band("2%") == pytest.approx(0.02)
    with pytest.raises(ConfigError, match=r"5%, 50bp or 0\.05"):
        parse_band("wide")


# -- position limit: worst case of every order on a side -------------------------------------------


def test_new_orders_are_trimmed_so_the_worst_case_stays_inside_max_pos():
    d = Desk(max_pos=3).at(0)
    d.decide(bids=[(9_999, 2), (9_998, 2)], asks=[(10_001, 5)])
    # bids: 2 fit, the next level gets the 1 lot left; asks: 5 would reach -5, cut to 3
    assert d.book(BUY) == [(9_999, 2, "pending_new"), (9_998, 1, "pending_new")]
    assert d.book(SELL) == [(10_001, 3, "pending_new")]
    trims = [e for e in d.risk.events if e.action == "trim"]
    assert [(e.rule, e.value, e.limit) for e in trims] == [("max_pos", 4.0, 3.0), ("max_pos", 5.0, 3.0)]
    assert "cut to 1 lots" in trims[0].detail and "cut to 3 lots" in trims[1].detail


def test_orders_being_cancelled_still_count_until_the_cancel_is_confirmed():
    d = Desk(max_pos=3).at(0)
    d.decide(bids=[(9_999, 3)])
    d.ack_all()
    d.at(0.1).decide(bids=[(10_000, 3)])  # requote: the old bid may still fill while its cancel flies
    assert d.book(BUY) == [(9_999, 3, "pending_cancel")]
    assert d.risk.events[-1].action == "trim" and "dropped" in d.risk.events[-1].detail
    d.confirm_cancels()
    d.at(0.2).decide(bids=[(10_000, 3)])
    assert d.book(BUY) == [(10_000, 3, "pending_new")]


def test_fills_known_from_reports_use_up_the_room():
    d = Desk(max_pos=3).at(0)
    d.decide(bids=[(9_999, 2)], asks=[(10_001, 2)])
    d.ack_all()
    d.fill(BUY, 9_999, 2)  # long 2: one more lot may be bought; up to 5 sold
    d.at(0.1).decide(bids=[(9_999, 2)], asks=[(10_001, 2)])
    assert d.book(BUY) == [(9_999, 1, "pending_new")]
    assert d.book(SELL) == [(10_001, 2, "working")]


def test_a_trimmed_order_is_kept_rather_than_replaced():
    d = Desk(max_pos=3).at(0)
    d.decide(bids=[(9_999, 5)])
    d.ack_all()
    d.at(0.1).decide(bids=[(9_999, 5)])  # still wants 5 at the same price: keep the 3 working
    assert d.book(BUY) == [(9_999, 3, "working")]
    assert d.venue.cancels == []
    assert "kept the working 3 lots" in d.risk.events[-1].detail


def test_reduce_only_near_the_limit_then_both_sides_again():
    d = Desk(max_pos=3).at(0)
    d.decide(bids=[(9_999, 3)])
    d.ack_all()
    d.fill(BUY, 9_999, 3)  # long 3 >= 0.8 x 3
    d.at(0.1).decide(bids=[(9_998, 1)], asks=[(10_001, 5)])
    assert d.book(BUY) == []  # the adding side is not quoted
    assert d.book(SELL) == [(10_001, 3, "pending_new")]  # sells only down to flat
    assert d.actions()[-2:] == [("max_pos", "reduce_only"), ("max_pos", "trim")]
    assert "reduce_only" in d.risk.events[-1].detail
    d.ack_all()
    d.fill(SELL, 10_001, 2)  # long 1: below 2.4
    d.at(0.2).decide(bids=[(9_998, 1)], asks=[(10_001, 3)])
    assert ("max_pos", "resume") in d.actions()
    assert d.book(BUY) == [(9_998, 1, "pending_new")]


def test_reduce_only_threshold_is_configurable():
    d = Desk(max_pos=10, reduce_only_at=0.5).at(0)
    d.decide(bids=[(9_999, 5)])
    d.ack_all()
    d.fill(BUY, 9_999, 5)
    d.at(0.1).decide(bids=[(9_998, 1)], asks=[(10_001, 1)])
    assert d.book(BUY) == [] and d.risk.reduce_only


def test_notional_limit_is_a_position_limit_at_fair_value():
    d = Desk(max_notional=350).at(0)  # fair 100.00: 3 lots
    d.decide(bids=[(9_999, 5)])
    assert d.book(BUY) == [(9_999, 3, "pending_new")]
    trim = d.risk.events[-1]
    assert trim.rule == "max_notional" and trim.limit == pytest.approx(300.0)  # 3 lots x 100.00


BINARY = Instrument(symbol="YES", tick_size=0.01, lot_size=1, min_price=0.01, max_price=0.99)


def test_dollars_at_risk_limit_a_binary_position_by_its_worst_settlement():
    """At fair 0.20 a long share can lose 0.20 (it pays 0), a short one 0.80 (it pays 1): a 40-dollar
    cap allows 200 shares long and 50 short."""
    d = Desk(BINARY, max_at_risk=40)
    d.fair = 20.0
    d.at(0).decide(bids=[(19, 500)], asks=[(21, 500)])
    assert d.book(BUY) == [(19, 200, "pending_new")]
    assert d.book(SELL) == [(21, 50, "pending_new")]
    trims = {e.detail.split(":")[0]: e for e in d.risk.events if e.action == "trim"}
    assert all(e.rule == "max_at_risk" and e.limit == pytest.approx(40.0) for e in trims.values())
    assert sorted(e.value for e in trims.values()) == pytest.approx([100.0, 400.0])  # 500 x 0.20, 500 x 0.80


def test_dollars_at_risk_puts_a_short_near_its_limit_in_reduce_only():
    d = Desk(BINARY, max_at_risk=40)
    d.fair = 20.0
    d.ledger.position = -45  # 45 x 0.80 = 36 at risk: 90% of the 50-share short limit
    d.at(0).decide(bids=[(19, 10)], asks=[(21, 10)])
    assert d.risk.reduce_only and d.book(SELL) == [] and d.book(BUY) == [(19, 10, "pending_new")]


def test_dollars_at_risk_is_refused_where_prices_are_not_probabilities():
    with pytest.raises(ConfigError, match="max_at_risk"):
        Desk(max_at_risk=40)


def test_a_shrinking_limit_pulls_the_orders_that_no_longer_fit():
    d = Desk(max_notional=350).at(0)
    d.decide(bids=[(9_999, 3)])
    d.ack_all()
    d.fair = 20_000.0  # price doubled: the 3 working lots are now worth 600 > 350
    d.at(0.1).decide(bids=[(9_999, 3)])
    assert d.book(BUY) == [(9_999, 3, "pending_cancel")]


# -- pre-trade validation --------------------------------------------------------------------------


def test_pre_trade_checks_reject_with_a_reason():
    inst = Instrument(symbol="TEST", tick_size=0.01, lot_size=1.0, min_size_lots=2)
    d = Desk(inst, max_order_size=10, max_order_notional=900, price_band="1%").at(0)
    bids = [Quote(9_950, 2), Quote(9_949, 11), Quote(9_948, 1), Quote(9_947.5, 2), Quote(9_800, 2)]
    asks = [Quote(10_050, 2.5), Quote(10_010, 9)]  # a user strategy can hand back floats
    d.risk.decide(QuoteSet(bids, asks), d.market(), d.om)
    assert d.book(BUY) == [(9_950, 2, "pending_new")]
    assert d.book(SELL) == []
    rejects = {e.rule: e for e in d.risk.events if e.action == "reject"}
    assert set(rejects) == {"max_order_size", "min_size", "tick", "price_band", "lot", "max_order_notional"}
    assert rejects["max_order_size"].value == 11 and rejects["max_order_size"].limit == 10
    assert "fat finger" in rejects["max_order_size"].detail
    assert rejects["price_band"].value == pytest.approx(0.02) and rejects["price_band"].limit == 0.01
    assert rejects["max_order_notional"].value == pytest.approx(9 * 100.10)
    assert "bid 2 lots at 98" in rejects["price_band"].detail


def test_no_fair_value_means_no_order_passes_the_band():
    d = Desk(price_band="5%").at(0)
    d.fair = None
    d.decide(bids=[(9_999, 1)])
    assert d.book(BUY) == []
    assert d.risk.events[-1].rule == "price_band" and math.isnan(d.risk.events[-1].value)


# -- losses: halt, pause, daily --------------------------------------------------------------------


def lose(d: Desk, dollars: float) -> None:
    """Buy one lot at 100.00 and mark the fair value ``dollars`` lower."""
    d.decide(bids=[(10_000, 1)])
    d.ack_all()
    d.fill(BUY, 10_000, 1)
    d.fair = 10_000 - dollars * 100


def test_max_loss_halts_cancels_everything_and_only_an_operator_resumes():
    d = Desk(max_loss=2).at(0)
    lose(d, 1)
    d.decide(asks=[(10_001, 1)])
    d.ack_all()
    d.fair = 9_790.0  # -2.10
    d.at(1).update()
    assert d.risk.halted
    halt = d.risk.events[-1]
    assert (halt.rule, halt.action, halt.value, halt.limit) == ("max_loss", "halt", pytest.approx(2.1), 2.0)
    assert d.book(SELL) == [(10_001, 1, "pending_cancel")]
    assert d.om.log[-1].reason == "risk halt: max_loss"
    d.confirm_cancels()
    d.fair = 10_500.0  # the market recovers: a halt stays
    d.at(3600).decide(asks=[(10_501, 1)])
    assert d.book(SELL) == []
    d.risk.resume(d.venue.now)
    assert d.actions()[-1] == ("operator", "resume")
    d.at(3601).decide(asks=[(10_501, 1)])
    assert d.book(SELL) == [(10_501, 1, "pending_new")]


COINM = Instrument(
    symbol="BTCUSD_PERP", tick_size=0.1, contract="inverse", contract_size=100.0, base="BTC", quote="USD"
)


def test_inverse_losses_and_notional_are_counted_in_coins():
    """COIN-M BTCUSD_PERP (100 USD a contract): long 10 contracts from 60,000, marked at 59,000, has
    lost 10 x 100 x (1/59000 - 1/60000) = 0.000282 BTC. A linear reading would say 10,000 "USD" and
    halt at once; a 0.0005 BTC limit does not halt there, and does at 55,000 (0.001515 BTC)."""
    d = Desk(COINM, max_loss=0.0005, max_notional=0.02).at(0)
    d.fair = 600_000.0
    d.decide(bids=[(600_000, 10)])  # 10 contracts = 1,000 USD = 0.01667 BTC: inside 0.02 BTC
    assert d.book(BUY) == [(600_000, 10, "pending_new")]
    d.ack_all()
    d.fill(BUY, 600_000, 10)
    d.fair = 590_000.0
    d.at(1).update()
    assert not d.risk.halted
    assert d.risk.pnl == pytest.approx(-1000 * (1 / 59_000 - 1 / 60_000), rel=1e-12)
    d.fair = 550_000.0
    d.at(2).update()
    assert d.risk.halted
    assert d.risk.events[-1].value == pytest.approx(1000 * (1 / 55_000 - 1 / 60_000), rel=1e-12)


def test_inverse_notional_limit_is_coins_at_fair_value():
    """max_notional 0.02 BTC at 60,000 is 0.02 x 60,000 / 100 = 12 contracts."""
    d = Desk(COINM, max_notional=0.02).at(0)
    d.fair = 600_000.0
    d.decide(bids=[(599_990, 20)])
    assert d.book(BUY) == [(599_990, 12, "pending_new")]
    assert d.risk.events[-1].limit == pytest.approx(0.02)


def test_orders_below_the_venue_minimum_value_are_rejected_before_sending():
    inst = Instrument(symbol="BTCUSDT", tick_size=0.1, lot_size=0.001, min_notional=100.0)
    d = Desk(inst, max_pos=1).at(0)
    d.fair = 600_000.0
    d.decide(bids=[(599_990, 1), (599_980, 2)])  # 60 and 120 USDT
    assert d.book(BUY) == [(599_980, 2, "pending_new")]
    reject = next(e for e in d.risk.events if e.action == "reject")
    assert (reject.rule, reject.limit) == ("min_notional", 100.0)
    assert reject.value == pytest.approx(59.999)


def test_kill_switch_by_hand():
    d = Desk().at(0)
    d.decide(bids=[(9_999, 1)], asks=[(10_001, 1)])
    d.risk.halt(d.venue.now, d.om)
    assert d.actions() == [("operator", "halt")]
    assert {s for _, _, s in d.book(BUY) + d.book(SELL)} == {"pending_cancel"}


def test_drawdown_is_measured_from_the_peak_not_from_zero():
    d = Desk(max_drawdown=3).at(0)
    lose(d, -10)  # up 10
    d.at(1).update()
    d.fair = 10_000 + 6.5 * 100  # up 6.5: total return positive, 3.5 below the peak
    d.at(2).update()
    assert d.risk.halted
    e = d.risk.events[-1]
    assert (e.rule, e.value, e.limit) == ("max_drawdown", pytest.approx(3.5), 3.0)


def test_window_loss_pauses_for_the_cooling_period_then_resumes():
    d = Desk(max_loss=2, max_loss_window="60s", pause_for="30s").at(0)
    lose(d, 0)
    d.at(10).update()
    d.fair = 9_750.0  # -2.50 within 60 s
    d.at(20).decide(asks=[(9_751, 1)])
    assert d.risk.paused_until == T0 + 50 * SECOND
    assert d.actions()[-1] == ("max_loss", "pause") and d.book(SELL) == []
    assert d.risk.next_wake(d.venue.now) == T0 + 50 * SECOND  # woken when the pause ends
    d.at(49.9).decide(asks=[(9_751, 1)])
    assert d.book(SELL) == []
    d.at(50).decide(asks=[(9_751, 1)])
    assert d.actions()[-1] == ("max_loss", "resume")
    assert d.book(SELL) == [(9_751, 1, "pending_new")]
    d.at(51).update()  # the window restarted at the resume: the old peak no longer counts
    assert not d.risk.blocked


def test_a_slow_loss_spread_over_more_than_the_window_does_not_pause():
    d = Desk(max_loss=2, max_loss_window="60s").at(0)
    lose(d, 0)
    for minute in range(1, 6):
        d.fair = 10_000 - 150 * minute  # -1.50 a minute
        d.at(60 * minute).update()
    assert not d.risk.blocked and d.risk.pnl == pytest.approx(-7.5)


def test_max_loss_without_a_window_counts_from_the_start():
    d = Desk(max_loss=2).at(0)
    lose(d, 0)
    for minute in range(1, 3):
        d.fair = 10_000 - 150 * minute
        d.at(60 * minute).update()
    assert d.risk.halted


def test_daily_loss_pauses_until_the_next_utc_day():
    d = Desk(max_daily_loss=5).at(0)
    lose(d, 6)
    d.at(60).update()
    midnight = (T0 // (86_400 * SECOND) + 1) * 86_400 * SECOND
    assert d.risk.paused_until == midnight and d.actions()[-1] == ("max_daily_loss", "pause")
    d.venue.now = d.last_event = midnight
    d.update()
    assert d.actions()[-1] == ("max_daily_loss", "resume") and not d.risk.blocked


# -- stale data ------------------------------------------------------------------------------------


def test_stale_data_cancels_quotes_until_data_flows_again():
    d = Desk(stale_after="5s").at(0)
    d.decide(bids=[(9_999, 1)])
    assert d.risk.next_wake(d.venue.now) == T0 + 5 * SECOND
    d.venue.now = T0 + 5 * SECOND  # the timer: nothing came since t=0
    d.update()
    e = d.risk.events[-1]
    assert (e.rule, e.action, e.value, e.limit) == ("stale_after", "stale", 5.0, 5.0)
    assert d.book(BUY) == [(9_999, 1, "pending_cancel")]
    assert d.om.log[-1].reason == "risk: stale market data"
    assert d.risk.next_wake(d.venue.now) is None  # nothing to wait for until data comes
    d.confirm_cancels()
    d.venue.now = T0 + 60 * SECOND
    d.decide(bids=[(9_999, 1)])
    assert d.book(BUY) == []
    d.at(61).decide(bids=[(9_999, 1)])
    assert d.actions()[-1] == ("stale_after", "fresh")
    assert d.book(BUY) == [(9_999, 1, "pending_new")]


def test_no_data_yet_is_not_stale():
    d = Desk(stale_after="1s")
    d.last_event = None
    d.venue.now = T0 + 10 * SECOND
    d.update()
    assert not d.risk.stale and d.risk.next_wake(d.venue.now) is None


# -- order rate ------------------------------------------------------------------------------------


def test_order_rate_holds_back_new_orders_but_never_cancels():
    d = Desk(max_order_rate=3).at(0)
    d.decide(bids=[(9_999, 1)], asks=[(10_001, 1)])  # 2 sent
    d.ack_all()
    d.at(0.1).decide(bids=[(9_998, 1)], asks=[(10_002, 1)])  # 2 cancels + 2 orders: only the cancels go
    assert d.book(BUY) == [(9_999, 1, "pending_cancel")] and d.book(SELL) == [(10_001, 1, "pending_cancel")]
    e = d.risk.events[-1]
    assert (e.rule, e.action, e.value, e.limit) == ("max_order_rate", "throttle", 6.0, 3.0)
    assert e.detail == "2 of 2 new orders held back"
    d.confirm_cancels()
    d.at(1.05).decide(bids=[(9_998, 1)], asks=[(10_002, 1)])  # the first two left the window
    assert d.book(BUY) == [(9_998, 1, "pending_new")] and d.book(SELL) == []
    d.at(1.2).decide(bids=[(9_998, 1)], asks=[(10_002, 1)])
    assert d.book(SELL) == [(10_002, 1, "pending_new")]


# -- the record ------------------------------------------------------------------------------------


def test_events_table_has_the_report_columns_and_counts_cover_every_action():
    d = Desk(max_pos=1, stale_after="1s").at(0)
    d.decide(bids=[(9_999, 2)])
    table = events_table(d.risk.events)
    assert table.column_names == ["ts", "rule", "action", "value", "limit", "detail"]
    assert [str(t) for t in table.schema.types] == ["int64", "string", "string", "double", "double", "string"]
    assert table.column("ts").to_pylist() == [T0]
    assert events_table([]).num_rows == 0
    counts = d.risk.counts()
    assert list(counts) == list(ACTIONS) and counts["trim"] == 1 and sum(counts.values()) == 1


def test_an_unlimited_engine_passes_quotes_through():
    d = Desk(inst=INST).at(0)
    d.decide(bids=[(9_999, 100)], asks=[(10_001, 100)])
    assert d.book(BUY) == [(9_999, 100, "pending_new")] and d.risk.events == []
