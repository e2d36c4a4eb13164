"""Contract specifications: every money figure of a linear, inverse or quanto contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from quotewise.model.instrument import Instrument

ETHUSD_PERP = Instrument(
    symbol="ETHUSD_PERP",
    tick_size=0.01,
    lot_size=1.0,
    contract="inverse",
    contract_size=10.0,
    base="ETH",
    quote="USD",
)
BTCUSDT = Instrument(symbol="BTCUSDT", tick_size=0.1, lot_size=0.001, base="BTC", quote="USDT")


def test_inverse_round_trip_earns_coins():
    """Buy 3 ETHUSD_PERP contracts (10 USD each) at 2,500, sell them at 2,600: the P&L in ETH is
    3 x 10 x (1/2500 - 1/2600), and the position's value rises with the price."""
    buy = ETHUSD_PERP.cash_flow(1, 250_000, 3, 0.0)
    sell = ETHUSD_PERP.cash_flow(-1, 260_000, 3, 0.0)
    assert buy + sell == pytest.approx(30 * (1 / 2500 - 1 / 2600), rel=1e-12)
    held = buy + ETHUSD_PERP.value(260_000, 3)
    assert held == pytest.approx(buy + sell, rel=1e-12)
    assert ETHUSD_PERP.unit_value(2600.0) > ETHUSD_PERP.unit_value(2500.0)


def test_inverse_notional_is_in_coins_and_quote_notional_in_usd():
    assert ETHUSD_PERP.notional(250_000, 3) == pytest.approx(30 / 2500, rel=1e-12)
    assert ETHUSD_PERP.quote_notional(250_000, 3) == 30.0
    assert ETHUSD_PERP.to_quote(0.001, 250_000) == pytest.approx(2.5)
    assert ETHUSD_PERP.settle_currency == "ETH"
    assert ETHUSD_PERP.size_currency == "contracts"


def test_linear_value_is_price_times_size():
    assert BTCUSDT.value(618_002, 5) == pytest.approx(61_800.2 * 0.005, rel=1e-12)
    assert BTCUSDT.cash_flow(1, 618_002, 5, 0.01) == pytest.approx(-61_800.2 * 0.005 - 0.01, rel=1e-12)
    assert BTCUSDT.quote_notional(618_002, 5) == BTCUSDT.notional(618_002, 5)
    assert BTCUSDT.settle_currency == "USDT"
    assert BTCUSDT.to_quote(12.5, 618_002) == 12.5


def test_quanto_pays_its_multiplier_in_the_settlement_currency():
    ethusd = Instrument(
        tick_size=0.05, contract="quanto", contract_size=1e-6, base="ETH", quote="USD", settle="BTC"
    )
    pnl = ethusd.cash_flow(1, 40_000, 100, 0.0) + ethusd.value(42_000, 100)  # 2,000 -> 2,100
    assert pnl == pytest.approx(100 * 100 * 1e-6, rel=1e-12)
    assert ethusd.settle_currency == "BTC"
    assert math.isnan(ethusd.quote_notional(40_000, 1))
    with pytest.raises(ValidationError, match="quanto"):
        Instrument(**{**ethusd.model_dump(), "min_notional": 1.0})


@given(
    kind=st.sampled_from(["linear", "inverse", "quanto"]),
    size=st.floats(0.5, 200),
    fills=st.lists(
        st.tuples(st.sampled_from([1, -1]), st.integers(1, 50), st.integers(1_000, 9_000)), max_size=30
    ),
    mark=st.integers(1_000, 9_000),
)
def test_pnl_of_any_fills_is_cash_plus_position_value(kind, size, fills, mark):
    """Whatever the contract, P&L = cash + position x v(mark) equals the sum over fills of
    side x q x (v(mark) - v(p)): marking every fill to the same price."""
    inst = Instrument(tick_size=0.01, contract=kind, contract_size=size)
    cash = sum(inst.cash_flow(s, p, q, 0.0) for s, q, p in fills)
    position = sum(s * q for s, q, _ in fills)
    by_fill = sum(s * q * (inst.value(mark, 1) - inst.value(p, 1)) for s, q, p in fills)
    total = cash + inst.value(mark, position)
    scale = sum(q * abs(inst.value(p, 1)) for _, q, p in fills) + 1.0
    assert total == pytest.approx(by_fill, abs=1e-12 * scale)


def test_unit_value_works_on_arrays():
    prices = np.array([2500.0, 2600.0])
    assert np.allclose(ETHUSD_PERP.unit_value(prices), [-10 / 2500, -10 / 2600])


def test_prices_and_sizes_round_to_their_grid():
    assert ETHUSD_PERP.px(58_481) == 584.81  # not 584.8100000000001
    assert BTCUSDT.px(618_002) == 61_800.2
    assert BTCUSDT.qty(3) == 0.003
    assert Instrument(tick_size=0.5).px(13) == 6.5


@pytest.mark.parametrize("fee", [1e9, 0.2, -0.11, math.inf])
def test_fees_beyond_ten_percent_are_refused(fee):
    with pytest.raises(ValidationError, match="taker_fee"):
        Instrument(taker_fee=fee)


@pytest.mark.parametrize("band", [(1.0, 1.05), (0.9, 1.0), (0.0, 2.0), (1.1, 0.9)])
def test_price_band_must_straddle_the_mid(band):
    with pytest.raises(ValidationError, match="price band"):
        Instrument(price_band=band)
