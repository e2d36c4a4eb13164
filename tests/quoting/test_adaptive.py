"""The adaptive components: the side predicted to be run over is widened or pulled, toxicity pauses
the side it threatens, limits shrink, the session end leaves only the reducing side; and the
``adaptive`` strategy runs end to end."""

from __future__ import annotations

import numpy as np
import pytest

import quotewise as qw
from quotewise.book.view import MarketView
from quotewise.errors import ConfigError
from quotewise.model.events import ASK, TRADE, empty_events
from quotewise.model.instrument import Instrument
from quotewise.quoting.adaptive import (
    AdaptiveStrategy,
    LimitScaler,
    SessionClock,
    SideAdjust,
    ToxicityGuard,
    adjust_quotes,
    depth_size,
    direction_adjust,
)
from quotewise.quoting.base import Quote, QuoteSet
from quotewise.quoting.loader import make_strategy
from quotewise.quoting.params import parse_clock

INST = Instrument(symbol="T", tick_size=0.01, lot_size=1.0)


def view(t=0, bb=9_999, ba=10_001, position=0, events=None) -> MarketView:
    return MarketView(t, INST, bb, ba, 5, 5, position, events=events)


def test_a_confident_up_prediction_widens_then_pulls_the_ask_and_tightens_the_bid():
    assert direction_adjust(0.6, 0.65, 2.0, 0.8, 1.0)[-1] == SideAdjust()  # not sure enough
    up = direction_adjust(0.75, 0.65, 2.0, 0.8, 1.0)
    strength = (0.75 - 0.65) / 0.35
    assert up[-1].widen == pytest.approx(2 * strength) and not up[-1].pause
    assert up[-1].size_mult == pytest.approx(1 - strength / 2) and up[1].widen == pytest.approx(-strength)
    assert direction_adjust(0.85, 0.65, 2.0, 0.8, 0.0)[-1].pause
    down = direction_adjust(0.1, 0.65, 2.0, 0.8, 0.0)
    assert down[1].pause and not down[-1].pause  # a predicted fall runs over our bid


class Predicting(AdaptiveStrategy):
    """The adaptive strategy with a fixed prediction, to test its response without a model."""

    p_up: float | None = None

    def predict(self, view: MarketView) -> float | None:
        return self.p_up


def strategy(**settings) -> Predicting:
    s = Predicting(spread=3, sweep_pause=0, **settings)
    s.on_start(INST)
    return s


def test_the_strategy_widens_or_pauses_the_side_predicted_to_be_run_over():
    plain = strategy().quotes(view())
    s = strategy()
    s.p_up = 0.75
    widened = s.quotes(view())
    assert widened.bids == plain.bids and widened.asks[0].price > plain.asks[0].price
    s.p_up = 0.9
    pulled = s.quotes(view(t=1))
    assert pulled.asks == [] and pulled.bids == plain.bids
    s.p_up = 0.05
    assert s.quotes(view(t=2)).bids == []


def sweep(t: int) -> np.ndarray:
    ev = empty_events(2)
    for i, price in enumerate((10_001, 10_002)):
        ev[i]["exch_ts"] = ev[i]["local_ts"] = t
        ev[i]["kind"], ev[i]["side"], ev[i]["price"], ev[i]["size"] = TRADE, ASK, price, 1
    return ev


def test_a_buy_sweep_pauses_our_ask_for_a_while():
    guard = ToxicityGuard(500, 0.0, 0, None, 0.0, 1.0)
    guard.update(1_000, sweep(1_000))
    assert guard.adjust(1_200)[-1].pause and not guard.adjust(1_200)[1].pause
    assert not guard.adjust(1_500)[-1].pause
    s = Predicting(spread=3, sweep_pause="1s")
    s.on_start(INST)
    assert s.quotes(view(events=sweep(0))).asks == [] and s.quotes(view(t=2_000_000_000)).asks


def test_adjusting_never_tightens_through_the_book_or_our_other_side():
    quotes = QuoteSet([Quote(9_990, 4)], [Quote(10_010, 4)])
    out = adjust_quotes(quotes, {1: SideAdjust(-50.0), -1: SideAdjust(3.0, size_mult=0.5)}, view())
    assert out.bids == [Quote(10_000, 4)] and out.asks == [Quote(10_013, 2)]


def test_depth_size_and_scaled_limits():
    assert depth_size(100, 0.1, 5, 4.0) == 2.0 and depth_size(1, 0.1, 5, 4.0) == 0.25
    limits = LimitScaler(vol_ref=2.0, streak=2, streak_factor=0.5, horizon_ns=10)
    assert limits.factor(1.0) == 1.0 and limits.factor(4.0) == 0.5
    for t in (0, 1):
        limits.on_fill(t, 1, 100.0)
    limits.update(20, 99.0)  # both buys marked 1 tick under: a streak of 2
    assert limits.factor(1.0) == 0.5


def test_session_end_quotes_only_the_reducing_side():
    end = parse_clock("00:00")
    clock = SessionClock(end, 60_000_000_000)
    day = 86_400_000_000_000
    assert clock.closing(day - 30_000_000_000) and not clock.closing(day + 1)
    s = strategy(session_end="00:00", flatten_before="60s")
    long_view = view(t=day - 1_000_000_000, position=3)
    assert (out := s.quotes(long_view)).bids == [] and out.asks
    with pytest.raises(ConfigError, match="HH:MM"):
        make_strategy("adaptive", {"session_end": "25:00"})


def test_adaptive_backtest_runs_end_to_end():
    run = qw.backtest(data="synthetic:50000", strategy="adaptive")
    assert run.summary["strategy"] == "adaptive" and run.summary["events"] == 50_000
    assert not run.summary["compiled"]
