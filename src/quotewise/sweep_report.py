"""The HTML pages of ``mm sweep`` and ``mm tune``: one file each, offline like a backtest's report.

The sweep's page ranks its runs by a metric, marks the best run on each data file and shows the mean
of the metric over two settings as a heatmap. The tuner's page shows the objective trial by trial,
the top trials' fit and held-out scores side by side (overfitting shows as a fall from one to the
other) and each searched setting against the objective. plotly.js is inlined once, in the first chart.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from quotewise.analytics.report import CSS, _chart_html, html_page
from quotewise.errors import ConfigError
from quotewise.sweep import ROW_FIGURES, SweepRun

REPORT_FILE = "report.html"
DEFAULT_METRIC = "total_pnl"
HEATMAP_HEIGHT = 520
CHART_HEIGHT = 420
PAGE_CSS = CSS + "tr.best td { background: #dafbe1; font-weight: 600; }\n"


def check_metric(metric: str) -> None:
    """A metric a sweep's table has, or a one-line error listing those it has."""
    if metric not in ROW_FIGURES:
        raise ConfigError(f"unknown metric {metric!r}; a sweep's runs have {', '.join(ROW_FIGURES)}")


def heatmap_axes(runs: list[SweepRun], heatmap: str | None, grid: list[str]) -> tuple[str, str] | None:
    """The two settings of the heatmap: ``X,Y`` as given (each a setting every run has), else the
    first two of the grid, else none."""
    if heatmap is None:
        return (grid[0], grid[1]) if len(grid) >= 2 else None
    names = [n.strip() for n in heatmap.split(",")]
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise ConfigError(f"--heatmap {heatmap!r}: give two different settings, X,Y")
    common = set.intersection(*(set(r.settings) for r in runs)) if runs else set()
    unknown = [n for n in names if n not in common]
    if unknown:
        raise ConfigError(
            f"--heatmap: {', '.join(unknown)} is not a setting of every run; "
            f"the runs share {', '.join(sorted(common)) or 'no setting'}"
        )
    return names[0], names[1]


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def settings_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The runs' settings, one column each, every value as a label (``2``, ``"1tick"`` -> ``1tick``)."""
    parsed = [json.loads(s) for s in table["settings"]]
    return pd.DataFrame([{k: _label(v) for k, v in p.items()} for p in parsed], index=table.index)


def heatmap_matrix(table: pd.DataFrame, x: str, y: str, metric: str) -> pd.DataFrame:
    """Mean of ``metric`` over the rows of each (``y``, ``x``) pair of settings: rows the values of
    ``y``, columns those of ``x``, each in the order they first appear; NaN where no run has the pair."""
    settings = settings_frame(table)
    frame = pd.DataFrame(
        {"x": settings[x], "y": settings[y], "value": pd.to_numeric(table[metric], errors="coerce")}
    )
    means = frame.groupby(["y", "x"], sort=False)["value"].mean()
    return means.unstack("x").reindex(index=frame["y"].unique(), columns=frame["x"].unique())


def averaged_over(table: pd.DataFrame, x: str, y: str) -> list[str]:
    """What each heatmap cell averages over besides its two settings: data files, strategies, and
    the other settings that vary."""
    settings = settings_frame(table)
    parts = []
    if table["data"].nunique() > 1:
        parts.append(f"{table['data'].nunique()} data files")
    if table["strategy"].nunique() > 1:
        parts.append(f"{table['strategy'].nunique()} strategies")
    others = [c for c in settings.columns if c not in (x, y) and settings[c].nunique(dropna=False) > 1]
    parts.extend(others)
    return parts


def heatmap_figure(table: pd.DataFrame, x: str, y: str, metric: str) -> go.Figure:
    matrix = heatmap_matrix(table, x, y, metric)
    over = averaged_over(table, x, y)
    title = f"{metric} by {x} and {y}" + (f" (mean over {', '.join(over)})" if over else "")
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=[str(c) for c in matrix.columns],
            y=[str(i) for i in matrix.index],
            colorscale="RdYlGn",
            colorbar={"title": {"text": metric}},
            text=[[_fmt(v) for v in row] for row in matrix.to_numpy()],
            texttemplate="%{text}",
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>{metric}=%{{z:.6g}}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        template="plotly_white",
        xaxis={"title": x, "type": "category"},
        yaxis={"title": y, "type": "category"},
    )
    return fig


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return html.escape(str(value))


def best_per_data(table: pd.DataFrame, metric: str) -> pd.Series:
    """The row label of the run with the highest ``metric`` on each data file (files where no run
    defines it are left out)."""
    values = pd.to_numeric(table[metric], errors="coerce").dropna()
    return values.groupby(table.loc[values.index, "data"], sort=False).idxmax()


