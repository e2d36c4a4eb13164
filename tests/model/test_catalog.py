"""The venues' published specifications, and refusing to guess a contract nobody listed."""

from __future__ import annotations

import pytest

from quotewise.errors import ConfigError
from quotewise.model.catalog import grid_factor, lookup, with_overrides, with_spec
from quotewise.model.instrument import Instrument


@pytest.mark.parametrize(
    ("venue", "symbol", "kind", "size", "settle"),
    [
        ("binance-coinm", "BTCUSD_PERP", "inverse", 100.0, "BTC"),
        ("binance-coinm", "ETHUSD_PERP", "inverse", 10.0, "ETH"),
        ("binance-coinm", "SOLUSD_PERP", "inverse", 10.0, "SOL"),  # the venue's rule: 10 USD
        ("binance-delivery", "BTCUSD_240927", "inverse", 100.0, "BTC"),  # tardis's name for COIN-M
        ("binance-usdm", "BTCUSDT", "linear", 1.0, "USDT"),
        ("binance-futures", "ETHUSDT", "linear", 1.0, "USDT"),
        ("binance-spot", "SOLFDUSD", "linear", 1.0, "FDUSD"),
        ("deribit", "BTC-PERPETUAL", "inverse", 1.0, "BTC"),
        ("bitmex", "XBTUSD", "inverse", 1.0, "BTC"),
        ("bitmex", "ETHUSD", "quanto", 1e-6, "BTC"),
        ("huobi-dm-swap", "BTC-USD", "inverse", 100.0, "BTC"),
        ("nasdaq", "AMZN", "linear", 1.0, "USD"),
    ],
)
def test_listed_and_ruled_instruments(venue, symbol, kind, size, settle):
    spec = lookup(venue, symbol)
    assert spec is not None
    inst = with_spec(Instrument(symbol=symbol, venue=venue), spec)
    assert (inst.contract, inst.contract_size, inst.settle_currency) == (kind, size, settle)


def test_exchange_minimums_of_the_shared_instruments():
    usdm = lookup("binance-usdm", "BTCUSDT")
    spot = lookup("binance-spot", "BTCUSDT")
    assert (usdm.min_notional, usdm.lot_size, usdm.tick_size) == (100.0, 0.001, 0.1)
    assert (spot.min_notional, spot.lot_size, spot.tick_size) == (5.0, 0.00001, 0.01)
    inst = with_spec(Instrument(lot_size=0.001), usdm)
    assert inst.min_size_lots == 1


def test_an_unlisted_contract_on_a_mixed_venue_is_refused_not_guessed():
    with pytest.raises(ConfigError, match="--contract"):
        lookup("bitmex", "SOLUSD")


def test_an_unknown_venue_has_no_listing():
    assert lookup("unknown", "WHATEVER") is None


@pytest.mark.parametrize(
    ("data", "listed", "factor"),
    [(0.1, 0.1, 1), (0.1, 0.01, 10), (0.01, 0.1, None), (0.1, 0.05, 2), (1, 10, None)],
)
def test_grid_factor(data, listed, factor):
    assert grid_factor(data, listed) == factor


def test_overrides_are_validated_as_a_new_instrument():
    inst = Instrument(tick_size=0.01)
    assert with_overrides(inst, contract="inverse", contract_size=10).contract_size == 10
    assert with_overrides(inst, min_size=2.5).min_size_lots == 3
    with pytest.raises(ConfigError, match="taker_fee"):
        with_overrides(inst, taker_fee=1e9)
    with pytest.raises(ConfigError, match="contract_size"):
        with_overrides(inst, contract_size=-1)
    with pytest.raises(ConfigError, match="--contract"):
        with_overrides(inst, contract="perpetual")
