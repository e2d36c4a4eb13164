"""One self-contained HTML page per backtest run: what happened, in numbers and on a shared time axis.

The page must open anywhere, offline and years later, so the plotly.js bundle is inlined exactly once
and nothing points outside the file. Runs can hold millions of equity samples; plotting every one would
make the page unusable, so each line is downsampled to keep the first, last and extremes of every bucket
(spikes stay visible) and fill markers are sampled evenly beyond a cap, with a note saying so.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.parquet as pq
from plotly.subplots import make_subplots

from quotewise import __version__
from quotewise.errors import DataError

SUMMARY_FILE = "summary.json"
FILLS_FILE = "fills.parquet"
ORDERS_FILE = "orders.parquet"
EQUITY_FILE = "equity.parquet"
REPORT_FILE = "report.html"

FILLS_COLUMNS = (
    "exch_ts",
    "local_ts",
    "order_id",
    "side",
    "price",
    "size",
    "fee",
    "liquidity",
    "position",
    "cash",
)
ORDERS_COLUMNS = ("ts", "order_id", "side", "price", "size", "filled", "status", "reason")
EQUITY_COLUMNS = (
    "ts",
    "position",
    "cash",
    "mid",
    "pnl",
    "best_bid",
    "best_ask",
    "bid_quote",
    "ask_quote",
)

MAX_POINTS = 20_000
MAX_FILLS = 20_000
CHART_TITLES = ("P&L over time", "Inventory (position) over time", "Our quotes vs the market")
CHART_HEIGHT = 980
MISSING = "—"

# Summary keys the page shows in a dedicated place; anything else lands in the generic "Other" table.
KNOWN_SUMMARY_KEYS = frozenset(
    {
        "strategy",
        "params",
        "data",
        "instrument",
        "total_pnl",
        "fees",
        "fills",
        "traded_volume",
        "traded_notional",
        "final_position",
        "max_abs_position",
        "events",
        "wall_seconds",
        "events_per_second",
        "start",
        "end",
        "final_mid",
        "orders_placed",
        "cancels",
        "rejects",
        "data_report",
    }
)

COLORS = {
    "pnl": "#2f5d8a",
    "position": "#7a4fa3",
    "best_bid": "#9ccfae",
    "best_ask": "#f2aaa6",
    "bid_quote": "#1a7f37",
    "ask_quote": "#cf222e",
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
       margin: 0; background: #f6f8fa; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; }
header h1 { font-size: 1.5rem; margin: 0 0 4px; }
header .sub { color: #59636e; margin: 0 0 16px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 24px; }
dl.meta dt { color: #59636e; }
dl.meta dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
section { background: #fff; border: 1px solid #d1d9e0; border-radius: 8px; padding: 16px 20px;
          margin: 0 0 20px; }
section h2 { font-size: 1.1rem; margin: 0 0 12px; }
.tables { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.tables section { flex: 1 1 320px; margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eef1f4; vertical-align: top; }
th { text-align: left; font-weight: 500; color: #3d444d; }
td.num { text-align: right; font-variant-numeric: tabular-nums;
         font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: nowrap; }
td.hint { color: #59636e; font-size: 0.85rem; }
.summary table { max-width: 640px; }
.note { color: #59636e; font-size: 0.88rem; margin: 8px 0 0; }
footer { color: #8c959f; font-size: 0.8rem; text-align: center; }
"""


@dataclass(frozen=True)
class RunData:
    """Everything a backtest run wrote, loaded once so reports and other tools read it the same way."""

    run_dir: Path
    summary: dict[str, Any]
    fills: pd.DataFrame
    orders: pd.DataFrame
    equity: pd.DataFrame


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; raises DataError naming each missing or unreadable file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: run directory not found")
    names = (SUMMARY_FILE, FILLS_FILE, ORDERS_FILE, EQUITY_FILE)
    missing = [name for name in names if not (run_dir / name).is_file()]
    if missing:
        raise DataError(f"{run_dir}: incomplete run directory, missing {', '.join(missing)}")
    return RunData(
        run_dir=run_dir,
        summary=_read_summary(run_dir / SUMMARY_FILE),
        fills=_read_table(run_dir / FILLS_FILE, FILLS_COLUMNS),
        orders=_read_table(run_dir / ORDERS_FILE, ORDERS_COLUMNS),
        equity=_read_table(run_dir / EQUITY_FILE, EQUITY_COLUMNS),
    )


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    return summary


