"""Black-Scholes and Black-76: textbook values, greeks against finite differences, parity, implied vol."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quotewise.errors import ConfigError
from quotewise.options import black76, black_scholes, implied_vol, parse_expiry, price_bounds

spots = st.floats(50.0, 150.0)
strikes = st.floats(60.0, 140.0)
vols = st.floats(0.05, 1.5)
expiries = st.floats(0.02, 3.0)
rates = st.floats(-0.02, 0.1)
dividends = st.floats(0.0, 0.06)
kinds = st.sampled_from(["call", "put"])


def test_hull_example_prices():
    # Hull, Options, Futures and Other Derivatives, the Black-Scholes-Merton example: c = 4.76, p = 0.81
    assert round(black_scholes(42, 40, 0.5, 0.2, 0.1).price, 2) == 4.76
    assert round(black_scholes(42, 40, 0.5, 0.2, 0.1, kind="put").price, 2) == 0.81


def test_hull_example_greeks():
    # Hull's greeks example: S=49, K=50, r=0.05, sigma=0.2, T=20 weeks (0.3846): delta 0.522,
    # gamma 0.066, vega 12.1, theta -4.31 per year, rho 8.91
    g = black_scholes(49, 50, 0.3846, 0.2, 0.05)
    assert round(g.price, 2) == 2.40
    assert (round(g.delta, 3), round(g.gamma, 3), round(g.vega, 1)) == (0.522, 0.066, 12.1)
    assert (round(g.theta, 2), round(g.rho, 2)) == (-4.31, 8.91)


def _central(f, x: float, h: float) -> float:
    """Five-point derivative: error of order h^4, so a modest h keeps rounding error small too."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def _close(numeric: float, exact: float, scale: float) -> bool:
    return abs(numeric - exact) <= 1e-6 * (abs(exact) + scale)


@settings(max_examples=150, deadline=None)
@given(spots, strikes, expiries, vols, rates, dividends, kinds)
def test_black_scholes_greeks_are_derivatives_of_the_price(s, k, t, v, r, q, kind):
    g = black_scholes(s, k, t, v, r, q, kind)

    def price(**change):
        args = {"spot": s, "strike": k, "expiry": t, "vol": v, "rate": r, "dividend": q, **change}
        return black_scholes(kind=kind, **args).price

    h = 1e-3 * s * v * math.sqrt(t)  # a step small against the price's own scale of spot moves
    assert _close(_central(lambda x: price(spot=x), s, h), g.delta, 1e-3)
    delta = lambda x: black_scholes(x, k, t, v, r, q, kind).delta  # noqa: E731
    assert _close(_central(delta, s, h), g.gamma, 1e-3 / s)
    assert _close(_central(lambda x: price(vol=x), v, 1e-3 * v), g.vega, 1e-2)
    theta = -_central(lambda x: price(expiry=x), t, 1e-3 * t)  # calendar time runs the expiry down
    assert _close(theta, g.theta, 1e-1)
    assert _close(_central(lambda x: price(rate=x), r, 1e-4), g.rho, 1e-2)


@settings(max_examples=100, deadline=None)
@given(spots, strikes, expiries, vols, rates, kinds)
def test_black76_greeks_are_derivatives_of_the_price(f, k, t, v, r, kind):
    g = black76(f, k, t, v, r, kind)

    def price(**change):
        args = {"forward": f, "strike": k, "expiry": t, "vol": v, "rate": r, **change}
        return black76(kind=kind, **args).price

    h = 1e-3 * f * v * math.sqrt(t)
    assert _close(_central(lambda x: price(forward=x), f, h), g.delta, 1e-3)
    delta = lambda x: black76(x, k, t, v, r, kind).delta  # noqa: E731
    assert _close(_central(delta, f, h), g.gamma, 1e-3 / f)
    assert _close(_central(lambda x: price(vol=x), v, 1e-3 * v), g.vega, 1e-2)
    assert _close(-_central(lambda x: price(expiry=x), t, 1e-3 * t), g.theta, 1e-1)
    assert _close(_central(lambda x: price(rate=x), r, 1e-4), g.rho, 1e-2)
    assert g.rho == pytest.approx(-t * g.price)


