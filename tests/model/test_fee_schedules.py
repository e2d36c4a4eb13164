"""Prediction-market fee schedules: Kalshi's rounded-up cents and Polymarket's rate x p (1 - p),
on the venues' published numbers and on every fill of a backtest."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import quotewise as qw
from quotewise.data.kalshi import KALSHI_FEES
from quotewise.data.kalshi import write_capture as write_kalshi
from quotewise.data.polymarket import POLYMARKET_FEES
from quotewise.data.synthetic import synthetic_binary
from quotewise.model.instrument import Instrument

BINARY = {"tick_size": 0.01, "min_price": 0.01, "max_price": 0.99}


def kalshi(maker_fee: float = 0.0) -> Instrument:
    return Instrument(symbol="K", lot_size=1, maker_fee=maker_fee, **BINARY, **KALSHI_FEES)


@pytest.mark.parametrize(
    ("price", "contracts", "maker", "dollars"),
    [
        (50, 100, False, 1.75),  # 0.07 x 100 x 0.25
        (50, 1, False, 0.02),  # 0.0175 rounds up to the cent
        (99, 10, False, 0.01),  # 0.00693 rounds up
        (50, 100, True, 0.44),  # the maker schedule: 0.0175 x 100 x 0.25 = 0.4375
        (10, 1000, True, 1.58),  # 0.0175 x 1000 x 0.09 = 1.575
    ],
)
def test_kalshi_fees_are_rounded_up_to_the_cent(
    price: int, contracts: int, maker: bool, dollars: float
) -> None:
    assert kalshi(maker_fee=0.0175).fee(price, contracts, maker) == pytest.approx(dollars, abs=1e-12)


def test_kalshi_makers_pay_nothing_on_the_general_schedule() -> None:
    assert kalshi().fee(50, 100, True) == 0.0


def test_polymarket_fee_is_rate_times_shares_times_p_one_minus_p() -> None:
    inst = Instrument(symbol="P", lot_size=0.01, taker_fee=0.03, **BINARY, **POLYMARKET_FEES)
    assert inst.fee(50, 10_000, False) == pytest.approx(0.75)  # 100 shares at 0.50
    assert inst.fee(10, 10_000, False) == pytest.approx(0.27)  # 100 shares at 0.10
    assert inst.fee(50, 10_000, True) == 0.0
    assert inst.fee(33, 1, False) == pytest.approx(0.00006)  # 0.0000663, rounded down to 5 decimals


def test_the_notional_curve_is_unchanged() -> None:
    assert Instrument(taker_fee=0.001).fee(10_000, 3, False) == pytest.approx(0.3)


def test_every_backtest_fill_pays_the_kalshi_schedule(tmp_path: Path) -> None:
    capture = write_kalshi(synthetic_binary(60_000, seed=5), tmp_path / "k.txt", "KXTEST")
    run = qw.backtest(data=str(capture), spread=1, size=5, max_pos=50, maker_fee="0.0175")
    fills = run.fills
    assert len(fills) > 10
    for _, f in fills.iterrows():
        p = f["price"]
        expected = math.ceil(round(0.0175 * f["size"] * p * (1 - p) * 100, 9)) / 100
        assert f["fee"] == pytest.approx(expected, abs=1e-12)
    assert run.summary["fees"] == pytest.approx(fills["fee"].sum())
