"""One self-contained HTML page per backtest run: what happened, in numbers and on a shared time axis.

The page must open anywhere, offline and years later, so the plotly.js bundle is inlined exactly once
and nothing points outside the file. Attribution and metrics are recomputed from the run's files on every
render (the same functions ``summarize_run`` stores in summary.json), so ``mm report`` on an older run
still shows them. Runs can hold millions of equity samples; plotting every one would
make the page unusable, so each line is downsampled to keep the first, last and extremes of every bucket
(spikes stay visible) and fill markers are sampled evenly beyond a cap, with a note saying so.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.parquet as pq
from plotly.subplots import make_subplots

from quotewise import __version__
from quotewise.analytics.attribution import (
    Attribution,
    attribute,
    final_mark,
    run_instrument,
    settlement_price,
)
from quotewise.analytics.metrics import (
    ADVERSE_HORIZON_S,
    MARKOUT_HORIZONS_S,
    Metrics,
    compute_metrics,
    horizon_label,
    max_drawdown,
)
from quotewise.errors import DataError

SUMMARY_FILE = "summary.json"
FILLS_FILE = "fills.parquet"
ORDERS_FILE = "orders.parquet"
EQUITY_FILE = "equity.parquet"
RISK_EVENTS_FILE = "risk_events.parquet"
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
# Runs written before the engine recorded the mid at each fill lack it: read as NaN (zero edge).
OPTIONAL_FILLS_COLUMNS = ("mid",)
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
RISK_EVENTS_COLUMNS = ("ts", "rule", "action", "value", "limit", "detail")

MAX_POINTS = 20_000
MAX_FILLS = 20_000
MAX_RISK_EVENTS = 20_000
TIMELINE_TITLES = (
    "P&L over time",
    "Risk events",
    "Inventory (position) over time",
    "Our quotes vs the market",
)
ANALYSIS_TITLES = (
    "Markouts by side",
    "P&L attribution",
    "Fill sizes",
    "Fills by time of day (UTC)",
)
CHART_TITLES = TIMELINE_TITLES + ANALYSIS_TITLES
CHART_HEIGHT = 1150
ANALYSIS_HEIGHT = 400
NO_RISK_EVENTS = "no risk events"
# Time-of-day bin widths to choose from (seconds): the smallest giving at most TOD_MAX_BINS bins.
TOD_BIN_SECONDS = (60, 300, 900, 1800, 3600)
TOD_MAX_BINS = 48
MAX_SIZE_CATEGORIES = 40
SIZE_BINS = 30
DAY_NS = 86_400 * 1_000_000_000
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
        "attribution",
        "metrics",
    }
)

COLORS = {
    "pnl": "#2f5d8a",
    "position": "#7a4fa3",
    "best_bid": "#9ccfae",
    "best_ask": "#f2aaa6",
    "bid_quote": "#1a7f37",
    "ask_quote": "#cf222e",
    "peak": "#8c959f",
    "drawdown": "rgba(207, 34, 46, 0.18)",
    "all": "#59636e",
}
# Marker symbol and colour per risk action; actions not listed get RISK_DEFAULT_STYLE.
RISK_STYLES = {
    "trim": ("diamond", "#bf8700"),
    "reject": ("x", "#cf222e"),
    "pause": ("square", "#8250df"),
    "resume": ("square-open", "#8250df"),
    "reduce_only": ("triangle-down", "#bc4c00"),
    "halt": ("octagon", "#82071e"),
    "stale": ("circle", "#6e7781"),
    "fresh": ("circle-open", "#6e7781"),
    "throttle": ("hourglass", "#0969da"),
}
RISK_DEFAULT_STYLE = ("star", "#1f2328")
ATTRIBUTION_COLORS = {
    "Spread capture": "#1a7f37",
    "Inventory": "#7a4fa3",
    "of which 5 s adverse selection": "#c297ff",
    "Fees": "#bf8700",
    "Settlement": "#cf222e",
    "Total P&L": "#2f5d8a",
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
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 12px; }
.grid .chart { border: 1px solid #eef1f4; border-radius: 6px; min-width: 0; }
.tables.analysis { margin: 0 0 20px; }
.tables.analysis section { flex: 1 1 480px; }
table.markouts td.num, table.markouts th.num { text-align: right; }
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
    # None when the run has no risk_events.parquet (written only by runs with a risk engine)
    risk_events: pd.DataFrame | None = field(default=None)


def load_run(
    run_dir: str | Path,
    order_columns: tuple[str, ...] = ORDERS_COLUMNS,
    equity_columns: tuple[str, ...] = EQUITY_COLUMNS,
) -> RunData:
    """Read a run directory; raises DataError naming each missing or unreadable file.

    ``order_columns`` and ``equity_columns`` read only part of the two outputs that grow with the
    run's length (a row per order state change, a row per decision): the metrics need few columns.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: run directory not found")
    names = (SUMMARY_FILE, FILLS_FILE, ORDERS_FILE, EQUITY_FILE)
    missing = [name for name in names if not (run_dir / name).is_file()]
    if missing:
        raise DataError(f"{run_dir}: incomplete run directory, missing {', '.join(missing)}")
    risk_path = run_dir / RISK_EVENTS_FILE
    return RunData(
        run_dir=run_dir,
        summary=_read_summary(run_dir / SUMMARY_FILE),
        fills=_read_table(run_dir / FILLS_FILE, FILLS_COLUMNS, OPTIONAL_FILLS_COLUMNS),
        orders=_read_table(run_dir / ORDERS_FILE, order_columns, only=order_columns),
        equity=_read_table(run_dir / EQUITY_FILE, equity_columns, only=equity_columns),
        risk_events=_read_table(risk_path, RISK_EVENTS_COLUMNS) if risk_path.is_file() else None,
    )


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    return summary


