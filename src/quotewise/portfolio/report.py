"""The book's HTML page: each instrument's P&L and the book total on one time axis, and the net
exposure against the hedge band. Self-contained (plotly.js inlined), like the single-run report."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def _figure(book: pd.DataFrame, exposure: pd.DataFrame | None, band: float | None) -> go.Figure:
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("P&L by instrument and book total", "Net exposure (hedge units) and the band"),
    )
    times = pd.to_datetime(book["ts"], unit="ns", utc=True)
    for column in book.columns:
        if column.startswith("pnl:"):
            name = column.split(":", 1)[1]
            width = 3 if name == "total" else 1.5
            fig.add_trace(go.Scatter(x=times, y=book[column], name=name, line={"width": width}), row=1, col=1)
    if exposure is not None and len(exposure):
        t = pd.to_datetime(exposure["ts"], unit="ns", utc=True)
        fig.add_trace(go.Scatter(x=t, y=exposure["net"], name="net after fill", mode="lines"), row=2, col=1)
        fig.add_trace(
            go.Scatter(x=t, y=exposure["net_after_hedge"], name="net after hedge", mode="lines"), row=2, col=1
        )
        if band is not None:
            for level in (band, -band):
                fig.add_hline(y=level, line={"dash": "dash", "color": "grey"}, row=2, col=1)
    fig.update_layout(height=800, template="plotly_white", hovermode="x unified")
    return fig


def write_portfolio_report(
    out: Path, summary: dict[str, Any], book: pd.DataFrame, exposure: pd.DataFrame | None
) -> Path:
    """Write ``out/report.html``: the charts, the attribution, the hedge's exposure and the risk."""
    hedge = summary.get("hedge") or {}
    band = (hedge.get("exposure") or {}).get("band")
    chart = _figure(book, exposure, band).to_html(full_html=False, include_plotlyjs=True)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:,.6g}</td></tr>"
        for k, v in summary["attribution"].items()
        if isinstance(v, int | float)
    )
    per_instrument = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{s.get('total_pnl', 0):,.6g}</td><td>{s.get('fills', 0)}</td>"
        f"<td><a href='{html.escape(name)}/report.html'>report</a></td></tr>"
        for name, s in summary["instruments"].items()
    )
    halted = summary.get("halted")
    halt_line = (
        f"<p><b>Halted</b> at {html.escape(str(halted['time']))}: {html.escape(str(halted['rule']))} "
        f"{halted['value']:,.6g} over its limit {halted['limit']:,.6g}; every leg and the hedge were closed "
        "by market orders then, and the book held no position afterwards.</p>"
        if halted
        else ""
    )
    windows = summary.get("limit_windows") or []
    what = {"pause": "paused its quoting", "reduce": "quoted only the sides that reduce its positions"}
    halt_line += "".join(
        f"<p><b>{html.escape(w['action'].capitalize())}</b> from {html.escape(str(w['time']))} for "
        f"{(w['end'] - w['start']) / 1e9:g} s: {html.escape(str(w['rule']))} {w['value']:,.6g} over its "
        f"limit {w['limit']:,.6g}; the book {what[w['action']]}"
        f"{' (the last window allowed: still beyond the limit after it)' if w.get('capped') else ''}.</p>"
        for w in windows
    )
    details = html.escape(json.dumps({"hedge": summary.get("hedge"), "risk": summary.get("risk")}, indent=2))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Portfolio backtest</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 10px}}</style></head><body>
<h1>Portfolio backtest: P&amp;L {summary["total_pnl"]:,.6g} {html.escape(str(summary.get("currency")))}</h1>
{halt_line}
<h2>Attribution (book currency)</h2><table>{rows}</table>
<h2>Instruments</h2><table><tr><th>instrument</th><th>P&amp;L</th><th>fills</th><th></th></tr>{per_instrument}</table>
{chart}
<h2>Hedge and risk</h2><pre>{details}</pre></body></html>"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
