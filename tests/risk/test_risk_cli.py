"""The risk flags of `mm backtest`, as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from quotewise.cli import app

runner = CliRunner()
TOUCH = f"{Path(__file__).with_name('riskkit.py')}:Touch"


def test_backtest_with_risk_flags(tmp_path):
    out = tmp_path / "run"
    args = [
        "backtest",
        "--events",
        "300000",
        "--strategy",
        TOUCH,
        "--set",
        "lots=2",
        "--quiet",
        "--no-report",
    ]
    limits = ["--max-pos", "3", "--max-order-size", "5", "--max-drawdown", "50", "--stale-after", "30s"]
    result = runner.invoke(app, [*args, *limits, "--price-band", "1%", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Risk actions" in result.output and "trim" in result.output
    summary = json.loads((out / "summary.json").read_text())
    config = summary["risk"]["config"]
    assert config["max_pos"] == 3 and config["stale_after"] == "30s"
    assert config["price_band"] == pytest.approx(0.01) and config["pause_for"] == "1m"
    fills = pq.read_table(out / "fills.parquet").to_pandas()
    assert len(fills) > 0 and np.abs(fills["position"]).max() <= 3
    events = pq.read_table(out / "risk_events.parquet")
    assert events.column_names == ["ts", "rule", "action", "value", "limit", "detail"]
    assert summary["risk"]["actions"]["trim"] == events.column("action").to_pylist().count("trim") > 0


def test_without_risk_flags_the_engine_is_off(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["backtest", "--events", "50000", "--quiet", "--no-report", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["risk"]["config"] is None and not any(summary["risk"]["actions"].values())
    assert pq.read_table(out / "risk_events.parquet").num_rows == 0


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--max-loss", "abc"], "'--max-loss'"),
        (["--max-pos", "-1"], "--max-pos: Input should be greater than 0"),
        (["--stale-after", "soon"], "--stale-after: cannot read 'soon'"),
        (["--max-loss", "5", "--max-loss-window", "5 minutes"], "--max-loss-window: cannot read"),
        (["--max-loss-window", "5m"], "--max-loss-window: a loss window needs max_loss"),
        (["--max-pos", "3", "--pause-for", "0"], "--pause-for: Input should be greater than 0"),
        (["--price-band", "wide"], "--price-band: cannot read 'wide'"),
        (["--max-pos", "3", "--reduce-only-at", "2"], "--reduce-only-at"),
        (["--max-order-rate", "0.5"], "--max-order-rate"),
    ],
)
def test_bad_risk_values_exit_2_naming_the_flag(tmp_path, args, flag):
    result = runner.invoke(app, ["backtest", "--quiet", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2
    assert flag in " ".join(result.output.split())  # rich wraps long lines
    assert not (tmp_path / "run").exists()