def _read_table(
    path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = (), only: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Read a Parquet file; an empty file may lack columns (nothing to describe them), a non-empty one not.

    ``optional`` columns are added as NaN when absent, so readers need not check for them; ``only``
    reads just those columns (strings as categories).
    """
    try:
        if only is None:
            table = pq.read_table(path)
        else:
            present = set(pq.read_schema(path).names)
            table = pq.read_table(path, columns=[c for c in only if c in present], read_dictionary=list(only))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    frame = table.to_pandas()
    absent = [name for name in columns if name not in frame.columns]
    if absent and len(frame):
        raise DataError(f"{path}: missing columns {absent}")
    known = (*columns, *optional)
    return frame.reindex(columns=[*known, *(c for c in frame.columns if c not in known)])


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


def _chart_html(fig: go.Figure, div_id: str, height: int, *, include_plotlyjs: bool) -> str:
    return fig.to_html(
        full_html=False,
        include_plotlyjs=include_plotlyjs,
        div_id=div_id,
        default_height=f"{height}px",
        default_width="100%",
        config={"displaylogo": False, "responsive": True},
    )


def render_report(run: RunData, *, max_points: int = MAX_POINTS, max_fills: int = MAX_FILLS) -> str:
    """The report page as one HTML string (plotly.js inlined once, no external references)."""
    summary = run.summary
    instrument = _instrument(summary)
    attribution = attribute(
        run.fills,
        final_mark(summary, run.equity),
        run.equity,
        run_instrument(summary),
        settlement_price=settlement_price(summary),
    )
    metrics = compute_metrics(run.fills, run.orders, run.equity)
    figure, notes = build_figure(run, max_points=max_points, max_fills=max_fills)
    # the first chart carries the plotly.js bundle; the later ones run after it in document order
    chart = _chart_html(figure, "quotewise-charts", CHART_HEIGHT, include_plotlyjs=True)
    analysis_charts = "".join(
        f'<div class="chart">{_chart_html(fig, f"quotewise-{key}", ANALYSIS_HEIGHT, include_plotlyjs=False)}'
        "</div>"
        for key, fig in build_analysis_figures(run, attribution, metrics).items()
    )
    strategy = str(summary.get("strategy", MISSING))
    symbol = str(instrument.get("symbol", MISSING))
    title = f"Quotewise report: {strategy} on {symbol}"
    analysis_tables = [
        _hint_table("P&L attribution", _attribution_rows(attribution, summary)),
        _hint_table("Metrics", _metric_rows(metrics)),
        _markout_table(metrics),
    ]
    detail_tables = [
        _table("Parameters", _flatten(summary.get("params"))),
        _table("Instrument", _flatten(instrument)),
        _table("Order events by status", _order_status_rows(run.orders)),
        _table("Reject reasons", _reject_rows(run.orders)),
        _table("Risk events by rule and action", _risk_rows(run.risk_events)),
        _table("Data report", _flatten(summary.get("data_report"))),
        _table("Other", _flatten({k: v for k, v in summary.items() if k not in KNOWN_SUMMARY_KEYS})),
    ]
    notes_html = "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
    header = f"""<p class="sub">Backtest run <code>{html.escape(run.run_dir.name)}</code></p>
{_meta_list(run, instrument)}"""
    body = f"""<section class="summary">
<h2>Summary</h2>
{_summary_table(run, instrument, metrics)}
</section>
<div class="tables analysis">
{"".join(analysis_tables)}
</div>
<section class="charts">
<h2>Charts</h2>
{chart}
{notes_html}
</section>
<section class="fills">
<h2>Fills, markouts and attribution</h2>
<div class="grid">
{analysis_charts}
</div>
</section>
<div class="tables">
{"".join(detail_tables)}
</div>"""
    return html_page(title, CSS, header, body, "Times are UTC.")


def html_page(title: str, css: str, header: str, body: str, footnote: str = "") -> str:
    """A self-contained page (every report's): the title and ``header`` on top, ``body``, the footer."""
    footer = f"Generated by Quotewise {html.escape(__version__)}." + (f" {footnote}" if footnote else "")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{css}</style>
</head>
<body>
<main>
<header>
<h1>{html.escape(title)}</h1>
{header}
</header>
{body}
<footer><p>{footer}</p></footer>
</main>
</body>
</html>
"""


def build_figure(
    run: RunData, *, max_points: int = MAX_POINTS, max_fills: int = MAX_FILLS
) -> tuple[go.Figure, list[str]]:
    """P&L (drawdowns shaded), risk events, inventory and quotes-vs-market on one shared UTC time axis,
    plus notes on sampling."""
    instrument = _instrument(run.summary)
    price_fmt = f",.{_step_decimals(instrument.get('tick_size'), 6)}f"
    size_fmt = f",.{_step_decimals(instrument.get('lot_size'), 6)}f"
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=[0.28, 0.1, 0.18, 0.44],
        subplot_titles=TIMELINE_TITLES,
    )
    notes: list[str] = []
    equity = run.equity.sort_values("ts", kind="stable") if len(run.equity) else run.equity
    times = _to_ms(equity["ts"])
    _add_pnl(fig, equity, times, max_points)
    lines = (
        ("position", "Position", 3, {}),
        ("best_bid", "Market best bid", 4, {"width": 1}),
        ("best_ask", "Market best ask", 4, {"width": 1}),
        ("bid_quote", "Our bid", 4, {"width": 1.6}),
        ("ask_quote", "Our ask", 4, {"width": 1.6}),
    )
    for column, name, row, line in lines:
        values = equity[column].to_numpy(dtype=np.float64, na_value=np.nan)
        keep = downsample_indices(values, max_points)
        value_fmt = size_fmt if row == 3 else price_fmt
        fig.add_trace(
            go.Scatter(
                x=times[keep],
                y=values[keep],
                name=name,
                mode="lines",
                line={"shape": "hv", "color": COLORS[column], **line},
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
    notes.append(
        "Shaded area under the P&L: drawdown, the distance below the running P&L peak (dotted line)."
    )
    notes.extend(_add_risk_events(fig, run.risk_events, times))
    notes.extend(_add_fills(fig, run.fills, price_fmt, size_fmt, max_fills))
    _style(fig)
    return fig, notes


def _add_pnl(fig: go.Figure, equity: pd.DataFrame, times: np.ndarray, max_points: int) -> None:
    """P&L with its running peak; the gap between them is filled, so drawdowns read as shaded areas."""
    pnl = equity["pnl"].to_numpy(dtype=np.float64, na_value=np.nan)
    peak = np.fmax.accumulate(pnl) if len(pnl) else pnl
    keep = downsample_indices(pnl, max_points)
    fig.add_trace(
        go.Scatter(
            x=times[keep],
            y=peak[keep],
            name="P&L peak",
            mode="lines",
            line={"color": COLORS["peak"], "width": 1, "dash": "dot"},
            hovertemplate="%{x}<br>P&L peak: %{y:,.4~f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=times[keep],
            y=pnl[keep],
            name="P&L",
            mode="lines",
            line={"color": COLORS["pnl"]},
            fill="tonexty",
            fillcolor=COLORS["drawdown"],
            hovertemplate="%{x}<br>P&L: %{y:,.4~f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    drawdown = max_drawdown(equity)
    if drawdown.trough_ts is not None and drawdown.amount > 0:
        fig.add_annotation(
            x=drawdown.trough_ts / 1e6,
            y=drawdown.trough_pnl,
            text=f"max drawdown {fmt_money(drawdown.amount)}",
            showarrow=True,
            arrowhead=2,
            ax=0,
            ay=28,
            font={"size": 11, "color": COLORS["ask_quote"]},
            bgcolor="rgba(255,255,255,0.8)",
            row=1,
            col=1,
        )


def _add_risk_events(fig: go.Figure, events: pd.DataFrame | None, span_ms: np.ndarray) -> list[str]:
    """Risk actions as markers on their own row of the shared time axis, one trace per action.

    Without events the row still gets an invisible trace over the run's time span: an axis with no data
    falls back to a default range near 1970, which the shared time axis would then have to include.
    """
    if events is None or not len(events):
        if len(span_ms):
            fig.add_trace(
                go.Scatter(
                    x=[span_ms.min(), span_ms.max()],
                    y=[0, 0],
                    mode="markers",
                    name=NO_RISK_EVENTS,
                    marker={"opacity": 0},
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=2,
                col=1,
            )
        low, high = fig.layout.yaxis2.domain
        fig.add_annotation(
            text=NO_RISK_EVENTS if events is not None else f"{NO_RISK_EVENTS} (the run wrote no risk log)",
            xref="paper",
            yref="paper",
            x=0.5,
            y=(low + high) / 2,
            showarrow=False,
            font={"size": 12, "color": "#59636e"},
        )
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, row=2, col=1)
        return []
    events = events.sort_values("ts", kind="stable")
    notes: list[str] = []
    total = len(events)
    if total > MAX_RISK_EVENTS:
        events = events.iloc[np.unique(np.linspace(0, total - 1, MAX_RISK_EVENTS).round().astype(np.int64))]
        notes.append(f"Showing {len(events):,} of {total:,} risk events, sampled evenly in time order.")
    times = _to_ms(events["ts"])
    actions = events["action"].astype(str).to_numpy(dtype=object)
    custom = np.empty((len(events), 4), dtype=object)
    custom[:, 0] = events["rule"].astype(str).to_numpy(dtype=object)
    custom[:, 1] = events["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    custom[:, 2] = events["limit"].to_numpy(dtype=np.float64, na_value=np.nan)
    custom[:, 3] = events["detail"].fillna("").astype(str).to_numpy(dtype=object)
    present = set(actions.tolist())
    order = [a for a in RISK_STYLES if a in present] + sorted(present - set(RISK_STYLES))
    for action in order:
        mask = actions == action
        symbol, color = RISK_STYLES.get(action, RISK_DEFAULT_STYLE)
        fig.add_trace(
            go.Scatter(
                x=times[mask],
                y=actions[mask],
                name=f"risk: {action}",
                mode="markers",
                marker={"symbol": symbol, "color": color, "size": 9, "line": {"width": 1, "color": color}},
                customdata=custom[mask],
                hovertemplate=(
                    "%{x}<br><b>%{y}</b> by rule %{customdata[0]}"
                    "<br>value %{customdata[1]:,.6g}, limit %{customdata[2]:,.6g}"
                    "<br>%{customdata[3]}<extra></extra>"
                ),
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=order, row=2, col=1)
    return notes


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
            xref="x4 domain",
            yref="y4 domain",
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
            row=4,
            col=1,
        )
    return notes


def _style(fig: go.Figure) -> None:
    fig.update_layout(
        template="plotly_white",
        height=CHART_HEIGHT,
        margin={"l": 70, "r": 30, "t": 90, "b": 50},
        hovermode="closest",
        legend={"orientation": "h", "x": 0, "y": 1.04, "xanchor": "left", "yanchor": "bottom"},
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
    fig.update_xaxes(title_text="time (UTC)", row=4, col=1)
    fig.update_yaxes(title_text="P&L", row=1, col=1)
    fig.update_yaxes(title_text="action", row=2, col=1)
    fig.update_yaxes(title_text="position", row=3, col=1, zeroline=True, zerolinecolor="#8c959f")
    fig.update_yaxes(title_text="price", row=4, col=1)


def build_analysis_figures(run: RunData, attribution: Attribution, metrics: Metrics) -> dict[str, go.Figure]:
    """The charts that are not on the time axis, keyed by the suffix of their div id."""
    size_decimals = _step_decimals(_instrument(run.summary).get("lot_size"), 6)
    figures = {
        "markouts": _markout_figure(metrics),
        "attribution": _attribution_figure(attribution),
        "fill-sizes": _fill_size_figure(run.fills, size_decimals),
        "fill-times": _fill_time_figure(run.fills),
    }
    for fig, title in zip(figures.values(), ANALYSIS_TITLES, strict=True):
        fig.update_layout(
            template="plotly_white",
            title={"text": title, "x": 0.02, "xanchor": "left"},
            height=ANALYSIS_HEIGHT,
            margin={"l": 70, "r": 20, "t": 60, "b": 60},
            legend={"orientation": "h", "x": 1, "y": 1.02, "xanchor": "right", "yanchor": "bottom"},
            font={"size": 12},
        )
    return figures


def _empty_note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 13, "color": "#59636e"},
    )


def _markout_figure(metrics: Metrics) -> go.Figure:
    """Average markout against horizon per side: a curve falling below zero means adverse selection."""
    fig = go.Figure()
    labels = [horizon_label(h) for h in MARKOUT_HORIZONS_S]
    counts = [metrics.markout_fills[label] for label in labels]
    series = (
        ("buy", "Buy fills", COLORS["bid_quote"], "solid"),
        ("sell", "Sell fills", COLORS["ask_quote"], "solid"),
        ("all", "All fills", COLORS["all"], "dot"),
    )
    for key, name, color, dash in series:
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=[metrics.markouts_bps[key][label] for label in labels],
                name=name,
                mode="lines+markers",
                line={"color": color, "dash": dash},
                customdata=counts,
                hovertemplate=(
                    f"{name}, %{{x}} after the fill: %{{y:,.2f}} bps"
                    "<br>%{customdata:,} fills measured at this horizon<extra></extra>"
                ),
            )
        )
    if not metrics.fills:
        _empty_note(fig, "No fills in this run.")
    fig.update_xaxes(type="category", title_text="horizon after the fill")
    fig.update_yaxes(title_text="average markout (bps of fill price)", zeroline=True, zerolinecolor="#8c959f")
    return fig


def _settled(attribution: Attribution) -> str:
    """`` + settlement`` where the run settled a resolved market's position."""
    return " + settlement" if attribution.settlement else ""


def _attribution_figure(attribution: Attribution) -> go.Figure:
    """The P&L split as bars; the adverse-selection bar is hatched because it is part of inventory."""
    bars = (
        ("Spread capture", attribution.spread_capture, "Σ side·size·(mid at fill − price)"),
        ("Inventory", attribution.inventory, "final position·final mid − Σ side·size·mid at fill"),
        (
            "of which 5 s adverse selection",
            attribution.adverse_selection,
            "Σ side·size·(mid 5 s later − mid at fill), included in inventory",
        ),
        ("Fees", attribution.fees, "−Σ fee (rebates count positive)"),
        *(
            [("Settlement", attribution.settlement, "final position·(settlement price − final mid)")]
            if attribution.settlement
            else []
        ),
        ("Total P&L", attribution.total, f"spread capture + inventory + fees{_settled(attribution)}"),
    )
    labels = [label for label, _, _ in bars]
    values = [value for _, value, _ in bars]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker={
                "color": [ATTRIBUTION_COLORS[label] for label in labels],
                "pattern": {"shape": ["/" if label.startswith("of which") else "" for label in labels]},
            },
            text=[fmt_money(value, signed=True) for value in values],
            textposition="outside",
            cliponaxis=False,
            customdata=[formula for _, _, formula in bars],
            hovertemplate="<b>%{x}</b>: %{y:,.4~f}<br>%{customdata}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_yaxes(title_text="P&L", zeroline=True, zerolinecolor="#8c959f")
    return fig


def _fill_size_figure(fills: pd.DataFrame, size_decimals: int) -> go.Figure:
    """Fill counts by size, stacked by side: one bar per distinct size when there are few, else bins."""
    fig = go.Figure()
    sizes = fills["size"].to_numpy(dtype=np.float64, na_value=np.nan)
    side = fills["side"].to_numpy(dtype=np.float64, na_value=np.nan)
    known = ~np.isnan(sizes)
    if not known.any():
        _empty_note(fig, "No fills in this run.")
        return fig
    distinct = np.unique(sizes[known])
    categorical = len(distinct) <= MAX_SIZE_CATEGORIES
    edges = distinct if categorical else np.histogram_bin_edges(sizes[known], SIZE_BINS)
    for sign, name, color in ((1, "Buy fills", COLORS["bid_quote"]), (-1, "Sell fills", COLORS["ask_quote"])):
        picked = sizes[known & (side == sign)]
        if categorical:
            counts = np.bincount(np.searchsorted(distinct, picked), minlength=len(distinct))
            x: list[str] | np.ndarray = [f"{value:,.{size_decimals}f}" for value in distinct]
            width = None
        else:
            counts, _ = np.histogram(picked, edges)
            x = (edges[:-1] + edges[1:]) / 2
            width = np.diff(edges)
        fig.add_trace(
            go.Bar(
                x=x,
                y=counts,
                width=width,
                name=name,
                marker={"color": color},
                hovertemplate=f"{name}, size %{{x}}: %{{y:,}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(type="category" if categorical else "linear", title_text="fill size")
    fig.update_yaxes(title_text="fills")
    return fig


def _fill_time_figure(fills: pd.DataFrame) -> go.Figure:
    """Fill counts by UTC time of day, stacked by side; bins as fine as keeps them at most TOD_MAX_BINS."""
    fig = go.Figure()
    if not len(fills):
        _empty_note(fig, "No fills in this run.")
        return fig
    of_day = fills["exch_ts"].to_numpy(dtype=np.int64) % DAY_NS
    side = fills["side"].to_numpy(dtype=np.float64, na_value=np.nan)
    width_s = next(
        w
        for w in TOD_BIN_SECONDS
        if of_day.max() // (w * 1_000_000_000) - of_day.min() // (w * 1_000_000_000) < TOD_MAX_BINS
    )
    width_ns = width_s * 1_000_000_000
    bins = of_day // width_ns
    first = int(bins.min())
    starts_ms = (first + np.arange(int(bins.max()) - first + 1)) * width_ns / 1e6
    for sign, name, color in ((1, "Buy fills", COLORS["bid_quote"]), (-1, "Sell fills", COLORS["ask_quote"])):
        counts = np.bincount(bins[side == sign] - first, minlength=len(starts_ms))
        fig.add_trace(
            go.Bar(
                x=starts_ms,
                y=counts,
                width=width_ns / 1e6,
                offset=0,
                name=name,
                marker={"color": color},
                hovertemplate=f"{name}, %{{x|%H:%M}} UTC bin: %{{y:,}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    label = f"{width_s // 60} min" if width_s < 3600 else "1 h"
    fig.update_xaxes(type="date", tickformat="%H:%M", title_text=f"time of day (UTC), {label} bins")
    fig.update_yaxes(title_text="fills")
    return fig


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


def fmt_money(value: Any, *, signed: bool = False, missing: str = MISSING) -> str:
    """Cents for meaningful amounts, more decimals for small ones so a 0.0042 fee does not read as 0.00."""
    x = _number(value)
    if x is None:
        return missing
    decimals = 2 if x == 0 or abs(x) >= 10 else 4
    if 0 < abs(x) < 0.01:  # coin amounts of an inverse contract: three significant digits
        decimals = min(12, 2 - math.floor(math.log10(abs(x))))
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


def _summary_table(run: RunData, instrument: dict[str, Any], metrics: Metrics) -> str:
    s = run.summary
    size_decimals = _step_decimals(instrument.get("lot_size"), 4)
    price_decimals = _step_decimals(instrument.get("tick_size"), 6)
    fees = _number(s.get("fees"))
    fees_hint = "net rebate" if fees is not None and fees < 0 else "positive = paid, negative = net rebate"
    fills_hint = ""
    if len(run.fills):
        maker = float((run.fills["liquidity"].astype(str) == "maker").mean())
        fills_hint = f"{maker:.0%} maker, {1 - maker:.0%} taker"
    units = s.get("units") if isinstance(s.get("units"), dict) else {}
    money, size = units.get("total_pnl", ""), units.get("traded_volume", "size units")
    quote = units.get("total_pnl_quote", "")
    rows = [
        ("Total P&L", fmt_money(s.get("total_pnl"), signed=True), money),
        ("Fees", fmt_money(s.get("fees")), f"{money}; {fees_hint}" if money else fees_hint),
        ("Max drawdown", fmt_money(metrics.max_drawdown), "largest fall of P&L from a running peak"),
        ("Fills", _fmt_int(s.get("fills")), fills_hint),
        ("Traded volume", _fmt_fixed(s.get("traded_volume"), size_decimals), size),
        ("Traded notional", fmt_money(s.get("traded_notional")), money),
        ("Final position", _fmt_fixed(s.get("final_position"), size_decimals, signed=True), size),
        ("Max |position|", _fmt_fixed(s.get("max_abs_position"), size_decimals), size),
        ("Final mid", _fmt_fixed(s.get("final_mid"), price_decimals), units.get("final_mid", "")),
        ("Orders placed", _fmt_int(s.get("orders_placed")), ""),
        ("Cancels", _fmt_int(s.get("cancels")), ""),
        ("Rejects", _fmt_int(s.get("rejects")), ""),
        ("Events", _fmt_int(s.get("events")), ""),
        ("Events/s", _fmt_int(s.get("events_per_second")), ""),
        ("Wall time", _fmt_duration(s.get("wall_seconds")), ""),
    ]
    if quote and quote != money:  # an inverse contract: the coin figures in the quote currency too
        pnl_quote = fmt_money(s.get("total_pnl_quote"), signed=True)
        notional_quote = fmt_money(s.get("traded_notional_quote"))
        rows[1:1] = [
            (f"Total P&L in {quote}", pnl_quote, "at the final mid"),
            (f"Traded notional in {quote}", notional_quote, "size x contract size"),
        ]
    return f"<table>{_hint_rows(rows)}</table>"


def _hint_rows(rows: tuple[tuple[str, str, str], ...] | list[tuple[str, str, str]]) -> str:
    return "".join(
        f'<tr><th>{html.escape(label)}</th><td class="num">{html.escape(value)}</td>'
        f'<td class="hint">{html.escape(hint)}</td></tr>'
        for label, value, hint in rows
    )


def _hint_table(title: str, rows: list[tuple[str, str, str]]) -> str:
    """A titled label / value / explanation table: every number on the page says what it is."""
    return f"<section><h2>{html.escape(title)}</h2><table>{_hint_rows(rows)}</table></section>"


def _fmt_pct(value: Any, decimals: int = 1) -> str:
    """A fraction as a percentage: 0.125 -> 12.5 %."""
    x = _number(value)
    return MISSING if x is None else f"{100 * x:,.{decimals}f} %"


def _fmt_time(iso: str | None) -> str:
    stamp = _timestamp(iso)
    return MISSING if stamp is None else f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _attribution_rows(attribution: Attribution, summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The P&L split, with its check against the engine's total and the adverse-selection diagnostic."""
    engine_total = _number(summary.get("total_pnl"))
    parts = f"spread capture + inventory + fees{_settled(attribution)}"
    if engine_total is None:
        check = parts
    else:
        gap = attribution.total - engine_total
        check = f"{parts}; engine total P&L {fmt_money(engine_total, signed=True)}, difference {gap:.3g}"
    rows = [
        (
            "Spread capture",
            fmt_money(attribution.spread_capture, signed=True),
            "Σ side·size·(mid at fill − price)",
        ),
        (
            "Inventory",
            fmt_money(attribution.inventory, signed=True),
            "final position·final mid − Σ side·size·mid at fill: the mid's moves on what we held",
        ),
        (
            f"…of which {attribution.adverse_horizon_s} s adverse selection",
            fmt_money(attribution.adverse_selection, signed=True),
            f"Σ side·size·(mid {attribution.adverse_horizon_s} s later − mid at fill); part of inventory, "
            "negative = the market moved against our fills",
        ),
        ("Fees", fmt_money(attribution.fees, signed=True), "−Σ fee: rebates count positive"),
    ]
    settled = summary.get("settlement")
    if isinstance(settled, dict):
        rows.append(
            (
                "Settlement",
                fmt_money(attribution.settlement, signed=True),
                f"final position·(settlement price {settled.get('price')} − final mid), from "
                f"{settled.get('source', 'the run')}",
            )
        )
    rows.append(("Total P&L", fmt_money(attribution.total, signed=True), check))
    if attribution.fills_without_mid:
        rows.append(
            (
                "Fills without a mid",
                f"{attribution.fills_without_mid:,}",
                "no mid recorded at the fill: edge counted as zero, all of it under inventory",
            )
        )
    return rows


def _metric_rows(m: Metrics) -> list[tuple[str, str, str]]:
    """Each metric with the formula it comes from (docs/report.md has the details)."""
    horizon = f"{ADVERSE_HORIZON_S} s"
    return [
        ("Fill rate", _fmt_pct(m.fill_rate), f"fills / orders placed ({m.fills:,} / {m.orders_placed:,})"),
        (
            "Spread capture",
            _fmt_pct(m.spread_capture_pct / 100),
            f"mean over {m.spread_capture_fills:,} fills of side·(mid at fill − price) / half quoted spread",
        ),
        (
            "Inventory turnover",
            _fmt_fixed(m.inventory_turnover, 1),
            f"traded volume / time-weighted mean |position| ({_fmt_fixed(m.mean_abs_position, 4)})",
        ),
        (
            "Adverse-selection ratio",
            _fmt_pct(m.adverse_selection_ratio),
            f"share of fills whose {horizon} markout is negative",
        ),
        (
            "Sharpe (annualised)",
            _fmt_fixed(m.sharpe, 2),
            f"mean / std of {m.minutes:,} one-minute P&L changes × √525600 (24/7 year)",
        ),
        ("Win rate", _fmt_pct(m.win_rate), "minutes with P&L up / minutes with P&L changed"),
        ("VaR 95 % (1 min)", fmt_money(m.var_95), "minus the 5th percentile of one-minute P&L changes"),
        (
            "Max drawdown",
            fmt_money(m.max_drawdown),
            f"peak {_fmt_time(m.max_drawdown_peak)} → trough {_fmt_time(m.max_drawdown_trough)}",
        ),
    ]


def _markout_table(m: Metrics) -> str:
    """Average markouts (bps of fill price) by side and horizon, with the fills each horizon covers."""
    labels = [horizon_label(h) for h in MARKOUT_HORIZONS_S]
    head = "".join(f'<th class="num">{html.escape(label)}</th>' for label in labels)
    rows = [
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f'<td class="num">{_fmt_fixed(m.markouts_bps[key][label], 2)}</td>' for label in labels)
        + "</tr>"
        for key, name in (("buy", "Buy"), ("sell", "Sell"), ("all", "All"))
    ]
    counts = "".join(f'<td class="num">{m.markout_fills[label]:,}</td>' for label in labels)
    note = (
        '<p class="note">Markout = side·(mid at t + h − fill price) / fill price × 10⁴; fills whose horizon '
        "ends after the data are left out. Negative = the market moved against the fill.</p>"
    )
    return (
        f'<section><h2>Markouts (bps)</h2><table class="markouts"><tr><th>side</th>{head}</tr>'
        f"{''.join(rows)}<tr><th>fills measured</th>{counts}</tr></table>{note}</section>"
    )


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


def _risk_rows(events: pd.DataFrame | None) -> list[tuple[str, str, bool]]:
    """How often each rule took each action: the first place to look when a run stopped quoting."""
    if events is None or not len(events):
        return []
    counts = events.groupby([events["rule"].astype(str), events["action"].astype(str)]).size()
    return [(f"{rule} · {action}", f"{count:,}", True) for (rule, action), count in counts.items()]


def _table(title: str, rows: list[tuple[str, str, bool]]) -> str:
    """A titled key/value table, or nothing when there is nothing to show."""
    if not rows:
        return ""
    cells = ((key, ' class="num"' if numeric else "", text) for key, text, numeric in rows)
    body = "".join(f"<tr><th>{html.escape(k)}</th><td{cls}>{html.escape(t)}</td></tr>" for k, cls, t in cells)
    return f"<section><h2>{html.escape(title)}</h2><table>{body}</table></section>"