def _read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a Parquet file; an empty file may lack columns (nothing to describe them), a non-empty one not."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    frame = table.to_pandas()
    absent = [name for name in columns if name not in frame.columns]
    if absent and len(frame):
        raise DataError(f"{path}: missing columns {absent}")
    return frame.reindex(columns=[*columns, *(c for c in frame.columns if c not in columns)])


def downsample_indices(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted indices of at most ``max_points`` samples that keep the shape of ``values``.

    Per bucket: first, last, minimum, maximum and the first NaN (so gaps in our quotes stay gaps);
    five picks per bucket, so ``max_points`` below 5 still yields one bucket of up to five.
    """
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    width = -(-n // max(1, max_points // 5))
    buckets = -(-n // width)
    pad = buckets * width - n
    nan = np.isnan(values)
    low = np.pad(np.where(nan, np.inf, values), (0, pad), constant_values=np.inf).reshape(buckets, width)
    high = np.pad(np.where(nan, -np.inf, values), (0, pad), constant_values=-np.inf).reshape(buckets, width)
    gaps = np.pad(nan, (0, pad), constant_values=False).reshape(buckets, width)
    starts = np.arange(buckets) * width
    picks = (
        starts,
        np.minimum(starts + width, n) - 1,
        starts + low.argmin(axis=1),
        starts + high.argmax(axis=1),
        (starts + gaps.argmax(axis=1))[gaps.any(axis=1)],
    )
    return np.unique(np.concatenate(picks))


def write_report(run_dir: str | Path, *, max_points: int = MAX_POINTS, max_fills: int = MAX_FILLS) -> Path:
    """Write ``run_dir/report.html`` from the run's files and return its path."""
    run = load_run(run_dir)
    path = run.run_dir / REPORT_FILE
    path.write_text(render_report(run, max_points=max_points, max_fills=max_fills), encoding="utf-8")
    return path


def render_report(run: RunData, *, max_points: int = MAX_POINTS, max_fills: int = MAX_FILLS) -> str:
    """The report page as one HTML string (plotly.js inlined once, no external references)."""
    summary = run.summary
    instrument = _instrument(summary)
    figure, notes = build_figure(run, max_points=max_points, max_fills=max_fills)
    chart = figure.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="quotewise-charts",
        default_height=f"{CHART_HEIGHT}px",
        config={"displaylogo": False, "responsive": True},
    )
    strategy = str(summary.get("strategy", MISSING))
    symbol = str(instrument.get("symbol", MISSING))
    title = f"Quotewise report: {strategy} on {symbol}"
    detail_tables = [
        _table("Parameters", _flatten(summary.get("params"))),
        _table("Instrument", _flatten(instrument)),
        _table("Order events by status", _order_status_rows(run.orders)),
        _table("Reject reasons", _reject_rows(run.orders)),
        _table("Data report", _flatten(summary.get("data_report"))),
        _table("Other", _flatten({k: v for k, v in summary.items() if k not in KNOWN_SUMMARY_KEYS})),
    ]
    notes_html = "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{html.escape(title)}</h1>
