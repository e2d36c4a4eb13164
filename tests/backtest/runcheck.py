"""Consistency checks every backtest's outputs must pass, whatever the data or strategy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from quotewise.model.instrument import Instrument


def check_run(out_dir: Path) -> dict:
    """Recompute P&L, position and fees from fills.parquet and compare with summary.json."""
    summary = json.loads((out_dir / "summary.json").read_text())
    fills = pq.read_table(out_dir / "fills.parquet").to_pandas()
    orders = pq.read_table(out_dir / "orders.parquet").to_pandas()
    equity = pq.read_table(out_dir / "equity.parquet").to_pandas()
    assert (out_dir / "report.html").exists()

    # money in the settlement currency: v(p) per unit of size (p for a linear contract of size 1,
    # -contract_size / p for an inverse one), docs/contracts.md
    v = Instrument(**summary["instrument"]).unit_value
    side = fills["side"].to_numpy(np.float64)
    signed = side * fills["size"].to_numpy()
    cash = float(np.sum(-signed * v(fills["price"].to_numpy())) - fills["fee"].sum())
    position = float(signed.sum())
    assert summary["fills"] == len(fills)
    assert position == pytest.approx(summary["final_position"], abs=1e-9)
    traded = max(float(np.sum(np.abs(signed * v(fills["price"].to_numpy())))), 1.0)
    assert cash == pytest.approx(summary["cash"], rel=1e-9, abs=1e-12 * traded)
    assert float(fills["fee"].sum()) == pytest.approx(summary["fees"], rel=1e-9, abs=1e-12 * traded)
    pnl = cash + (position * v(summary["final_mid"]) if summary["final_mid"] is not None else 0.0)
    assert pnl == pytest.approx(summary["total_pnl"], rel=1e-9, abs=1e-12 * traded)
    assert set(summary["units"]) >= {"total_pnl", "fees", "cash", "traded_notional", "final_position"}
    # position and cash after each fill follow from the fills before it (in exchange time order)
    fills = fills.sort_values("exch_ts", kind="stable")
    assert np.allclose(np.cumsum(fills["side"] * fills["size"]), fills["position"])
    if len(fills):
        assert summary["max_abs_position"] == pytest.approx(np.abs(fills["position"]).max())
    assert summary["traded_volume"] == pytest.approx(fills["size"].sum())
    assert set(fills["liquidity"]) <= {"maker", "taker"}
    # every fill belongs to an order that was submitted, and no order is filled beyond its size
    submitted = orders[orders["status"] == "submitted"].set_index("order_id")
    assert set(fills["order_id"]) <= set(submitted.index)
    filled = fills.groupby("order_id")["size"].sum()
    assert (filled <= submitted.loc[filled.index, "size"] + 1e-9).all()
    assert summary["orders_placed"] == len(submitted)
    assert equity["pnl"].iloc[-1] == pytest.approx(summary["total_pnl"], rel=1e-9, abs=1e-6)
    assert equity["ts"].is_monotonic_increasing
    return summary
