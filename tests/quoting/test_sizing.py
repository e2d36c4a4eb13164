"""Order sizes against what the venue accepts: refused with a reason, or chosen to pass."""

from __future__ import annotations

import pytest

from quotewise.errors import ConfigError
from quotewise.model.instrument import Instrument
from quotewise.quoting.base import resolve_size
from quotewise.quoting.loader import make_strategy

USDM = Instrument(
    symbol="BTCUSDT", tick_size=0.1, lot_size=0.001, min_notional=100.0, quote="USDT", base="BTC"
)
PRICE = 618_000  # 61,800.0 in ticks of 0.1
COINM = Instrument(
    symbol="BTCUSD_PERP", tick_size=0.1, contract="inverse", contract_size=100.0, min_notional=200
)


def test_default_size_clears_the_minimum_order_value_with_room_to_spare():
    """110 USDT at 61,800 is 0.00178 BTC: 0.002 in lots of 0.001 (123.6 USDT)."""
    strat = make_strategy("skew")
    resolve_size(strat, USDM, PRICE)
    assert strat.params.size == 0.002
    assert USDM.quote_notional(PRICE, 2) >= 1.1 * USDM.min_notional


def test_default_size_without_a_minimum_value_is_the_minimum_size():
    strat = make_strategy("skew")
    resolve_size(strat, Instrument(lot_size=0.5, min_size_lots=3), None)
    assert strat.params.size == 1.5


def test_default_inverse_size_counts_contracts():
    strat = make_strategy("skew")
    resolve_size(strat, COINM, PRICE)
    assert strat.params.size == 3  # 3 x 100 USD >= 1.1 x 200 USD


def test_a_size_worth_less_than_the_minimum_is_refused_naming_the_least_that_passes():
    strat = make_strategy("skew", {"size": 0.001})
    least = r"worth 61\.8 USDT .* minimum order value of 100 .* at least 0\.002"
    with pytest.raises(ConfigError, match=least):
        resolve_size(strat, USDM, PRICE)


def test_a_size_off_the_lot_grid_or_below_the_minimum_size_is_refused():
    with pytest.raises(ConfigError, match=r"not a whole number of the venue's size step 0\.001"):
        resolve_size(make_strategy("skew", {"size": 0.0015}), USDM, PRICE)
    with pytest.raises(ConfigError, match="minimum order size 3"):
        resolve_size(make_strategy("skew", {"size": 2}), Instrument(min_size_lots=3), None)


def test_sizes_follow_the_venues_step_when_the_data_is_finer():
    """Spot BTCUSDT books show sizes to 1e-6 BTC (partial fills leave remainders) while orders step by
    1e-5: 5.5 USDT at 61,800 is 0.000089 BTC, rounded up to the step: 0.00009."""
    spot = Instrument(
        symbol="BTCUSDT",
        tick_size=0.01,
        lot_size=0.000001,
        order_lots=10,
        min_size_lots=10,
        min_notional=5.0,
        quote="USDT",
        base="BTC",
    )
    strat = make_strategy("skew")
    resolve_size(strat, spot, 6_180_000)
    assert strat.params.size == 0.00009
    with pytest.raises(ConfigError, match=r"size step 1e-05"):
        resolve_size(make_strategy("skew", {"size": 0.000095}), spot, 6_180_000)


def test_a_valid_size_is_kept():
    strat = make_strategy("skew", {"size": 0.005})
    resolve_size(strat, USDM, PRICE)
    assert strat.params.size == 0.005