<p class="sub">Backtest run <code>{html.escape(run.run_dir.name)}</code></p>
{_meta_list(run, instrument)}
</header>
<section class="summary">
<h2>Summary</h2>
{_summary_table(run, instrument)}
</section>
<section class="charts">
<h2>Charts</h2>
{chart}
{notes_html}
</section>
<div class="tables">
{"".join(detail_tables)}
</div>
<footer><p>Generated by Quotewise {html.escape(__version__)}. Times are UTC.</p></footer>
</main>
</body>
</html>
"""


def build_figure(
    run: RunData, *, max_points: int = MAX_POINTS, max_fills: int = MAX_FILLS
) -> tuple[go.Figure, list[str]]:
    """P&L, inventory and quotes-vs-market panels on one shared UTC time axis, plus notes on sampling."""
    instrument = _instrument(run.summary)
    price_fmt = f",.{_step_decimals(instrument.get('tick_size'), 6)}f"
    size_fmt = f",.{_step_decimals(instrument.get('lot_size'), 6)}f"
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.3, 0.2, 0.5],
        subplot_titles=CHART_TITLES,
    )
    notes: list[str] = []
    equity = run.equity.sort_values("ts", kind="stable") if len(run.equity) else run.equity
    times = _to_ms(equity["ts"])
    lines = (
        ("pnl", "P&L", 1, "linear", {}),
        ("position", "Position", 2, "hv", {}),
        ("best_bid", "Market best bid", 3, "hv", {"width": 1}),
        ("best_ask", "Market best ask", 3, "hv", {"width": 1}),
        ("bid_quote", "Our bid", 3, "hv", {"width": 1.6}),
        ("ask_quote", "Our ask", 3, "hv", {"width": 1.6}),
    )
    for column, name, row, shape, line in lines:
        values = equity[column].to_numpy(dtype=np.float64, na_value=np.nan)
        keep = downsample_indices(values, max_points)
        value_fmt = {1: ",.4~f", 2: size_fmt}.get(row, price_fmt)
        fig.add_trace(
            go.Scatter(
                x=times[keep],
                y=values[keep],
                name=name,
                mode="lines",
                line={"shape": shape, "color": COLORS[column], **line},
                hovertemplate=f"%{{x}}<br>{name}: %{{y:{value_fmt}}}<extra></extra>",
            ),
            row=row,
            col=1,
        )
    if len(equity) > max_points:
        notes.append(
            f"Equity series downsampled for plotting: {len(equity):,} samples, at most {max_points:,} points "
            "per line (first, last, minimum and maximum of each time bucket kept, so spikes stay visible)."
        )
    if not len(equity):
        notes.append("No equity samples in this run: the P&L, inventory and market lines are empty.")
    notes.extend(_add_fills(fig, run.fills, price_fmt, size_fmt, max_fills))
    _style(fig)
    return fig, notes


def _add_fills(
    fig: go.Figure, fills: pd.DataFrame, price_fmt: str, size_fmt: str, max_fills: int
) -> list[str]:
    """Buy and sell fill markers on the quotes panel, sampled evenly in time beyond ``max_fills``."""
    total = len(fills)
    if not total:
        return ["No fills in this run."]
    fills = fills.sort_values("exch_ts", kind="stable")
    notes = ["Fill markers: ▲ buy, ▼ sell; solid = maker, open = taker; placed at the exchange timestamp."]
    if total > max_fills:
        fills = fills.iloc[np.unique(np.linspace(0, total - 1, max_fills).round().astype(np.int64))]
        note = f"Showing {len(fills):,} of {total:,} fills, sampled evenly in time order."
        notes.append(note)
        fig.add_annotation(
            text=note,
            xref="x3 domain",
            yref="y3 domain",
            x=1,
            y=1,
            xanchor="right",
            yanchor="top",
            showarrow=False,
            font={"size": 11, "color": "#59636e"},
            bgcolor="rgba(255,255,255,0.8)",
        )
    times = _to_ms(fills["exch_ts"])
    side = fills["side"].to_numpy(dtype=np.float64, na_value=np.nan)
    price = fills["price"].to_numpy(dtype=np.float64, na_value=np.nan)
    liquidity = fills["liquidity"].astype(str).to_numpy(dtype=object)
    taker = liquidity == "taker"
    custom = np.empty((len(fills), 4), dtype=object)
    custom[:, 0] = fills["size"].to_numpy(dtype=np.float64, na_value=np.nan)
    custom[:, 1] = fills["fee"].to_numpy(dtype=np.float64, na_value=np.nan)
    custom[:, 2] = liquidity
    custom[:, 3] = fills["order_id"].astype(str).to_numpy(dtype=object)
    markers = (
        (1, "Buy", "triangle-up", COLORS["bid_quote"]),
        (-1, "Sell", "triangle-down", COLORS["ask_quote"]),
    )
    for sign, label, symbol, color in markers:
        mask = side == sign
        fig.add_trace(
            go.Scatter(
                x=times[mask],
                y=price[mask],
                name=f"{label} fills",
                mode="markers",
                marker={
                    "symbol": np.where(taker[mask], f"{symbol}-open", symbol),
                    "color": color,
                    "size": 9,
                },
                customdata=custom[mask],
                hovertemplate=(
                    f"%{{x}}<br><b>{label}</b> %{{customdata[0]:{size_fmt}}} @ %{{y:{price_fmt}}}"
                    "<br>fee %{customdata[1]:,.6g} (%{customdata[2]})"
                    "<br>order %{customdata[3]}<extra></extra>"
                ),
            ),
            row=3,
            col=1,
        )
    return notes


def _style(fig: go.Figure) -> None:
    fig.update_layout(
        template="plotly_white",
        height=CHART_HEIGHT,
        margin={"l": 70, "r": 30, "t": 90, "b": 50},
        hovermode="closest",
        legend={"orientation": "h", "x": 0, "y": 1.06, "xanchor": "left", "yanchor": "bottom"},
        font={"size": 12},
    )
    fig.update_xaxes(
        type="date",
        hoverformat="%Y-%m-%d %H:%M:%S.%L UTC",
        showspikes=True,
        spikemode="across",
        spikesnap="cursor",
        spikethickness=1,
        spikedash="dot",
        spikecolor="#8c959f",
    )
    fig.update_xaxes(title_text="time (UTC)", row=3, col=1)
    fig.update_yaxes(title_text="P&L", row=1, col=1)
    fig.update_yaxes(title_text="position", row=2, col=1, zeroline=True, zerolinecolor="#8c959f")
    fig.update_yaxes(title_text="price", row=3, col=1)


def _instrument(summary: dict[str, Any]) -> dict[str, Any]:
    instrument = summary.get("instrument")
    return instrument if isinstance(instrument, dict) else {}


def _to_ms(ts: pd.Series) -> np.ndarray:
    """Nanosecond timestamps as float milliseconds: plotly reads numbers on a date axis as UTC epoch ms,
    and base64-encoded floats keep the page far smaller than ISO strings."""
    ns = ts.to_numpy(dtype=np.int64)
    return (ns // 1_000).astype(np.float64) / 1_000.0


def _step_decimals(step: Any, default: int) -> int:
    """Decimals needed to print multiples of a tick or lot size exactly (0.01 -> 2, 1 -> 0)."""
    value = _number(step)
    if value is None or value <= 0:
        return default
    return len(f"{value:.10f}".rstrip("0").split(".")[1])


def _number(value: Any) -> float | None:
    """A finite number from JSON, or None for absent, non-numeric or non-finite values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt_money(value: Any, *, signed: bool = False) -> str:
    """Cents for meaningful amounts, more decimals for small ones so a 0.0042 fee does not read as 0.00."""
    x = _number(value)
    if x is None:
        return MISSING
    decimals = 2 if x == 0 or abs(x) >= 10 else 4
    return f"{x:{'+' if signed else ''},.{decimals}f}"


