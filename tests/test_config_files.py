"""Strategy config files: strategy + params, every key checked; --set overrides on the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from quotewise.cli import app
from quotewise.errors import ConfigError
from quotewise.settings import load_config


def write(tmp_path, text: str):
    path = tmp_path / "mm.yaml"
    path.write_text(text)
    return path


def test_loads_strategy_and_params(tmp_path):
    path = write(tmp_path, "strategy: glft\nparams:\n  gamma: 0.05\n  max-inventory: 5\n  interval: 50ms\n")
    assert load_config(path) == ("glft", {"gamma": 0.05, "max_inventory": 5, "interval": "50ms"})
    assert load_config(write(tmp_path, "strategy: skew\n")) == ("skew", {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("strategy: skew\nparams: {}\nparms: {}\n", r"unknown keys \['parms'\]"),
        ("strategy: skew\nparams:\n  spred: 1\n  spread: 2ticks\n", r"unknown params \['spred'\]"),
        ("strategy: skew\nparams:\n  half_spread: 1tick\n", r"unknown params \['half_spread'\]"),
        ("params: {}\n", "must name a strategy"),
        ("- skew\n", "expected a mapping"),
        ("strategy: skew\nparams: [1, 2]\n", "must be a mapping"),
        ("strategy: [unclosed\n", "not valid YAML"),
        ("strategy: nope\n", "unknown strategy 'nope'"),
        ("strategy: skew\nrisk:\n  max_position: 5\n", r"unknown risk \['max_position'\]"),
        ("strategy: skew\nvenue:\n  latency: 1ms\n", r"unknown venue \['latency'\]"),
        ("strategy: skew\nparams:\n  max_pos: 5\n", r"unknown params \['max_pos'\]"),
    ],
)
def test_bad_configs_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_risk_limits_and_venue_settings_come_with_the_strategy(tmp_path):
    text = "strategy: skew\nparams:\n  spread: 2\nrisk:\n  max-pos: 5\nvenue:\n  latency_entry: 2ms\n"
    assert load_config(write(tmp_path, text)) == (
        "skew",
        {"spread": 2, "max_pos": 5, "latency_entry": "2ms"},
    )


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")


def test_user_strategy_file_beside_the_config(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from quotewise.quoting.base import QuoteSet, Strategy\n"
        "class Idle(Strategy):\n"
        "    name = 'idle'\n"
        "    def quotes(self, view):\n"
        "        return QuoteSet()\n"
    )
    name, params = load_config(write(tmp_path, "strategy: mine.py:Idle\nparams:\n  size: 2\n"))
    assert name == f"{tmp_path / 'mine.py'}:Idle" and params == {"size": 2}


def test_backtest_takes_the_config_and_set_overrides_it(tmp_path):
    path = write(tmp_path, "strategy: skew\nparams:\n  spread: 3ticks\n  skew: 0.5\n")
    out = tmp_path / "run"
    args = ["backtest", "--config", str(path), "--set", "spread=2ticks", "--events", "50000"]
    result = CliRunner().invoke(app, [*args, "--quiet", "--no-report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["strategy"] == "skew"
    assert summary["params"]["spread"] == "2ticks" and summary["params"]["skew"] == 0.5
