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


def test_info_and_convert_take_consecutive_files_like_backtest(tmp_path, shared_data):
    spot = shared_data / "binance" / "spot"
    first, second = spot / "btcusdt_20240808.gz", spot / "btcusdt_20240809.gz"
    info = runner.invoke(app, ["data", "info", f"{first},{second}", "--json"])
    assert info.exit_code == 0, info.output
    summary = json.loads(info.stdout)
    assert summary["report"]["files"] == [str(first), str(second)]
    assert summary["events"] == 319_999  # what `mm backtest --data a,b` replays
    out = tmp_path / "spot.parquet"
    convert = runner.invoke(app, ["data", "convert", f"{first},{second}", "--out", str(out)])
    assert convert.exit_code == 0, convert.output
    assert len(read_events(out).events) == 319_999
    alone = runner.invoke(app, ["data", "info", str(second)])
    assert alone.exit_code == 2
    assert f"{second}: " in alone.stderr and "no depth snapshot" in alone.stderr
    assert f"--dataEARLIER.gz,{second}" in "".join(alone.stderr.split())  # rich may wrap the line


def _late_snapshot_csv(path):
    """A tardis incremental_book_L2 file whose first snapshot comes 2 s after its first update."""
    rows = [
        "x,S,1600000000000000,1600000000000000,false,bid,5.0,1",
        "x,S,1600000002000000,1600000002000000,true,bid,4.0,3",
        "x,S,1600000002000000,1600000002000000,true,ask,4.5,3",
        "x,S,1600000003000000,1600000003000000,false,bid,4.1,1",
    ]
    header = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
    path.write_text("\n".join([header, *rows]))
    return path


def test_reader_warnings_are_printed_by_info_convert_and_backtest(tmp_path):
    path = _late_snapshot_csv(tmp_path / "late.csv")
    warning = f"warning: {path}:3: the book starts at the first is_snapshot row, 2.0 s after the first row"
    info = runner.invoke(app, ["data", "info", str(path), "--json"])
    assert info.exit_code == 0 and info.stderr.startswith(warning)
    assert json.loads(info.stdout)["report"]["warnings"][0].startswith(warning.removeprefix("warning: "))
    out = tmp_path / "late.parquet"
    convert = runner.invoke(app, ["data", "convert", str(path), "--out", str(out)])
    assert convert.exit_code == 0 and convert.stderr.startswith(warning)
    for data in (path, out):  # the warning travels with the converted file
        out_dir = str(tmp_path / data.suffix)
        args = ["backtest", "--data", str(data), "--quiet", "--no-report", "--out", out_dir]
        run = runner.invoke(app, args)
        assert run.exit_code == 0, run.output
        assert run.stderr.startswith(warning)


def test_trades_alone_are_read_but_not_backtested(tmp_path, shared_data):
    trades = shared_data / "tardis" / "bitmex_trades_XBTUSD.csv"
    info = runner.invoke(app, ["data", "info", str(trades), "--json"])
    assert info.exit_code == 0 and set(json.loads(info.stdout)["events_by_kind"]) == {"TRADE"}
    out = tmp_path / "trades.parquet"
    assert runner.invoke(app, ["data", "convert", str(trades), "--out", str(out)]).exit_code == 0
    for data in (trades, out):
        run = runner.invoke(app, ["backtest", "--data", str(data), "--quiet", "--out", str(tmp_path / "run")])
        assert run.exit_code == 2
        assert "only trades, no order book events" in run.stderr and data.name in run.stderr
    assert not (tmp_path / "run").exists()


def test_the_synthetic_market_is_a_data_form_like_any_other(tmp_path):
    """``synthetic`` and ``synthetic:N`` work wherever --data does: info, convert, backtest."""
    info = runner.invoke(app, ["data", "info", "synthetic:30000", "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["events"] == 30_000
    out = tmp_path / "synth.parquet"
    converted = runner.invoke(app, ["data", "convert", "synthetic:20000", "--out", str(out)])
    assert converted.exit_code == 0 and len(read_events(out).events) == 20_000
    run = tmp_path / "run"
    args = ["backtest", "--data", "synthetic:50000", "--quiet", "--no-report", "--out", str(run)]
    assert runner.invoke(app, args).exit_code == 0
    assert json.loads((run / "summary.json").read_text())["events"] == 50_000
    bad = runner.invoke(app, ["data", "info", "synthetic:lots"])
    assert bad.exit_code == 2 and "synthetic:N wants a number of events" in bad.output


def test_convert_writes_what_the_suffix_names_and_refuses_any_other(tmp_path):
    from quotewise.data.hftbacktest import read_hftbacktest_npz

    npz = tmp_path / "out" / "synth.npz"
    converted = runner.invoke(app, ["data", "convert", "synthetic:20000", "--out", str(npz)])
    assert converted.exit_code == 0, converted.output
    assert "--tick 0.01 --lot 1.0" in converted.output  # an .npz does not keep them
    back = read_hftbacktest_npz(npz, tick_size=0.01, lot_size=1.0)
    assert len(back.events) > 0 and back.events["price"].min() > 0
    parquet = tmp_path / "synth.parquet"
    assert runner.invoke(app, ["data", "convert", "synthetic:20000", "--out", str(parquet)]).exit_code == 0
    assert len(read_events(parquet).events) == 20_000
    for name in ("synth.csv", "synth", "synth.npz.gz"):
        refused = runner.invoke(app, ["data", "convert", "synthetic:20000", "--out", str(tmp_path / name)])
        assert refused.exit_code == 2
        assert refused.stderr.count("\n") == 1 and ".parquet" in refused.stderr and ".npz" in refused.stderr
        assert not (tmp_path / name).exists()
