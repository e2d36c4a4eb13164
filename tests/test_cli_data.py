"""`mm data convert` and `mm data info` end to end, and a backtest streamed from the converted file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from conftest import shared_path
from quotewise.cli import app
from quotewise.data.store import read_events

runner = CliRunner()


def test_convert_info_and_backtest_from_parquet(tmp_path):
    source = shared_path("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")
    out = tmp_path / "amzn.parquet"
    result = runner.invoke(app, ["data", "convert", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 194,108 events" in result.output
    data = read_events(out)
    assert data.instrument.symbol == "AMZN" and data.instrument.tick_size == 0.01
    assert len(data.events) == 194_108

    info = runner.invoke(app, ["data", "info", str(out), "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.output)
    assert summary["instrument"]["symbol"] == "AMZN"
    assert sum(summary["events_by_kind"].values()) == 194_108

    run = runner.invoke(
        app,
        [
            "backtest",
            "--data",
            str(out),
            "--quiet",
            "--no-report",
            "--set",
            "size=100",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert run.exit_code == 0, run.output
    result_summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert result_summary["events"] == 194_108
    assert result_summary["sim"]["queue"] == "fifo"  # the Parquet file keeps the L3 order ids
    assert result_summary["fills"] > 0


def test_convert_refuses_bad_input(tmp_path):
    unknown = runner.invoke(
        app,
        [
            "data",
            "convert",
            str(tmp_path / "x.csv"),
            "--format",
            "csv9",
            "--out",
            str(tmp_path / "o.parquet"),
        ],
    )
    assert unknown.exit_code == 2 and "lobster" in unknown.output
    missing = runner.invoke(app, ["data", "info", str(tmp_path / "nothing.parquet")])
    assert missing.exit_code == 2 and "nothing.parquet" in missing.output
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    bad = runner.invoke(app, ["backtest", "--data", str(broken), "--quiet", "--out", str(tmp_path / "run")])
    assert bad.exit_code == 2 and "broken.parquet" in bad.output
    assert not (tmp_path / "run").exists()
