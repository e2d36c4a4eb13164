"""Enforced book limits: with ``limits.action: halt`` the whole book stops at the first breach (grid
time T): legs stop quoting, every position is closed by a market order at T, the P&L is flat after,
and the attribution still adds up. ``report`` (the default) changes nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from quotewise.cli import app

runner = CliRunner()
VAR_LIMIT = 0.5  # the two synthetic markets' rolling 1-minute VaR first goes over it ~15 s in


def run_book(tmp_path: Path, name: str, mode: str, limits: str) -> tuple[dict, pd.DataFrame, str]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(
        "instruments:\n"
        "  a: {data: 'synthetic:40000', seed: 1, strategy: skew, params: {spread: 1}, maker_fee: -0.5bp}\n"
        "  b: {data: 'synthetic:40000', seed: 2, strategy: skew, params: {spread: 1}, taker_fee: 2bp,"
        " maker_fee: 0.5bp}\n"
        f"hedge: {{instrument: b, band: 0.5, ratio: 1.0, latency: 1ms, mode: {mode}, timeout: 1s}}\n"
        f"limits: {limits}\n"
    )
    out = tmp_path / name
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    return summary, pd.read_parquet(out / "book.parquet"), result.output


def assert_identity(summary: dict) -> None:
    a = summary["attribution"]
    parts = math.fsum(a[k] for k in ("spread", "inventory", "fees", "hedging"))
    assert parts == pytest.approx(summary["total_pnl"], abs=1e-9)
    assert a["total"] == pytest.approx(summary["total_pnl"], abs=1e-9)


@pytest.mark.parametrize("mode", ["taker", "passive"])
def test_a_breach_halts_the_book_closes_every_position_and_keeps_the_identity(tmp_path, mode):
    reported, full_book, _ = run_book(tmp_path, "report", mode, f"{{var_1m: {VAR_LIMIT}}}")
    assert reported["halted"] is None and reported["risk_events"]
    first = reported["risk_events"][0]
    halted, book, output = run_book(tmp_path, "halt", mode, f"{{var_1m: {VAR_LIMIT}, action: halt}}")
    at = halted["halted"]["at"]
    assert halted["halted"] == {
        "at": first["ts"],
        "time": first["time"],
        "rule": "var_1m",
        "value": first["value"],
        "limit": VAR_LIMIT,
    }
    assert first["value"] > VAR_LIMIT and book["ts"].iloc[0] < at < book["ts"].iloc[-1]
    assert "Halted" in output
    # nothing quoted or filled after T; every position closed at T
    for leg in ("a", "b"):
        fills = pd.read_parquet(tmp_path / "halt" / leg / "fills.parquet")
        assert len(fills) and (fills["exch_ts"] <= at).all()
        flatten = halted["instruments"][leg].get("halt_flatten")
        assert flatten is None or flatten["unfilled"] == 0
    hedge_fills = pd.read_parquet(tmp_path / "halt" / "hedge" / "fills.parquet")
    assert (hedge_fills["exch_ts"] <= at).all() and halted["hedge"]["final_position"] == 0
    after = book[book["ts"] >= at]
    assert (after["pnl:total"] == after["pnl:total"].iloc[0]).all()
    assert (after[[c for c in book if c.startswith("exposure:")]] == 0).all().all()
    # before T the book is the unhalted book (every run is causal)
    before = book["ts"] < at
    pd.testing.assert_frame_equal(book[before], full_book[before])
    assert_identity(halted)
    assert_identity(reported)
    report = (tmp_path / "halt" / "report.html").read_text()
    assert "Halted</b> at" in report


def test_report_action_changes_nothing(tmp_path):
    plain, plain_book, _ = run_book(tmp_path, "plain", "taker", "{}")
    reported, reported_book, _ = run_book(
        tmp_path, "rep", "taker", f"{{var_1m: {VAR_LIMIT}, action: report}}"
    )
    assert reported["halted"] is None and plain["halted"] is None and reported["risk_events"]
    pd.testing.assert_frame_equal(plain_book, reported_book)
    for key in ("total_pnl", "attribution", "hedge", "instruments"):
        assert _without_timing(plain[key]) == _without_timing(reported[key]), key
    for name in ("fills", "orders"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "plain" / "hedge" / f"{name}.parquet"),
            pd.read_parquet(tmp_path / "rep" / "hedge" / f"{name}.parquet"),
        )


def _without_timing(value: object) -> object:
    """A summary part without the wall-clock figures that differ from run to run."""
    if isinstance(value, dict):
        timing = ("wall_seconds", "events_per_second")
        return {k: _without_timing(v) for k, v in value.items() if k not in timing}
    return value


def test_an_unknown_limit_action_is_refused_naming_the_field(tmp_path):
    spec = tmp_path / "book.yaml"
    spec.write_text("instruments:\n  a: {data: 'synthetic:1000'}\nlimits: {max_net: 5, action: stop}\n")
    result = runner.invoke(app, ["backtest", "--portfolio", str(spec)])
    assert result.exit_code == 2 and "portfolio limits.action" in result.output
