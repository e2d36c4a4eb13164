"""The one list of settings: strategy settings and risk limits by name, split without ambiguity,
and a flag for each on every command that takes settings."""

from __future__ import annotations

import pytest

from quotewise.cli_settings import flag, setting_parameters
from quotewise.quoting.named import NAMED
from quotewise.risk.config import RiskConfig
from quotewise.settings import VenueSettings, split_settings, strategy_defaults, strategy_fields

SEED_FLAGS = [
    "spread",
    "min_spread",
    "max_spread",
    "size",
    "max_inventory",
    "skew",
    "vol_mult",
    "alpha",
    "fv_method",
    "interval",
    "threshold",
    "max_pos",
    "max_loss",
    "max_orders",
    "level_spacing",
    "level_decay",
]


def test_no_two_models_share_a_settings_name():
    risk, venue = set(RiskConfig.model_fields), set(VenueSettings.model_fields)
    assert not risk & venue
    for cls in NAMED:
        assert not set(cls.Params.model_fields) & (risk | venue), cls.name


def test_every_setting_of_every_builtin_strategy_and_every_risk_limit_is_a_flag():
    names = {p.name for p in setting_parameters()}
    for cls in NAMED:
        assert set(cls.Params.model_fields) <= names, cls.name
    assert set(RiskConfig.model_fields) <= names
    assert set(SEED_FLAGS) <= names


def test_a_flat_mapping_splits_into_strategy_params_risk_limits_and_venue_settings():
    values = {"spread": 2, "max_pos": 5, "skew": 0.5, "max_loss": None, "custom": 1, "queue": "prob"}
    params, risk, venue = split_settings(values)
    assert params == {"spread": 2, "skew": 0.5, "custom": 1}
    assert risk == {"max_pos": 5} and venue == {"queue": "prob"}


def test_defaults_are_shown_per_strategy_where_they_differ():
    assert strategy_defaults("max_orders")["ladder"] == "5" and strategy_defaults("max_orders")["skew"] == "1"
    assert set(strategy_defaults("spread")) == {"symmetric", "skew", "ladder", "adaptive"}
    assert len(strategy_fields()) > len(NAMED[0].Params.model_fields)


@pytest.mark.parametrize(
    ("name", "expected"), [("max_loss_window", "--max-loss-window"), ("spread", "--spread")]
)
def test_flags_are_the_names_with_dashes(name, expected):
    assert flag(name) == expected


def _options(command: str) -> set[str]:
    from typer.main import get_command

    from quotewise.cli import app

    return {opt for param in get_command(app).commands[command].params for opt in param.opts}


def test_backtest_start_and_config_take_every_seed_flag_and_risk_limit_by_the_same_name():
    wanted = {flag(name) for name in [*SEED_FLAGS, *RiskConfig.model_fields, *strategy_fields()]}
    for command in ("backtest", "start", "config"):
        assert wanted <= _options(command), command
    venue = {flag(name) for name in VenueSettings.model_fields}
    assert venue <= _options("backtest") and venue <= _options("start")
    assert not venue & _options("config")  # a running maker's venue stays as it started
    assert {"--name", "--config", "--set"} <= _options("backtest") & _options("start")
    assert {"--config", "--set"} <= _options("config")


@pytest.mark.parametrize("command", ["backtest", "start"])
def test_the_help_lists_every_seed_flag(command):
    from typer.testing import CliRunner

    from quotewise.cli import app

    text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    for name in [*SEED_FLAGS, "name"]:
        assert f"{flag(name)} " in text, name