@settings(max_examples=150, deadline=None)
@given(spots, strikes, expiries, vols, rates, dividends)
def test_put_call_parity(s, k, t, v, r, q):
    call, put = black_scholes(s, k, t, v, r, q, "call"), black_scholes(s, k, t, v, r, q, "put")
    forward_value = s * math.exp(-q * t) - k * math.exp(-r * t)
    assert call.price - put.price == pytest.approx(forward_value, abs=1e-9 * s)
    assert call.delta - put.delta == pytest.approx(math.exp(-q * t))
    assert call.gamma == pytest.approx(put.gamma) and call.vega == pytest.approx(put.vega)
    c76, p76 = black76(s, k, t, v, r, "call"), black76(s, k, t, v, r, "put")
    assert c76.price - p76.price == pytest.approx(math.exp(-r * t) * (s - k), abs=1e-9 * s)


def test_black76_is_black_scholes_on_the_forward():
    s, k, t, v, r, q = 100.0, 110.0, 0.75, 0.3, 0.04, 0.01
    forward = s * math.exp((r - q) * t)
    assert black76(forward, k, t, v, r).price == pytest.approx(black_scholes(s, k, t, v, r, q).price)


def test_vectorised_over_arrays_equals_scalars():
    s = np.array([80.0, 100.0, 120.0])
    vol = np.array([0.2, 0.3, 0.4])
    g = black_scholes(s, 100.0, 0.5, vol, 0.03, kind="put")
    for i in range(3):
        one = black_scholes(float(s[i]), 100.0, 0.5, float(vol[i]), 0.03, kind="put")
        for name, value in one.as_dict().items():
            assert getattr(g, name)[i] == pytest.approx(value, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(spots, strikes, expiries, vols, rates, dividends, kinds, st.sampled_from(["bs", "black76"]))
def test_implied_vol_inverts_the_price(s, k, t, v, r, q, kind, model):
    if model == "bs":
        g = black_scholes(s, k, t, v, r, q, kind)
    else:
        g, q = black76(s, k, t, v, r, kind), 0.0
    lower, upper = price_bounds(s, k, t, r, q, kind, model)
    if not lower < g.price < upper or g.price - lower < 1e-9 * s:
        return  # no time value left to read a vol from, in double precision
    iv = implied_vol(g.price, s, k, t, r, q, kind, model)
    again = black_scholes(s, k, t, iv, r, q, kind) if model == "bs" else black76(s, k, t, iv, r, kind)
    assert again.price == pytest.approx(g.price, rel=1e-9, abs=1e-12 * s)
    if g.vega > 1e-3 * s:
        assert iv == pytest.approx(v, rel=1e-6)


def test_implied_vol_of_textbook_prices():
    assert implied_vol(4.759422392871535, 42, 40, 0.5, 0.1) == pytest.approx(0.2, abs=1e-10)
    tiny = black_scholes(100, 300, 0.1, 0.3).price  # deep out of the money: vega about 1e-29
    assert tiny > 0 and implied_vol(tiny, 100, 300, 0.1) == pytest.approx(0.3, rel=1e-6)


@pytest.mark.parametrize(
    ("price", "kind", "bound"),
    [(3.9, "call", "3.95"), (42.0, "call", "42"), (-1.0, "put", "0"), (38.1, "put", "38.04")],
)
def test_prices_outside_the_no_arbitrage_bounds_are_refused(price, kind, bound):
    with pytest.raises(ConfigError, match="no-arbitrage bounds") as err:
        implied_vol(price, 42, 40, 0.5, 0.1, kind=kind)
    assert bound in str(err.value)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"vol": -0.2}, "vol"),
        ({"expiry": 0.0}, "expiry"),
        ({"spot": float("nan")}, "spot"),
        ({"strike": np.array([1.0, -1.0])}, "strike"),
        ({"kind": "straddle"}, "call or put"),
    ],
)
def test_bad_inputs_are_refused(args, named):
    base = {"spot": 100.0, "strike": 100.0, "expiry": 1.0, "vol": 0.2, **args}
    with pytest.raises(ConfigError, match=named):
        black_scholes(**base)


@pytest.mark.parametrize(
    ("text", "years"),
    [("30d", 30 / 365), ("12h", 0.5 / 365), ("0.25y", 0.25), ("0.5", 0.5), (2, 2.0), (" 7D ", 7 / 365)],
)
def test_parse_expiry(text, years):
    assert parse_expiry(text) == pytest.approx(years)


@pytest.mark.parametrize("text", ["3w", "", "abc", "-1d", "0", "0d", "nan", "1e999y"])
def test_parse_expiry_refuses_the_rest(text):
    with pytest.raises(ConfigError, match="--expiry"):
        parse_expiry(text)
