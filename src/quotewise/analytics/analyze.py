"""Attribution and metrics of a finished run, stored in its summary.json next to what the engine wrote.

Computed from the run's files rather than inside the engine, so an old run can be re-analysed and
what summary.json says can always be recomputed from fills, orders and equity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from quotewise.analytics.attribution import attribute, final_mark, run_instrument, settlement_price
from quotewise.analytics.metrics import compute_metrics
from quotewise.analytics.report import SUMMARY_FILE, load_run


def _json_default(value: object) -> object:
    """numpy scalars as plain numbers; anything else unknown as text (summary.json must stay valid)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def _finite(value: Any) -> Any:
    """NaN/inf as null: JSON has no NaN and other tools reject Python's ``NaN`` token."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# what attribution and metrics read of the outputs that grow with the run (bounded memory)
ANALYSIS_ORDER_COLUMNS = ("status",)
ANALYSIS_EQUITY_COLUMNS = ("ts", "position", "mid", "pnl", "bid_quote", "ask_quote")


def summarize_run(run_dir: str | Path) -> dict[str, Any]:
    """Add ``attribution`` and ``metrics`` to ``run_dir/summary.json`` (other keys kept); return it."""
    run = load_run(run_dir, ANALYSIS_ORDER_COLUMNS, ANALYSIS_EQUITY_COLUMNS)
    mark = final_mark(run.summary, run.equity)
    attribution = attribute(
        run.fills,
        mark,
        run.equity,
        run_instrument(run.summary),
        settlement_price=settlement_price(run.summary),
    )
    metrics = compute_metrics(run.fills, run.orders, run.equity)
    summary = _finite({**run.summary, "attribution": attribution.to_dict(), "metrics": metrics.to_dict()})
    (run.run_dir / SUMMARY_FILE).write_text(
        json.dumps(summary, indent=2, default=_json_default), encoding="utf-8"
    )
    return summary
