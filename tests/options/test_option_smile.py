"""Raw SVI: a fit recovers the parameters of a smile it was built from, and keeps to the constraints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quotewise.errors import ConfigError
from quotewise.options import SVIParams, black76, fit_smile, fit_svi

SMILES = [
    SVIParams(a=0.04, b=0.4, rho=-0.4, m=0.1, sigma=0.2),  # equity-like skew
    SVIParams(a=0.01, b=0.1, rho=0.3, m=-0.05, sigma=0.05),  # upside skew, sharp
    SVIParams(a=-0.02, b=0.3, rho=-0.7, m=0.0, sigma=0.3),  # a < 0, minimum variance still > 0
]
LOG_MONEYNESS = np.linspace(-0.8, 0.6, 15)
STRIKES = [90, 100, 110, 120, 130]


def _as_tuple(p: SVIParams) -> tuple[float, ...]:
    return (p.a, p.b, p.rho, p.m, p.sigma)


@pytest.mark.parametrize("true", SMILES)
def test_svi_recovers_a_synthetic_smile(true):
    fitted = fit_svi(LOG_MONEYNESS, true.total_variance(LOG_MONEYNESS))
    assert _as_tuple(fitted) == pytest.approx(_as_tuple(true), abs=1e-6)


def test_smile_from_prices_recovers_the_vols():
    true, forward, expiry, rate = SMILES[0], 2500.0, 0.5, 0.03
    strikes = forward * np.exp(LOG_MONEYNESS)
    vols = np.sqrt(true.total_variance(LOG_MONEYNESS) / expiry)
    kinds = ["put" if k < forward else "call" for k in strikes]  # out-of-the-money quotes
    prices = [
        black76(forward, k, expiry, v, rate, c).price for k, v, c in zip(strikes, vols, kinds, strict=True)
    ]
    smile = fit_smile(strikes, forward, expiry, prices=prices, rate=rate, kind=kinds)
    assert _as_tuple(smile.params) == pytest.approx(_as_tuple(true), abs=1e-6)
    assert smile.rmse_vol < 1e-8
    assert smile.vol(2400.0) == pytest.approx(math.sqrt(true.total_variance(math.log(2400 / 2500)) / expiry))


def test_noisy_quotes_give_a_smile_within_the_constraints():
    rng = np.random.default_rng(3)
    for _ in range(20):
        b, rho, sigma = rng.uniform(0.05, 0.6), rng.uniform(-0.9, 0.9), rng.uniform(0.05, 0.5)
        min_variance = rng.uniform(0.005, 0.05)
        a = min_variance - b * sigma * math.sqrt(1 - rho**2)
        true = SVIParams(a=a, b=b, rho=rho, m=rng.uniform(-0.2, 0.2), sigma=sigma)
        w = true.total_variance(LOG_MONEYNESS) * (1 + 0.02 * rng.standard_normal(LOG_MONEYNESS.size))
        fitted = fit_svi(LOG_MONEYNESS, w)  # SVIParams refuses parameters outside the constraints
        assert fitted.b >= 0 and abs(fitted.rho) < 1 and fitted.sigma > 0 and fitted.min_variance >= 0
        error = np.sqrt(np.mean((fitted.total_variance(LOG_MONEYNESS) - w) ** 2))
        assert error <= 0.02 * np.max(w)


def test_flat_vols_fit_a_flat_smile():
    smile = fit_smile([80, 90, 100, 110, 120, 130], 100.0, 0.25, vols=[0.3] * 6)
    assert smile.vol(np.array([70.0, 100.0, 140.0])) == pytest.approx([0.3, 0.3, 0.3], abs=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fit_svi([0.0, 0.1, 0.2, 0.3], [0.1] * 4), "5 or more strikes"),
        (lambda: fit_svi([0.0, 0.1, 0.2, 0.3, 0.4], [0.1, 0.1, -0.1, 0.1, 0.1]), "must be > 0"),
        (lambda: fit_svi([0.0, 0.1, 0.2, 0.3, 0.4], [0.1] * 3), "3 values for 5"),
        (
            lambda: fit_smile([90, 100, 110, 120, 130], 100, 1, vols=[0.2] * 5, prices=[1] * 5),
            "one of the two",
        ),
        (lambda: fit_smile([90, 100, 110, 120, 130], 100, 1, prices=[0.1, 5, 1, 0.5, 0.2]), "no-arbitrage"),
        (lambda: SVIParams(a=0.0, b=0.1, rho=1.0, m=0.0, sigma=0.1), r"\|rho\| < 1"),
        (lambda: SVIParams(a=-0.1, b=0.1, rho=0.0, m=0.0, sigma=0.1), "a \\+ b\\*sigma"),
    ],
)
def test_bad_quotes_are_refused(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