def _fmt_fixed(value: Any, decimals: int, *, signed: bool = False) -> str:
    x = _number(value)
    return MISSING if x is None else f"{x:{'+' if signed else ''},.{decimals}f}"


def _fmt_int(value: Any) -> str:
    x = _number(value)
    return MISSING if x is None else f"{round(x):,}"


def _fmt_duration(seconds: Any) -> str:
    x = _number(seconds)
    if x is None:
        return MISSING
    if x < 60:
        return f"{x:.2f} s"
    if x < 3600:
        minutes, rest = divmod(x, 60)
        return f"{int(minutes)} min {rest:.0f} s"
    if x < 86400:
        hours, rest = divmod(x, 3600)
        return f"{int(hours)} h {int(rest // 60)} min"
    days, rest = divmod(x, 86400)
    return f"{int(days)} d {int(rest // 3600)} h"


def _fmt_value(value: Any) -> tuple[str, bool]:
    """Text for a value of unknown meaning, and whether it is a number (numbers are right-aligned)."""
    if value is None:
        return MISSING, False
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        return (f"{value:,.10g}" if math.isfinite(value) else str(value)), True
    if isinstance(value, str):
        return value, False
    return json.dumps(value, default=str), False


def _timestamp(value: Any) -> pd.Timestamp | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        return None
    if stamp is pd.NaT:
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _period(run: RunData) -> str:
    """Start and end from the summary, falling back to the equity samples when absent or unparsable."""
    start = _timestamp(run.summary.get("start"))
    end = _timestamp(run.summary.get("end"))
    if (start is None or end is None) and len(run.equity):
        ns = run.equity["ts"].to_numpy(dtype=np.int64)
        if start is None:
            start = pd.Timestamp(int(ns.min()), tz="UTC")
        if end is None:
            end = pd.Timestamp(int(ns.max()), tz="UTC")
    if start is None or end is None:
        return MISSING
    span = _fmt_duration((end - start).total_seconds())
    return f"{start:%Y-%m-%d %H:%M:%S} → {end:%Y-%m-%d %H:%M:%S} UTC ({span})"


