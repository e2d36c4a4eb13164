"""Many prediction markets in one run: the same strategy on each market of a top-of-book table, each
settled at its outcome, with per-market and total results, the calibration of the market's own
prices (Brier score), and one page that shows them all (``markets.html``) beside each market's own
report."""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from quotewise.backtest.source import DataSource, from_event_data
from quotewise.data.polymarket_quotes import Event, Market, event_prices, read_market

MARKETS_CSV = "markets.csv"
MARKETS_HTML = "markets.html"
TOTALS_JSON = "markets.json"
EVENTS_CSV = "events.csv"
PARTS = ("spread_capture", "inventory", "fees", "settlement")


def run_markets(
    path: str | Path,
    markets: list[Market],
    backtest: Callable[[DataSource, Path], Any],
    out: Path,
    progress: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """``backtest(source, run_dir)`` on each market (outputs in ``out/<slug>/``, summary.json with its
    attribution), then the per-market table, the totals and the overview page; return the totals with
    the rows."""
    rows = []
    for i, market in enumerate(markets):
        data = read_market(path, market)
        run_dir = out / market.slug
        backtest(from_event_data(data, f"{path}#{market.slug}"), run_dir)
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        rows.append(_row(market, summary, data.report))
        if progress is not None:
            progress(i + 1, market.slug)
    totals = _totals(rows)
    _write(out, rows, totals)
    return {"totals": totals, "markets": rows}


def run_events(
    path: str | Path,
    events: list[Event],
    backtest: Callable[[DataSource, Path], Any],
    out: Path,
    progress: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """Every outcome market of each negative-risk event run as in :func:`run_markets`, then per event:
    its P&L, how its final positions settle whichever outcome wins (a position of q_k YES shares in
    outcome k pays q_k if k wins and nothing else does, so the worst case is min q_k and the part
    every outcome pays, the full sets, is that minimum), and how coherent its prices were."""
    markets = [m for e in events for m in e.markets]
    result = run_markets(path, markets, backtest, out, progress)
    by_slug = {r["market"]: r for r in result["markets"]}
    rows = [_event_row(path, e, [by_slug[m.slug] for m in e.markets]) for e in events]
    with (out / EVENTS_CSV).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result["events"] = rows
    result["totals"]["events"] = len(rows)
    (out / TOTALS_JSON).write_text(json.dumps(result, indent=2), encoding="utf-8")
    (out / MARKETS_HTML).write_text(_page(result["markets"], result["totals"], rows), encoding="utf-8")
    return result


def _event_row(path: str | Path, event: Event, rows: list[dict[str, Any]]) -> dict[str, Any]:
    positions = [r["final_position"] for r in rows]
    return {
        "event": event.question,
        "outcomes": len(rows),
        "winner": event.winner,
        "fills": sum(r["fills"] for r in rows),
        "total_pnl": math.fsum(r["total_pnl"] for r in rows),
        "settlement": math.fsum(r["settlement"] for r in rows),
        "worst_settlement": min(positions),
        "best_settlement": max(positions),
        **event_prices(path, event),
    }


def _row(market: Market, summary: dict[str, Any], data_report: dict[str, Any]) -> dict[str, Any]:
    attribution = summary.get("attribution") or {}
    settled = summary.get("settlement") or {}
    return {
        "market": market.slug,
        "question": market.question,
        "outcome": market.outcome,
        "snapshots": market.snapshots,
        "fills": summary["fills"],
        "final_position": summary["final_position"],
        "final_mid": summary["final_mid"],
        "settlement_price": settled.get("price"),
        **{part: attribution.get(part, 0.0) for part in PARTS},
        "total_pnl": summary["total_pnl"],
        "brier": data_report.get("brier"),
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums of the money and fills; the Brier score averaged over the markets that have one."""
    briers = [r["brier"] for r in rows if r["brier"] is not None]
    totals: dict[str, Any] = {
        "markets": len(rows),
        "fills": sum(r["fills"] for r in rows),
        **{part: math.fsum(r[part] for r in rows) for part in PARTS},
        "total_pnl": math.fsum(r["total_pnl"] for r in rows),
        "brier": sum(briers) / len(briers) if briers else None,
        "markets_traded": sum(1 for r in rows if r["fills"]),
    }
    return totals


def _write(out: Path, rows: list[dict[str, Any]], totals: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / MARKETS_CSV).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / TOTALS_JSON).write_text(
        json.dumps({"totals": totals, "markets": rows}, indent=2), encoding="utf-8"
    )
    (out / MARKETS_HTML).write_text(_page(rows, totals), encoding="utf-8")


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _page(
    rows: list[dict[str, Any]], totals: dict[str, Any], events: list[dict[str, Any]] | None = None
) -> str:
    """Per-market P&L split as stacked bars, each market's Brier score, the table (with a link to
    each market's own report), and with negative-risk events their table."""
    names = [r["market"] for r in rows]
    split = go.Figure(
        [go.Bar(name=part.replace("_", " "), x=names, y=[r[part] for r in rows]) for part in PARTS]
    )
    split.update_layout(barmode="relative", title="P&L by market: spread + inventory + fees + settlement")
    calibration = go.Figure(go.Bar(x=names, y=[r["brier"] for r in rows], marker_color="#7a4fa3"))
    calibration.update_layout(title="Brier score of each market's mid against its outcome (0 is perfect)")
    head = "".join(f"<th>{k}</th>" for k in ("market", "outcome", "fills", *PARTS, "total_pnl", "brier"))
    body = "".join(
        f'<tr><td><a href="{r["market"]}/report.html">{r["market"]}</a></td><td>{r["outcome"]}</td>'
        f"<td>{r['fills']}</td>"
        + "".join(f"<td>{r[p]:+.4f}</td>" for p in (*PARTS, "total_pnl"))
        + f"<td>{_score(r['brier'])}</td></tr>"
        for r in rows
    )
    brier = _score(totals["brier"])
    summary = (
        f"<p>{totals['markets']} markets, {totals['markets_traded']} traded, {totals['fills']} fills; "
        f"total P&L {totals['total_pnl']:+.4f} = spread {totals['spread_capture']:+.4f} + inventory "
        f"{totals['inventory']:+.4f} + fees {totals['fees']:+.4f} + settlement {totals['settlement']:+.4f}; "
        f"mean Brier score {brier}</p>"
    )
    charts = split.to_html(full_html=False, include_plotlyjs=True) + calibration.to_html(
        full_html=False, include_plotlyjs=False
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Quotewise: many markets</title></head>"
        f"<body><h1>Many markets</h1>{summary}{charts}{_events_table(events or [])}"
        f"<table border='1' cellspacing='0' cellpadding='3'><tr>{head}</tr>{body}</table></body></html>"
    )


def _events_table(events: list[dict[str, Any]]) -> str:
    if not events:
        return ""
    keys = ("event", "outcomes", "winner", "fills", "total_pnl", "worst_settlement", "mean_sum_of_mids")

    def cell(value: Any) -> str:
        return f"{value:+.4f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{cell(e[k])}</td>" for k in keys) + "</tr>" for e in events)
    return (
        "<h2>Negative-risk events</h2><p>One outcome of each pays 1. Worst settlement: what the final "
        "positions pay if the least-held outcome wins; sum of mids: the outcomes' YES mids added up "
        "(1 when the prices are coherent).</p>"
        f"<table border='1' cellspacing='0' cellpadding='3'><tr>{head}</tr>{body}</table>"
    )
