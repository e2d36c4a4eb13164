"""The run report: one offline HTML page whose numbers and charts match the run's files."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from plotly.offline import get_plotlyjs

from quotewise.analytics.report import (
    CHART_TITLES,
    build_figure,
    downsample_indices,
    load_run,
    write_report,
)
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

    assert {fig.layout[name].type for name in ("xaxis", "xaxis2", "xaxis3")} == {"date"}
    assert (fig.layout.xaxis.matches, fig.layout.xaxis2.matches) == ("x3", "x3")
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
