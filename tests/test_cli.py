"""End-to-end through the `mm` command: what a user types, what they get back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from backtest.runcheck import check_run
from quotewise.cli import app

runner = CliRunner()


def mm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quotewise.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_backtest_on_synthetic_writes_every_output(tmp_path):
    proc = mm(
        "backtest",
        "--data",
        "synthetic",
        "--events",
        "300000",
        "--strategy",
        "skew",
        "--seed",
        "3",
        "--set",
        "spread=1tick",
        "--set",
        "size=2",
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Total P&L" in proc.stdout and "report.html" in proc.stdout
    summary = check_run(tmp_path / "run")
    assert summary["events"] == 300_000
    assert summary["sim"]["queue"] == "fifo"  # the synthetic market is L3
    assert summary["fills"] > 0


def test_same_seed_same_result(tmp_path):
    args = ["backtest", "--events", "100000", "--strategy", "symmetric", "--quiet", "--no-report"]
    a = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    b = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert a.exit_code == 0 and b.exit_code == 0, a.output
    sa, sb = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "ab")
    for key in ("total_pnl", "fills", "final_position", "orders_placed"):
        assert sa[key] == sb[key]


def test_user_strategy_file_runs(tmp_path):
    path = tmp_path / "join.py"
    path.write_text(
        "from quotewise.quoting.base import Quote, QuoteSet, Strategy\n\n"
        "class Join(Strategy):\n"
        "    name = 'join'\n"
        "    fills_seen = 0\n"
        "    def quotes(self, view):\n"
        "        if view.best_bid is None or view.best_ask is None:\n"
        "            return QuoteSet()\n"
        "        return QuoteSet([Quote(view.best_bid, 1)], [Quote(view.best_ask, 1)])\n"
    )
    result = runner.invoke(
        app,
        [
            "backtest",
            "--events",
            "100000",
            "--strategy",
            f"{path}:Join",
            "--quiet",
            "--set",
            "interval=50ms",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = check_run(tmp_path / "run")
    assert summary["strategy"] == "join" and summary["fills"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--set", "spreed=3"], "spreed"),
        (["--set", "oops"], "key=value"),
        (["--queue", "lifo"], "--queue: Input should be 'auto', 'fifo', 'risk-averse' or 'prob'"),
        (["--latency-entry", "fast"], "--latency-entry"),
        (["--maker-fee", "cheap"], "--maker-fee"),
        (["--data", "/no/such/file.gz"], "/no/such/file.gz"),
        (["--events", "0"], "events must be positive"),
    ],
)
def test_bad_input_gives_a_clear_error(tmp_path, args, message):
    result = runner.invoke(app, ["backtest", "--quiet", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_unknown_flag_is_refused():
    result = runner.invoke(app, ["backtest", "--speed", "9"])
    assert result.exit_code != 0
    assert "--speed" in result.output


def test_report_regenerates(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["backtest", "--events", "50000", "--quiet", "--out", str(out)]).exit_code == 0
    (out / "report.html").unlink()
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").exists()
    missing = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "nothing" in missing.output


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("backtest", "data", "report"):
        assert command in result.output


def test_several_strategies_are_compared(tmp_path):
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--events",
            "100000",
            "--quiet",
            "--no-report",
            "--strategy",
            "symmetric",
            "--strategy",
            "skew",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = (out / "comparison.csv").read_text().splitlines()
    assert lines[0].startswith("run,strategy,total_pnl")
    assert [line.split(",")[0] for line in lines[1:]] == ["symmetric", "skew"]
    for name in ("symmetric", "skew"):
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["strategy"] == name
        assert f"{summary['total_pnl']}" in (out / "comparison.csv").read_text()


def test_sweep_file_runs_each_entry(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "runs:\n"
        "  - {name: small, strategy: skew, params: {size: 1}}\n"
        "  - {name: big, strategy: skew, params: {size: 3}}\n"
    )
    out = tmp_path / "sw"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--events",
            "100000",
            "--quiet",
            "--no-report",
            "--sweep",
            str(sweep),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    small, big = (json.loads((out / n / "summary.json").read_text()) for n in ("small", "big"))
    assert small["params"]["size"] == 1 and big["params"]["size"] == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - {strategy: skew, colour: red}\n")
    result = runner.invoke(app, ["backtest", "--quiet", "--sweep", str(bad), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "colour" in result.output


def test_sweep_runs_may_differ_in_risk_and_latency_but_not_in_the_datas_listing(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "runs:\n"
        "  - {name: near, strategy: skew, params: {spread: 1, latency_entry: 1, max_pos: 3}}\n"
        "  - {name: far, strategy: skew, params: {spread: 4, latency_entry: 20ms}}\n"
    )
    out = tmp_path / "sw"
    args = ["backtest", "--events", "50000", "--quiet", "--no-report", "--sweep", str(sweep)]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    near, far = (json.loads((out / n / "summary.json").read_text()) for n in ("near", "far"))
    assert near["sim"]["entry_latency_ns"] == 1_000_000 and far["sim"]["entry_latency_ns"] == 20_000_000
    assert near["risk"]["config"]["max_pos"] == 3 and far["risk"]["config"] is None
    fees = tmp_path / "fees.yaml"
    fees.write_text(
        "runs:\n"
        "  - {strategy: skew, params: {maker_fee: 0}}\n"
        "  - {strategy: ladder, params: {maker_fee: 1bp}}\n"
    )
    result = runner.invoke(app, ["backtest", "--quiet", "--sweep", str(fees), "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "the data's listing" in result.output
    assert not (tmp_path / "y").exists()


def test_consecutive_binance_files_run_as_one_stream(tmp_path, shared_data):
    spot = shared_data / "binance" / "spot"
    data = f"{spot / 'btcusdt_20240808.gz'},{spot / 'btcusdt_20240809.gz'}"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--data",
            data,
            "--quiet",
            "--no-report",
            "--set",
            "size=0.001",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["events"] == 319_999  # both files: the reader's count for the pair
    assert summary["sim"]["queue"] == "risk-averse"


def test_version_names_the_installed_package():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"mm (quotewise) {version('quotewise')}\n"


def test_a_run_name_with_a_comma_or_a_quote_stays_one_field_of_the_comparison(tmp_path):
    import csv

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "runs:\n"
        "  - {name: 'skew, size 1', strategy: skew, params: {size: 1}}\n"
        "  - {name: 'the \"wide\" one', strategy: symmetric, params: {spread: 3ticks}}\n"
    )
    out = tmp_path / "sw"
    args = ["backtest", "--events", "50000", "--quiet", "--no-report", "--sweep", str(sweep)]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "comparison.csv").open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[:3] == ["run", "strategy", "total_pnl"]
    assert [row[:2] for row in rows] == [["skew, size 1", "skew"], ['the "wide" one', "symmetric"]]
    assert {len(row) for row in rows} == {len(header)}


def test_risk_windows_take_hours_and_days(tmp_path):
    out = tmp_path / "run"
    args = ["backtest", "--events", "50000", "--quiet", "--no-report", "--out", str(out)]
    limits = ["--max-loss", "50", "--max-loss-window", "1h", "--pause-for", "1.5h", "--stale-after", "2d"]
    result = runner.invoke(app, [*args, *limits])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "summary.json").read_text())["risk"]["config"]
    windows = (config["max_loss_window"], config["pause_for"], config["stale_after"])
    assert windows == ("1h", "90m", "2d")
