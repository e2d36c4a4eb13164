"""The run report: one offline HTML page whose numbers and charts match the run's files."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from backtest_runs import synthetic_run
from plotly.offline import get_plotlyjs
from sample_runs import write_tiny_run
from typer.testing import CliRunner

from quotewise.analytics.attribution import attribute, final_mark
from quotewise.analytics.metrics import compute_metrics
from quotewise.analytics.report import (
    ANALYSIS_TITLES,
    CHART_TITLES,
    build_analysis_figures,
    build_figure,
    downsample_indices,
    load_run,
    write_report,
)
from quotewise.cli import app
from quotewise.errors import DataError

T0 = 1_709_251_200_000_000_000  # 2024-03-01 00:00:00 UTC in ns
SECOND = 1_000_000_000

FILLS_SCHEMA = pa.schema(
    [
        ("exch_ts", pa.int64()),
        ("local_ts", pa.int64()),
        ("order_id", pa.int64()),
        ("side", pa.int8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("fee", pa.float64()),
        ("liquidity", pa.string()),
        ("position", pa.float64()),
        ("cash", pa.float64()),
    ]
)
ORDERS_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),
        ("order_id", pa.int64()),
        ("side", pa.int8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("filled", pa.float64()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)
EQUITY_SCHEMA = pa.schema(
    [("ts", pa.int64())]
    + [
        (name, pa.float64())
        for name in ("position", "cash", "mid", "pnl", "best_bid", "best_ask", "bid_quote", "ask_quote")
    ]
)


def _summary(**overrides: Any) -> dict[str, Any]:
    summary = {
        "strategy": "avellaneda_stoikov",
        "params": {"gamma": 0.1, "k": 1.5, "limits": {"max_position": 5}},
        "data": "data/btcusdt-2024-03-01.parquet",
        "instrument": {
            "symbol": "BTCUSDT",
            "venue": "binance",
            "tick_size": 0.01,
            "lot_size": 0.001,
            "maker_fee": -0.0001,
            "taker_fee": 0.0004,
        },
        "total_pnl": 1234.5678,
        "fees": -12.3456,
        "fills": 321,
        "traded_volume": 1500.0,
        "traded_notional": 98765432.1,
        "final_position": -0.25,
        "max_abs_position": 4.75,
        "events": 2_500_000,
        "wall_seconds": 3.0776,
        "events_per_second": 812345.6,
        "start": "2024-03-01T00:00:00Z",
        "end": "2024-03-01T00:05:00Z",
        "final_mid": 61234.565,
        "orders_placed": 4000,
        "cancels": 3500,
        "rejects": 7,
        "data_report": {"gaps": 2, "skipped": 0},
        "engine_build": "abc123",
    }
    summary.update(overrides)
    return summary


def _equity(n: int, rng: np.random.Generator) -> pa.Table:
    ts = T0 + np.arange(n, dtype=np.int64) * 300 * SECOND // max(n - 1, 1)
    mid = 61_000 + np.cumsum(rng.normal(0, 0.5, n))
    bid_quote = np.round(mid - 1.0, 2)
    ask_quote = np.round(mid + 1.0, 2)
    bid_quote[n // 3 : n // 3 + n // 20] = np.nan
    columns = {
        "ts": ts,
        "position": np.round(np.cumsum(rng.choice([-0.001, 0.0, 0.001], n)), 3),
        "cash": rng.normal(0, 10, n),
        "mid": mid,
        "pnl": np.cumsum(rng.normal(0, 1, n)),
        "best_bid": np.round(mid - 0.05, 2),
        "best_ask": np.round(mid + 0.05, 2),
        "bid_quote": bid_quote,
        "ask_quote": ask_quote,
    }
    return pa.Table.from_pydict(columns, schema=EQUITY_SCHEMA)


def _fills(n: int, rng: np.random.Generator) -> pa.Table:
    side = np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8)
    columns = {
        "exch_ts": T0 + np.sort(rng.integers(0, 300 * SECOND, n)),
        "local_ts": T0 + np.sort(rng.integers(0, 300 * SECOND, n)) + 1_000_000,
        "order_id": np.arange(n, dtype=np.int64),
        "side": side,
        "price": np.round(61_000 + rng.normal(0, 5, n), 2),
        "size": np.full(n, 0.002),
        "fee": np.full(n, -0.0122),
        "liquidity": ["taker" if i % 7 == 0 else "maker" for i in range(n)],
        "position": np.cumsum(side * 0.002),
        "cash": np.zeros(n),
    }
    return pa.Table.from_pydict(columns, schema=FILLS_SCHEMA)


def _orders(n: int) -> pa.Table:
    statuses = ["submitted", "accepted", "cancel_requested", "cancelled", "filled", "rejected"]
    columns = {
        "ts": T0 + np.arange(n, dtype=np.int64) * SECOND,
        "order_id": np.arange(n, dtype=np.int64),
        "side": np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8),
        "price": np.full(n, 61_000.0),
        "size": np.full(n, 0.002),
        "filled": np.zeros(n),
        "status": [statuses[i % len(statuses)] for i in range(n)],
        "reason": [
            "post-only would cross" if statuses[i % len(statuses)] == "rejected" else "" for i in range(n)
        ],
    }
    return pa.Table.from_pydict(columns, schema=ORDERS_SCHEMA)


def _make_run(
    run_dir: Path, *, n_equity: int = 300, n_fills: int = 40, n_orders: int = 60, **summary: Any
) -> Path:
    """A run directory as the engine writes it; ``summary`` overrides keys of the default summary."""
    rng = np.random.default_rng(7)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(_summary(**summary)))
    pq.write_table(_equity(n_equity, rng), run_dir / "equity.parquet")
    pq.write_table(_fills(n_fills, rng), run_dir / "fills.parquet")
    pq.write_table(_orders(n_orders), run_dir / "orders.parquet")
    return run_dir


def _section(page: str, css_class: str) -> str:
    start = page.index(f'<section class="{css_class}">')
    return page[start : page.index("</section>", start)]


BUNDLE = get_plotlyjs()


def test_report_is_one_offline_page(tmp_path: Path) -> None:
    path = write_report(_make_run(tmp_path / "run"))

    assert path == tmp_path / "run" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.count(BUNDLE) == 1
    assert re.search(r"<script[^>]*\ssrc\s*=", page, re.IGNORECASE) is None
    assert "<link" not in page.lower()
    outside_bundle = page.replace(BUNDLE, "")
    assert "http://" not in outside_bundle
    assert "https://" not in outside_bundle


def test_report_shows_header_summary_and_charts(tmp_path: Path) -> None:
    page = write_report(_make_run(tmp_path / "run")).read_text(encoding="utf-8")

    for title in CHART_TITLES:
        assert title in page
    assert "avellaneda_stoikov" in page
    assert "data/btcusdt-2024-03-01.parquet" in page
    assert "BTCUSDT on binance" in page
    assert "2024-03-01 00:00:00 → 2024-03-01 00:05:00 UTC (5 min 0 s)" in page

    summary = _section(page, "summary")
    expected = {
        "Total P&amp;L": "+1,234.57",
        "Fees": "-12.35",
        "Fills": "321",
        "Traded volume": "1,500.000",
        "Traded notional": "98,765,432.10",
        "Final position": "-0.250",
        "Max |position|": "4.750",
        "Final mid": "61,234.57",
        "Rejects": "7",
        "Events": "2,500,000",
        "Events/s": "812,346",
        "Wall time": "3.08 s",
    }
    for label, value in expected.items():
        assert f'<th>{label}</th><td class="num">{value}</td>' in summary, label
    assert "net rebate" in summary
    assert "maker" in summary

    # Parameters, unknown summary keys and order statuses reach the generic tables.
    assert "<th>limits.max_position</th>" in page
    assert "<th>engine_build</th><td>abc123</td>" in page
    assert "post-only would cross" in page


def test_empty_fills_and_orders_still_render(tmp_path: Path) -> None:
    page = write_report(_make_run(tmp_path / "run", n_fills=0, n_orders=0, fills=0)).read_text("utf-8")

    assert page.count(BUNDLE) == 1
    assert "No fills in this run." in page
    for title in CHART_TITLES:
        assert title in page


def test_all_empty_run_still_renders(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run", n_equity=0, n_fills=0, n_orders=0, start=None, end=None)

    page = write_report(run_dir).read_text("utf-8")

    assert "No equity samples in this run" in page
    assert "<dt>Period</dt><dd>—</dd>" in page


def test_empty_file_without_columns_is_accepted(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run")
    pq.write_table(pa.table({}), run_dir / "fills.parquet")

    run = load_run(run_dir)

    assert len(run.fills) == 0
    assert "liquidity" in run.fills.columns
    assert "No fills in this run." in write_report(run_dir).read_text("utf-8")


def test_period_falls_back_to_equity_samples(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run")
    summary = json.loads((run_dir / "summary.json").read_text())
    del summary["start"], summary["end"]
    (run_dir / "summary.json").write_text(json.dumps(summary))

    page = write_report(run_dir).read_text("utf-8")

    assert "2024-03-01 00:00:00 → 2024-03-01 00:05:00 UTC (5 min 0 s)" in page


@pytest.mark.parametrize("name", ["summary.json", "fills.parquet", "orders.parquet", "equity.parquet"])
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    run_dir = _make_run(tmp_path / "run")
    (run_dir / name).unlink()

    with pytest.raises(DataError, match=re.escape(name)):
        write_report(run_dir)


@pytest.mark.parametrize("name", ["summary.json", "fills.parquet", "equity.parquet"])
def test_unreadable_file_is_named(tmp_path: Path, name: str) -> None:
    run_dir = _make_run(tmp_path / "run")
    (run_dir / name).write_bytes(b"\x00not what it claims to be")

    with pytest.raises(DataError, match=re.escape(name)):
        load_run(run_dir)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run")
    pq.write_table(pa.table({"ts": [T0], "pnl": [1.0]}), run_dir / "equity.parquet")

    with pytest.raises(DataError, match=r"equity\.parquet: missing columns .*best_bid"):
        load_run(run_dir)


def test_missing_run_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run directory not found"):
        load_run(tmp_path / "nope")


def test_load_run_returns_everything(tmp_path: Path) -> None:
    run = load_run(_make_run(tmp_path / "run", n_equity=123, n_fills=11, n_orders=17))

    assert run.summary["strategy"] == "avellaneda_stoikov"
    assert (len(run.equity), len(run.fills), len(run.orders)) == (123, 11, 17)
    assert run.fills["liquidity"].iloc[0] == "taker"


def test_figure_uses_a_shared_utc_date_axis(tmp_path: Path) -> None:
    fig, _ = build_figure(load_run(_make_run(tmp_path / "run")))

    assert {fig.layout[name].type for name in ("xaxis", "xaxis2", "xaxis3", "xaxis4")} == {"date"}
    assert {fig.layout[name].matches for name in ("xaxis", "xaxis2", "xaxis3")} == {"x4"}
    pnl = next(trace for trace in fig.data if trace.name == "P&L")
    assert pnl.x[0] == T0 / 1e6  # epoch milliseconds: plotly reads these as UTC
    fills = {trace.name: len(trace.x) for trace in fig.data if trace.name.endswith("fills")}
    assert fills == {"Buy fills": 20, "Sell fills": 20}


def test_downsample_keeps_spikes_gaps_and_ends() -> None:
    values = np.sin(np.linspace(0, 20, 1_000_003))
    values[500_001] = 50.0
    values[700_000] = -50.0
    values[800_000:800_010] = np.nan

    keep = downsample_indices(values, 20_000)

    assert len(keep) <= 20_000
    assert np.all(np.diff(keep) > 0)
    assert keep[0] == 0 and keep[-1] == len(values) - 1
    assert {500_001, 700_000} <= set(keep.tolist())
    assert np.isnan(values[keep]).any()


def test_downsample_leaves_small_series_alone() -> None:
    values = np.arange(10.0)

    assert np.array_equal(downsample_indices(values, 20_000), np.arange(10))


def test_million_row_run_is_downsampled(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run", n_equity=1_000_000, n_fills=50_000, n_orders=1_000)
    equity = pq.read_table(run_dir / "equity.parquet").to_pandas()
    equity.loc[654_321, "pnl"] = 1e6
    pq.write_table(pa.Table.from_pandas(equity, schema=EQUITY_SCHEMA), run_dir / "equity.parquet")

    started = time.perf_counter()
    path = write_report(run_dir)
    elapsed = time.perf_counter() - started

    size = path.stat().st_size
    assert elapsed < 10, f"write_report took {elapsed:.1f} s"
    assert size < 15 * 1024 * 1024, f"report is {size / 1e6:.1f} MB"
    page = path.read_text("utf-8")
    assert "Showing 20,000 of 50,000 fills" in page
    assert "1,000,000 samples" in page

    fig, _ = build_figure(load_run(run_dir))
    assert all(len(trace.x) <= 20_000 for trace in fig.data)
    assert sum(len(trace.x) for trace in fig.data if trace.name.endswith("fills")) == 20_000
    pnl = next(trace for trace in fig.data if trace.name == "P&L")
    assert max(pnl.y) == 1e6


def _tiny_page(run_dir: Path) -> str:
    return write_report(write_tiny_run(run_dir)).read_text("utf-8")


def _row(label: str, value: str) -> str:
    return f'<th>{label}</th><td class="num">{value}</td>'


def test_attribution_and_metrics_tables_match_the_hand_worked_run(tmp_path: Path) -> None:
    page = _tiny_page(tmp_path / "run")

    # the tiny run's numbers, worked out in test_attribution.py and test_metrics.py
    expected = {
        "Spread capture": "+0.3000",
        "Inventory": "+0.7000",
        "…of which 5 s adverse selection": "-0.2000",
        "Fees": "-0.0100",
        "Total P&amp;L": "+0.9900",
        "Fill rate": "60.0 %",
        "Inventory turnover": "3.2",
        "Adverse-selection ratio": "33.3 %",
        "Win rate": "100.0 %",
        "VaR 95 % (1 min)": "-0.9900",
        "Max drawdown": "0.4000",
        "Sharpe (annualised)": "—",
        "Fills without a mid": "1",
    }
    for label, value in expected.items():
        assert _row(label, value) in page, label
    assert _row("Spread capture", "75.0 %") in page  # the metric, beside the money amount above
    assert "peak 2024-03-01 00:00:10 UTC → trough 2024-03-01 00:00:15 UTC" in page
    assert "engine total P&amp;L +0.9900" in page
    markouts = page[page.index("<h2>Markouts (bps)</h2>") :]
    assert '<tr><th>Buy</th><td class="num">15.01</td><td class="num">9.99</td>' in markouts


def test_analysis_figures_carry_the_run_numbers(tmp_path: Path) -> None:
    run = load_run(write_tiny_run(tmp_path / "run"))
    attribution = attribute(run.fills, final_mark(run.summary, run.equity), run.equity)
    figures = build_analysis_figures(run, attribution, compute_metrics(run.fills, run.orders, run.equity))

    assert [fig.layout.title.text for fig in figures.values()] == list(ANALYSIS_TITLES)
    bars = figures["attribution"].data[0]
    assert list(bars.x) == [
        "Spread capture",
        "Inventory",
        "of which 5 s adverse selection",
        "Fees",
        "Total P&L",
    ]
    np.testing.assert_allclose(bars.y, [0.3, 0.7, -0.2, -0.01, 0.99], atol=1e-9)
    buy_markouts = next(t for t in figures["markouts"].data if t.name == "Buy fills")
    assert list(buy_markouts.x) == ["1s", "5s", "60s", "300s"]
    assert buy_markouts.y[0] == pytest.approx(15.005005, rel=1e-6)
    # sizes: buys of 2 and 1, a sell of 1; one bar per distinct size
    sizes = {t.name: (list(t.x), list(t.y)) for t in figures["fill-sizes"].data}
    assert sizes == {"Buy fills": (["1", "2"], [1, 1]), "Sell fills": (["1", "2"], [1, 0])}
    # all three fills fall in the 00:00 one-minute bin (time of day as ms after midnight on a date axis)
    times = {t.name: (list(t.x), list(t.y)) for t in figures["fill-times"].data}
    assert times == {"Buy fills": ([0.0], [2]), "Sell fills": ([0.0], [1])}
    assert figures["fill-times"].layout.xaxis.title.text == "time of day (UTC), 1 min bins"


def test_time_of_day_bins_widen_with_the_span(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run", n_fills=40)
    fills = pq.read_table(run_dir / "fills.parquet").to_pandas()
    # fills from 13:30 to 20:00 UTC: 6.5 h is 78 five-minute bins (over 48), 26 fifteen-minute ones
    fills["exch_ts"] = T0 + np.linspace(13.5 * 3600, 20 * 3600, len(fills)).astype(np.int64) * SECOND
    pq.write_table(pa.Table.from_pandas(fills, schema=FILLS_SCHEMA), run_dir / "fills.parquet")
    run = load_run(run_dir)

    figures = build_analysis_figures(
        run,
        attribute(run.fills, 61_000.0, run.equity),
        compute_metrics(run.fills, run.orders, run.equity),
    )

    axis = figures["fill-times"].layout.xaxis
    assert axis.title.text == "time of day (UTC), 15 min bins"
    assert sum(sum(t.y) for t in figures["fill-times"].data) == 40


def test_many_distinct_fill_sizes_are_binned(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run", n_fills=200)
    fills = pq.read_table(run_dir / "fills.parquet").to_pandas()
    fills["size"] = np.arange(1, 201) * 0.001
    pq.write_table(pa.Table.from_pandas(fills, schema=FILLS_SCHEMA), run_dir / "fills.parquet")
    run = load_run(run_dir)

    figures = build_analysis_figures(
        run,
        attribute(run.fills, 61_000.0, run.equity),
        compute_metrics(run.fills, run.orders, run.equity),
    )

    traces = figures["fill-sizes"].data
    assert figures["fill-sizes"].layout.xaxis.type == "linear"
    assert all(len(t.x) == 30 for t in traces)
    assert sum(sum(t.y) for t in traces) == 200


def _write_risk_events(run_dir: Path, rows: list[tuple[int, str, str, float, float, str]]) -> None:
    table = pa.table(
        {
            "ts": pa.array([T0 + s * SECOND for s, *_ in rows], pa.int64()),
            "rule": pa.array([r[1] for r in rows], pa.string()),
            "action": pa.array([r[2] for r in rows], pa.string()),
            "value": pa.array([r[3] for r in rows], pa.float64()),
            "limit": pa.array([r[4] for r in rows], pa.float64()),
            "detail": pa.array([r[5] for r in rows], pa.string()),
        }
    )
    pq.write_table(table, run_dir / "risk_events.parquet")


def test_risk_events_are_markers_by_action_on_the_time_axis(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run")
    _write_risk_events(
        run_dir,
        [
            (10, "max_position", "trim", 6.0, 5.0, "bid trimmed to 1"),
            (20, "max_position", "reduce_only", 5.5, 5.0, ""),
            (30, "drawdown", "halt", -120.0, -100.0, "stop quoting"),
            (40, "custom", "page_someone", 1.0, 0.0, "unknown action"),
            (50, "max_position", "trim", 6.5, 5.0, "ask trimmed"),
        ],
    )

    run = load_run(run_dir)
    fig, _ = build_figure(run)
    page = write_report(run_dir).read_text("utf-8")

    risk = {t.name: t for t in fig.data if t.name and t.name.startswith("risk: ")}
    assert set(risk) == {"risk: trim", "risk: reduce_only", "risk: halt", "risk: page_someone"}
    assert {t.yaxis for t in risk.values()} == {"y2"}
    assert list(risk["risk: trim"].x) == [(T0 + 10 * SECOND) / 1e6, (T0 + 50 * SECOND) / 1e6]
    assert list(fig.layout.yaxis2.categoryarray) == ["trim", "reduce_only", "halt", "page_someone"]
    assert risk["risk: trim"].marker.symbol != risk["risk: halt"].marker.symbol
    assert not any(a.text.startswith("no risk events") for a in fig.layout.annotations)
    assert _row("max_position · trim", "2") in page
    assert _row("drawdown · halt", "1") in page


def test_no_risk_log_and_empty_risk_log_say_so(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run")
    fig, _ = build_figure(load_run(run_dir))
    assert "no risk events (the run wrote no risk log)" in [a.text for a in fig.layout.annotations]

    _write_risk_events(run_dir, [])
    fig, _ = build_figure(load_run(run_dir))
    assert "no risk events" in [a.text for a in fig.layout.annotations]
    # the empty row still spans the run, so the shared time axis does not reach back to 1970
    ghost = next(t for t in fig.data if t.yaxis == "y2")
    assert min(ghost.x) == T0 / 1e6


def test_risk_log_with_missing_columns_is_named(tmp_path: Path) -> None:
    run_dir = _make_run(tmp_path / "run")
    pq.write_table(pa.table({"ts": [T0], "rule": ["x"]}), run_dir / "risk_events.parquet")

    with pytest.raises(DataError, match=r"risk_events\.parquet: missing columns"):
        load_run(run_dir)


def test_drawdown_is_shaded_under_the_running_peak(tmp_path: Path) -> None:
    fig, notes = build_figure(load_run(write_tiny_run(tmp_path / "run")))

    names = [t.name for t in fig.data]
    peak, pnl = fig.data[names.index("P&L peak")], fig.data[names.index("P&L")]
    assert names.index("P&L") == names.index("P&L peak") + 1 and pnl.fill == "tonexty"
    np.testing.assert_allclose(peak.y, np.maximum.accumulate(pnl.y))
    assert any(a.text == "max drawdown 0.4000" for a in fig.layout.annotations)
    assert any("drawdown" in note for note in notes)


def test_every_chart_container_is_on_the_page(tmp_path: Path) -> None:
    page = _tiny_page(tmp_path / "run")

    ids = re.findall(r'<div id="(quotewise-[a-z-]+)" class="plotly-graph-div"', page)
    assert ids == [
        "quotewise-charts",
        "quotewise-markouts",
        "quotewise-attribution",
        "quotewise-fill-sizes",
        "quotewise-fill-times",
    ]
    assert page.count(BUNDLE) == 1


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_run(tmp_path_factory.mktemp("synthetic"))


def test_mm_report_regenerates_the_whole_page(synthetic_dir: Path, tmp_path: Path) -> None:
    run_dir = Path(shutil.copytree(synthetic_dir, tmp_path / "run"))
    (run_dir / "report.html").unlink()

    result = CliRunner().invoke(app, ["report", str(run_dir)])

    assert result.exit_code == 0, result.output
    page = (run_dir / "report.html").read_text("utf-8")
    for title in CHART_TITLES:
        assert title in page
    for label in ("Fill rate", "Sharpe (annualised)", "Spread capture", "Markouts (bps)"):
        assert label in page
    assert "no risk events" in page
    assert page.count(BUNDLE) == 1
