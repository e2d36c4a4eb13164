"""``mm sweep``'s report: the heatmap shows the mean of the table's rows of each cell, the best run
of each data file is marked, and a heatmap over a setting the runs do not have is refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from quotewise.cli import app
from quotewise.errors import ConfigError
from quotewise.sweep import TABLE_FILE, load_sweep
from quotewise.sweep_report import (
    averaged_over,
    best_per_data,
    heatmap_axes,
    heatmap_figure,
    heatmap_matrix,
)

SWEEP = {
    "runs": [
        {"name": "tight", "strategy": "symmetric", "params": {"spread": "1tick"}},
        {"name": "wide", "strategy": "symmetric", "params": {"spread": "3ticks"}},
    ],
    "grid": {"max_pos": [1, 4], "interval": [100, 1000]},
    "data": ["synthetic:15000", "synthetic:20000"],
}


def test_the_report_heatmap_is_the_mean_of_each_cells_rows(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(SWEEP))
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["sweep", str(file), "--out", str(out), "--quiet"])
    assert done.exit_code == 0, done.output
    report = out / "report.html"
    assert f"report: {report}" in " ".join(done.output.split()) and "Best: " in done.output
    page = report.read_text()
    assert "<script src=" not in page and page.count("Plotly.newPlot") == 1  # offline, one chart

    table = pd.read_parquet(out / TABLE_FILE)
    # the default axes are the grid's first two; each cell averages 2 runs x 2 data files
    figure = heatmap_figure(table, "max_pos", "interval", "total_pnl")
    cells = figure.data[0]
    settings_of = [json.loads(s) for s in table["settings"]]
    for i, interval in enumerate(cells.y):
        for j, max_pos in enumerate(cells.x):
            rows = [
                k
                for k, s in enumerate(settings_of)
                if str(s["max_pos"]) == max_pos and str(s["interval"]) == interval
            ]
            assert len(rows) == 4
            assert cells.z[i][j] == pytest.approx(table["total_pnl"].iloc[rows].mean())
    assert "2 data files" in figure.layout.title.text and "spread" in figure.layout.title.text

    best = best_per_data(table, "total_pnl")
    for data, label in best.items():
        assert table.loc[label, "total_pnl"] == table.loc[table["data"] == data, "total_pnl"].max()
    assert page.count("<tr class=best>") == 2


def test_a_heatmap_over_a_setting_the_runs_lack_is_refused_before_running(tmp_path: Path) -> None:
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(SWEEP))
    out = tmp_path / "never"
    done = CliRunner().invoke(app, ["sweep", str(file), "--out", str(out), "--heatmap", "max_pos,sprd"])
    assert done.exit_code == 2 and not out.exists()
    assert done.output.strip().count("\n") == 0 and "sprd is not a setting of every run" in done.output
    done = CliRunner().invoke(app, ["sweep", str(file), "--out", str(out), "--metric", "pnl"])
    assert done.exit_code == 2 and "unknown metric 'pnl'" in done.output and not out.exists()

    runs = load_sweep(file)
    assert heatmap_axes(runs, None, ["max_pos", "interval"]) == ("max_pos", "interval")
    assert heatmap_axes(runs, None, ["max_pos"]) is None
    assert heatmap_axes(runs, "spread, max_pos", []) == ("spread", "max_pos")
    for bad in ("max_pos", "max_pos,max_pos", "a,b,c"):
        with pytest.raises(ConfigError, match="--heatmap"):
            heatmap_axes(runs, bad, [])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 3]), st.sampled_from(["a", "b"]), st.sampled_from(["d1", "d2"])),
        min_size=1,
        max_size=30,
    ),
    st.data(),
)
def test_each_cell_is_the_mean_of_the_rows_with_its_two_settings(rows: list, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.floats(-1e6, 1e6), min_size=len(rows), max_size=len(rows)))
    table = pd.DataFrame(
        {
            "settings": [json.dumps({"x": x, "y": y}) for x, y, _ in rows],
            "data": [d for _, _, d in rows],
            "strategy": "skew",
            "total_pnl": values,
        }
    )
    matrix = heatmap_matrix(table, "x", "y", "total_pnl")
    for y in matrix.index:
        for x in matrix.columns:
            chosen = [v for (rx, ry, _), v in zip(rows, values, strict=True) if str(rx) == x and ry == y]
            if chosen:
                assert matrix.loc[y, x] == pytest.approx(np.mean(chosen), abs=1e-6)
            else:
                assert np.isnan(matrix.loc[y, x])
    assert ("2 data files" in averaged_over(table, "x", "y")) == (table["data"].nunique() == 2)
