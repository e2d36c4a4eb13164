"""Built-in strategies and the quantities users type."""

from __future__ import annotations

import pytest

from quotewise.book.view import MarketView
from quotewise.errors import ConfigError
from quotewise.model.instrument import Instrument
from quotewise.quoting.base import Quote
from quotewise.quoting.loader import make_strategy

INST = Instrument(symbol="T", tick_size=0.01, lot_size=1.0)


def view(bb=10_000, ba=10_002, position=0) -> MarketView:
    return MarketView(
        time=0, instrument=INST, best_bid=bb, best_ask=ba, bid_size=5, ask_size=5, position=position
    )


def test_symmetric_quotes_around_mid():
    s = make_strategy("symmetric", {"spread": "3ticks", "size": 2})
    s.on_start(INST)
    q = s.quotes(view(10_000, 10_002))  # mid 10001
    assert q.bids == [Quote(9_998, 2)] and q.asks == [Quote(10_004, 2)]


def test_symmetric_never_crosses_the_book():
    s = make_strategy("symmetric", {"spread": "0.5ticks"})
    s.on_start(INST)
    q = s.quotes(view(10_000, 10_001))  # mid 10000.5; 0.5 tick either side lands on the touch
    assert q.bids[0].price <= 10_000 and q.asks[0].price >= 10_001


def test_skew_moves_centre_against_inventory_and_stops_adding_side():
    s = make_strategy("skew", {"spread": "2ticks", "skew": 1.0, "max_inventory": 4, "size": 1})
    s.on_start(INST)
    flat = s.quotes(view(position=0))
    long2 = s.quotes(view(position=2))
    # centre moves down by skew * hs * q / max = 1 * 2 * 2 / 4 = 1 tick
    assert long2.bids[0].price == flat.bids[0].price - 1
    assert long2.asks[0].price == flat.asks[0].price - 1
    at_limit = s.quotes(view(position=4))
    assert at_limit.bids == [] and at_limit.asks
    short_limit = s.quotes(view(position=-4))
    assert short_limit.asks == [] and short_limit.bids


def test_unknown_strategy_and_parameter_are_named():
    builtins = "adaptive, avellaneda-stoikov, glft, ladder, skew, symmetric"
    with pytest.raises(ConfigError, match=f"built-ins are {builtins}"):
        make_strategy("nope")
    with pytest.raises(ConfigError, match="spreed"):
        make_strategy("symmetric", {"spreed": 1})
    with pytest.raises(ConfigError, match="spread"):
        make_strategy("symmetric", {"spread": "wide"})


def test_user_strategy_from_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "from quotewise.quoting.base import Strategy, QuoteSet, Quote\n"
        "class Join(Strategy):\n"
        "    name = 'join'\n"
        "    def quotes(self, view):\n"
        "        return QuoteSet([Quote(view.best_bid, 1)], [Quote(view.best_ask, 1)])\n"
    )
    s = make_strategy(f"{path}:Join")
    s.on_start(INST)
    assert s.quotes(view()).bids == [Quote(10_000, 1)]
    with pytest.raises(ConfigError, match="not a subclass"):
        make_strategy(f"{path}:Quote")
