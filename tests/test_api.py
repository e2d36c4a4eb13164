"""The notebook API: a backtest in three lines, DataFrames with UTC timestamps, the report, and
the same settings (names, units, errors) as the command line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import quotewise as qw
from quotewise.errors import ConfigError

SECOND = 10**9


@pytest.fixture(scope="module")
def run() -> qw.Backtest:
    return qw.backtest(data="synthetic", strategy="skew", events=200_000, spread=2, max_pos=5)


def test_a_backtest_in_three_lines_returns_dataframes_with_utc_times(run):
    assert run.summary["events"] == 200_000 and run.summary["fills"] > 0
    for frame, column in ((run.fills, "exch_ts"), (run.orders, "ts"), (run.equity, "ts")):
        assert isinstance(frame, pd.DataFrame) and len(frame) > 0
        assert str(frame[column].dtype) == "datetime64[ns, UTC]"
    assert len(run.fills) == run.summary["fills"]
    assert run.fills["exch_ts"].is_monotonic_increasing
    assert run.summary["start"].startswith(str(run.fills["exch_ts"].iloc[0].date()))


def test_settings_take_the_command_lines_units_and_risk_limits_by_name(run):
    assert run.summary["params"]["spread"] == "2ticks"
    assert run.summary["risk"]["config"]["max_pos"] == 5
    assert run.fills["position"].abs().max() <= 5
    r = qw.backtest(events=50_000, interval=5000, max_loss_window="1h", max_loss=100)
    assert r.summary["params"]["interval"] == "5s" and r.summary["sim"]["interval_ns"] == 5 * SECOND
    assert r.summary["risk"]["config"]["max_loss_window"] == "1h"


def test_the_simulated_venue_takes_its_settings_by_name_too():
    r = qw.backtest(events=50_000, latency_entry=5, queue="prob", maker_fee="-0.2bp", min_notional=0)
    assert r.summary["sim"]["entry_latency_ns"] == 5_000_000 and r.summary["sim"]["queue"] == "prob"
    assert r.summary["instrument"]["maker_fee"] == pytest.approx(-2e-5)


def test_the_report_is_written_where_asked(run, tmp_path):
    path = run.report(tmp_path / "out.html")
    assert path == tmp_path / "out.html" and "<html" in path.read_text()[:500].lower()


def test_a_run_with_an_output_directory_reads_its_tables_back(tmp_path):
    r = qw.backtest(events=100_000, out=tmp_path / "run", spread="3ticks")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["fills"] == len(r.fills) and (tmp_path / "run" / "fills.parquet").exists()
    assert r.report() == tmp_path / "run" / "report.html"


def test_one_market_several_strategies():
    market = qw.load("synthetic", events=100_000)
    wide, narrow = (qw.backtest(market, "symmetric", spread=s) for s in (5, 1))
    assert wide.summary["data"] == narrow.summary["data"]
    assert wide.summary["fills"] < narrow.summary["fills"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spread": -1}, "spread: must be >= 0"),
        ({"spred": 2}, "spred: unknown parameter"),
        ({"max_pos": 0}, "max_pos"),
        ({"queue": "lifo"}, "queue: Input should be 'auto'"),
        ({"maker_fee": "x"}, "maker_fee: cannot read 'x'"),
        ({"events": 0}, "events must be positive"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        qw.backtest(**{"events": 1_000, **kwargs})