def _meta_list(run: RunData, instrument: dict[str, Any]) -> str:
    symbol = instrument.get("symbol", MISSING)
    venue = instrument.get("venue")
    items = (
        ("Strategy", str(run.summary.get("strategy", MISSING))),
        ("Data", str(run.summary.get("data", MISSING))),
        ("Instrument", f"{symbol} on {venue}" if venue else str(symbol)),
        ("Period", _period(run)),
    )
    body = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
    return f'<dl class="meta">{body}</dl>'


def _max_drawdown(equity: pd.DataFrame) -> float | None:
    """Largest fall of P&L below its running peak over all equity samples (not the plotted subset)."""
    pnl = equity["pnl"].to_numpy(dtype=np.float64, na_value=np.nan)
    pnl = pnl[~np.isnan(pnl)]
    if not len(pnl):
        return None
    return float(np.max(np.maximum.accumulate(pnl) - pnl))


def _summary_table(run: RunData, instrument: dict[str, Any]) -> str:
    s = run.summary
    size_decimals = _step_decimals(instrument.get("lot_size"), 4)
    price_decimals = _step_decimals(instrument.get("tick_size"), 6)
    fees = _number(s.get("fees"))
    fees_hint = "net rebate" if fees is not None and fees < 0 else "positive = paid, negative = net rebate"
    fills_hint = ""
    if len(run.fills):
        maker = float((run.fills["liquidity"].astype(str) == "maker").mean())
        fills_hint = f"{maker:.0%} maker, {1 - maker:.0%} taker"
    rows = (
        ("Total P&L", _fmt_money(s.get("total_pnl"), signed=True), ""),
        ("Fees", _fmt_money(s.get("fees")), fees_hint),
        ("Max drawdown", _fmt_money(_max_drawdown(run.equity)), "largest fall of P&L from a running peak"),
        ("Fills", _fmt_int(s.get("fills")), fills_hint),
        ("Traded volume", _fmt_fixed(s.get("traded_volume"), size_decimals), "size units"),
        ("Traded notional", _fmt_money(s.get("traded_notional")), ""),
        ("Final position", _fmt_fixed(s.get("final_position"), size_decimals, signed=True), ""),
        ("Max |position|", _fmt_fixed(s.get("max_abs_position"), size_decimals), ""),
        ("Final mid", _fmt_fixed(s.get("final_mid"), price_decimals), ""),
        ("Orders placed", _fmt_int(s.get("orders_placed")), ""),
        ("Cancels", _fmt_int(s.get("cancels")), ""),
        ("Rejects", _fmt_int(s.get("rejects")), ""),
        ("Events", _fmt_int(s.get("events")), ""),
        ("Events/s", _fmt_int(s.get("events_per_second")), ""),
        ("Wall time", _fmt_duration(s.get("wall_seconds")), ""),
    )
    body = "".join(
        f'<tr><th>{html.escape(label)}</th><td class="num">{html.escape(value)}</td>'
        f'<td class="hint">{html.escape(hint)}</td></tr>'
        for label, value, hint in rows
    )
    return f"<table>{body}</table>"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str, bool]]:
    """Nested dicts as dotted-key rows, so unknown summary content still reads as a table."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [(prefix.rstrip(".") or "value", *_fmt_value(value))]
    rows: list[tuple[str, str, bool]] = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            rows.extend(_flatten(item, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", *_fmt_value(item)))
    return rows


def _order_status_rows(orders: pd.DataFrame) -> list[tuple[str, str, bool]]:
    counts = orders["status"].astype(str).value_counts()
    return [(str(status), f"{count:,}", True) for status, count in counts.items()]


def _reject_rows(orders: pd.DataFrame, limit: int = 10) -> list[tuple[str, str, bool]]:
    """The most frequent reject reasons: a rejected quote is the first thing to look at in a bad run."""
    reasons = orders.loc[orders["status"].astype(str) == "rejected", "reason"].fillna("").astype(str)
    counts = reasons.replace("", "(no reason given)").value_counts().head(limit)
    return [(str(reason), f"{count:,}", True) for reason, count in counts.items()]


def _table(title: str, rows: list[tuple[str, str, bool]]) -> str:
    """A titled key/value table, or nothing when there is nothing to show."""
    if not rows:
        return ""
    cells = ((key, ' class="num"' if numeric else "", text) for key, text, numeric in rows)
    body = "".join(f"<tr><th>{html.escape(k)}</th><td{cls}>{html.escape(t)}</td></tr>" for k, cls, t in cells)
    return f"<section><h2>{html.escape(title)}</h2><table>{body}</table></section>"