def ranked(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The runs by ``metric``, highest first, undefined last, ties in the file's order."""
    key = pd.to_numeric(table[metric], errors="coerce")
    return table.assign(_key=key).sort_values("_key", ascending=False, kind="stable", na_position="last")


def _runs_table(table: pd.DataFrame, metric: str) -> str:
    best = set(best_per_data(table, metric))
    columns = ["name", "data", "strategy", "settings", metric, *(c for c in ROW_FIGURES if c != metric)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for label, row in ranked(table, metric).iterrows():
        cells = "".join(
            f'<td class="num">{_fmt(row.get(c))}</td>' if c in ROW_FIGURES else f"<td>{_fmt(row.get(c))}</td>"
            for c in columns
        )
        rows.append(f"<tr{' class=best' if label in best else ''}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _page(title: str, sub: str, sections: list[str]) -> str:
    return html_page(title, PAGE_CSS, f'<p class="sub">{sub}</p>', "".join(sections))


def _charts(figures: list[tuple[str, go.Figure, int]]) -> list[str]:
    """Each figure's div; the first carries plotly.js, the later run after it in document order."""
    return [
        f'<div class="chart">{_chart_html(fig, key, height, include_plotlyjs=i == 0)}</div>'
        for i, (key, fig, height) in enumerate(figures)
    ]


def render_sweep_report(table: pd.DataFrame, metric: str, heatmap: tuple[str, str] | None) -> str:
    """The sweep's page: the heatmap (when there are two settings to show), then every run ranked."""
    check_metric(metric)
    sections = []
    if heatmap is not None:
        figure = heatmap_figure(table, *heatmap, metric)
        chart = _charts([("quotewise-heatmap", figure, HEATMAP_HEIGHT)])[0]
        sections.append(f"<section><h2>{html.escape(metric)} over two settings</h2>{chart}</section>")
    sections.append(
        f"<section><h2>Runs by {html.escape(metric)}, highest first</h2>{_runs_table(table, metric)}"
        '<p class="note">Highlighted: the best run on each data file.</p></section>'
    )
    sub = f"{len(table)} runs on {table['data'].nunique()} data file(s), ranked by {html.escape(metric)}"
    return _page("Quotewise sweep", sub, sections)


def write_sweep_report(
    out: Path, table: pd.DataFrame, metric: str = DEFAULT_METRIC, heatmap: tuple[str, str] | None = None
) -> Path:
    """Write ``out/report.html`` for the sweep's table and return its path."""
    path = out / REPORT_FILE
    path.write_text(render_sweep_report(table, metric, heatmap), encoding="utf-8")
    return path


def _progress_figure(trials: pd.DataFrame) -> go.Figure:
    done = trials.dropna(subset=["fit_objective"])
    fig = go.Figure()
    fig.add_scatter(x=done["number"], y=done["fit_objective"], mode="markers", name="trial (fit)")
    fig.add_scatter(
        x=done["number"], y=done["fit_objective"].cummax(), mode="lines", name="best so far", line_shape="hv"
    )
    fig.update_layout(
        title="Objective on the fit part, by trial",
        template="plotly_white",
        xaxis_title="trial",
        yaxis_title="objective",
    )
    return fig


def _fit_vs_held_out_figure(trials: pd.DataFrame) -> go.Figure:
    top = trials.dropna(subset=["held_out_objective"]).sort_values(
        ["fit_objective", "number"], ascending=[False, True]
    )
    labels = [f"#{n}" for n in top["number"]]
    fig = go.Figure()
    fig.add_bar(x=labels, y=top["fit_objective"], name="fit")
    fig.add_bar(x=labels, y=top["held_out_objective"], name="held out")
    fig.update_layout(
        title="Top trials: fit vs held-out objective",
        template="plotly_white",
        barmode="group",
        xaxis={"title": "trial (best fit first)", "type": "category"},
        yaxis_title="objective",
    )
    return fig


def _params_figure(trials: pd.DataFrame, params: list[str]) -> go.Figure:
    fig = make_subplots(rows=1, cols=max(len(params), 1), shared_yaxes=True, subplot_titles=params)
    for i, name in enumerate(params, 1):
        fig.add_scatter(
            x=trials[f"params_{name}"],
            y=trials["fit_objective"],
            mode="markers",
            name=name,
            text=[f"#{n}" for n in trials["number"]],
            showlegend=False,
            row=1,
            col=i,
        )
    fig.update_layout(title="Each searched setting against the fit objective", template="plotly_white")
    fig.update_yaxes(title_text="objective", row=1, col=1)
    return fig


def _best_table(best: dict[str, Any]) -> str:
    rows = [
        ("trial", best["trial"]),
        *((f"setting {k}", v) for k, v in best["params"].items()),
        ("fit objective", best["fit_objective"]),
        ("held-out objective", best["held_out_objective"]),
        ("objective", " + ".join(f"{w:g} × {k}" for k, w in best["objective"].items())),
        ("fit data", ", ".join(best["fit_data"])),
        ("held-out data", ", ".join(best["held_out_data"])),
    ]
    body = "".join(f'<tr><th>{html.escape(k)}</th><td class="num">{_fmt(v)}</td></tr>' for k, v in rows)
    return f"<section><h2>Best trial</h2><table>{body}</table></section>"


def render_tune_report(trials: pd.DataFrame, best: dict[str, Any]) -> str:
    """The tuner's page: the best trial, the search's progress, fit against held out, the settings."""
    params = list(best["params"])
    charts = _charts(
        [
            ("quotewise-trials", _progress_figure(trials), CHART_HEIGHT),
            ("quotewise-held-out", _fit_vs_held_out_figure(trials), CHART_HEIGHT),
            ("quotewise-params", _params_figure(trials, params), CHART_HEIGHT),
        ]
    )
    sections = [
        _best_table(best),
        f'<section><h2>Search</h2><div class="grid">{"".join(charts)}</div></section>',
    ]
    sub = f"{len(trials)} trials of {html.escape(best['strategy'])} (Optuna TPE, seed {best['seed']})"
    return _page("Quotewise tune", sub, sections)


def write_tune_report(out: Path, trials: pd.DataFrame, best: dict[str, Any]) -> Path:
    """Write ``out/report.html`` for the tuner's trials and return its path."""
    path = out / REPORT_FILE
    path.write_text(render_tune_report(trials, best), encoding="utf-8")
    return path
