"""`mm quote`: the quotes a model would post for given inputs, end to end through the CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from quotewise.cli import app

runner = CliRunner()
GLFT = ["--strategy", "glft", "--mid", "100", "--inventory", "3", "--sigma", "0.5"]
GLFT += ["--gamma", "0.1", "--A", "140", "--k", "1.5", "--tick", "0.01"]


def quote_json(*args: str) -> dict:
    result = runner.invoke(app, ["quote", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_glft_quotes_as_worked_out_by_hand():
    out = quote_json(*GLFT)
    # delta_b = c1 + c2/2 + 3 c2 = 0.690637, delta_a = c1 + c2/2 - 3 c2 = 0.613062 (tests/quoting/
    # test_models.py): 99.309363 rounds down to 99.30, 100.613062 up to 100.62
    assert out["bids"] == [{"price": 99.3, "size": 1.0}]
    assert out["asks"] == [{"price": 100.62, "size": 1.0}]
    assert out["market"] == {"bid": 99.99, "ask": 100.01, "mid": 100.0}
    assert out["state"]["A"] == 140.0 and out["state"]["k"] == 1.5 and out["state"]["q"] == 3.0


def test_table_output():
    result = runner.invoke(app, ["quote", *GLFT])
    assert result.exit_code == 0, result.output
    assert "99.3" in result.output and "100.62" in result.output and "half_bid" in result.output


def test_set_overrides_and_ladders():
    out = quote_json(*GLFT, "--set", "max_orders=3", "--set", "level_spacing=2ticks")
    assert [b["price"] for b in out["bids"]] == [99.3, 99.28, 99.26]
    assert [a["price"] for a in out["asks"]] == [100.62, 100.64, 100.66]


def test_fee_floor_widens_a_losing_spread():
    # 1 tick either side of 100.00 with a 10.5bp maker fee: d = 9999 * 1.00105 - 10001 * 0.99895 = 19,
    # so both quotes move out by floor(19 / 2) + 1 = 10 ticks
    out = quote_json(
        "--strategy", "symmetric", "--mid", "100", "--set", "spread=1tick", "--maker-fee", "10.5bp"
    )
    assert out["bids"][0]["price"] == 99.89 and out["asks"][0]["price"] == 100.11


def test_bid_ask_sizes_inventory_and_config(tmp_path):
    cfg = tmp_path / "mm.yaml"
    cfg.write_text("strategy: skew\nparams:\n  spread: 2ticks\n  max_inventory: 4\n")
    out = quote_json("--config", str(cfg), "--bid", "99.99", "--ask", "100.00", "--inventory", "4")
    assert out["strategy"] == "skew" and out["bids"] == []  # long at the limit: no bid
    assert out["state"]["band"] == "stop"


def test_errors_are_clear():
    result = runner.invoke(app, ["quote", "--strategy", "glft", "--mid", "100"])
    assert result.exit_code == 2 and "needs sigma" in result.output
    result = runner.invoke(app, ["quote", "--mid", "100.003"])
    assert result.exit_code == 2 and "tick grid" in result.output
    result = runner.invoke(app, ["quote", "--strategy", "skew", "--mid", "100", "--sigma", "1"])
    assert result.exit_code == 2 and "sigma" in result.output  # skew has no sigma parameter
    result = runner.invoke(app, ["quote", "--bid", "100"])
    assert result.exit_code == 2 and "--ask" in result.output
