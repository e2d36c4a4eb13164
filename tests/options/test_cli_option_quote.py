"""`mm quote --strategy option`: Black-Scholes and Black-76 through the CLI, against the closed form
written out here independently of the library."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from quotewise.cli import app

runner = CliRunner()
HULL = ["--strategy", "option", "--spot", "42", "--strike", "40", "--expiry", "0.5", "--rate", "0.1"]
PUT_30D = ["--strategy", "option", "--spot", "100", "--strike", "110", "--expiry", "30d"]


def N(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def n(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def closed_form(s, k, t, v, r, q=0.0, kind="call") -> dict[str, float]:
    """Hull's formulas for a European option on a stock with a continuous dividend yield q."""
    d1 = (math.log(s / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    sq, kr = s * math.exp(-q * t), k * math.exp(-r * t)
    decay = -sq * n(d1) * v / (2 * math.sqrt(t))
    common = {"gamma": math.exp(-q * t) * n(d1) / (s * v * math.sqrt(t)), "vega": sq * n(d1) * math.sqrt(t)}
    if kind == "call":
        return {
            "price": sq * N(d1) - kr * N(d2),
            "delta": math.exp(-q * t) * N(d1),
            "theta": decay + q * sq * N(d1) - r * kr * N(d2),
            "rho": k * t * math.exp(-r * t) * N(d2),
            **common,
        }
    return {
        "price": kr * N(-d2) - sq * N(-d1),
        "delta": -math.exp(-q * t) * N(-d1),
        "theta": decay - q * sq * N(-d1) + r * kr * N(-d2),
        "rho": -k * t * math.exp(-r * t) * N(-d2),
        **common,
    }


def quote_json(*args: str) -> dict:
    result = runner.invoke(app, ["quote", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def assert_matches(out: dict, expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert out[name] == pytest.approx(value, rel=1e-6), name


@pytest.mark.parametrize(
    ("args", "inputs"),
    [
        ([*HULL, "--vol", "0.2"], (42, 40, 0.5, 0.2, 0.1, 0.0, "call")),
        ([*HULL, "--vol", "0.2", "--type", "put"], (42, 40, 0.5, 0.2, 0.1, 0.0, "put")),
        (
            [*PUT_30D, "--vol", "0.5", "--rate", "0.01", "--dividend", "0.03", "--type", "put"],
            (100, 110, 30 / 365, 0.5, 0.01, 0.03, "put"),
        ),
        (
            ["--strategy", "option", "--spot", "2500", "--strike", "2400", "--expiry", "12h", "--vol", "0.8"],
            (2500, 2400, 0.5 / 365, 0.8, 0.0, 0.0, "call"),
        ),
    ],
)
def test_quote_equals_the_closed_form(args, inputs):
    out = quote_json(*args)
    assert_matches(out, closed_form(*inputs))
    assert out["expiry_years"] == pytest.approx(inputs[2])
    assert round(quote_json(*HULL, "--vol", "0.2")["price"], 2) == 4.76


def test_black76_is_black_scholes_with_the_forward():
    out = quote_json(
        *["--strategy", "option", "--model", "black76", "--spot", "105", "--strike", "100"],
        *["--expiry", "0.25y", "--vol", "0.3", "--rate", "0.04"],
    )
    expected = closed_form(105, 100, 0.25, 0.3, 0.04, q=0.04)  # S e^{-qT} = F e^{-rT} with q = r
    expected["rho"] = -0.25 * expected["price"]  # the forward held fixed
    assert_matches(out, expected)
    assert out["forward"] == 105 and "spot" not in out


def test_price_gives_the_implied_vol_and_the_greeks_at_it():
    price = closed_form(42, 40, 0.5, 0.23, 0.1, kind="put")["price"]
    out = quote_json(*HULL, "--type", "put", "--price", repr(price))
    assert out["implied_vol"] == pytest.approx(0.23, rel=1e-9)
    assert out["price"] == price
    assert_matches(out, {k: v for k, v in closed_form(42, 40, 0.5, 0.23, 0.1, kind="put").items()})


def test_price_beside_vol_implies_the_vol_and_keeps_the_one_given():
    out = quote_json(*HULL, "--vol", "0.5", "--price", "4.759422392871535")
    assert out["implied_vol"] == pytest.approx(0.2, rel=1e-9) and out["vol_given"] == 0.5
    assert out["price"] == 4.759422392871535


def test_table_output():
    result = runner.invoke(app, ["quote", *HULL, "--vol", "0.2"])
    assert result.exit_code == 0, result.output
    assert "4.7594224" in result.output and "theta" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "option", "--strike", "40", "--expiry", "30d"], "needs --spot, --vol (or --price)"),
        (["--strategy", "option", "--spot", "42", "--vol", "0.2"], "needs --strike, --expiry"),
        ([*HULL.copy()[:-2], "--expiry", "3w", "--vol", "0.2"], "--expiry"),
        ([*HULL, "--price", "1.5"], "no-arbitrage bounds"),
        ([*HULL, "--price", "50"], "no-arbitrage bounds"),
        ([*HULL, "--vol", "-0.2"], "vol must be"),
        ([*HULL, "--vol", "0.2", "--type", "straddle"], "--type must be call or put"),
        ([*HULL, "--vol", "0.2", "--model", "sabr"], "--model must be bs or black76"),
        ([*HULL, "--vol", "0.2", "--model", "black76", "--dividend", "0.01"], "dividend"),
        (["--mid", "100", "--spot", "42", "--vol", "0.2"], "--spot, --vol: only --strategy option"),
    ],
)
def test_bad_inputs_are_refused_in_one_line(args, message):
    result = runner.invoke(app, ["quote", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("error:") == 1


def test_other_strategies_quote_as_before():
    out = quote_json("--strategy", "symmetric", "--mid", "100", "--set", "spread=1tick")
    assert out["bids"][0]["price"] == 99.99 and out["asks"][0]["price"] == 100.01
