"""summarize_run: attribution and metrics land in summary.json, everything else stays as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from backtest_runs import synthetic_run
from sample_runs import summary, write_tiny_run

from quotewise.analytics.analyze import summarize_run
from quotewise.errors import DataError


def _strict_json(path: Path) -> dict[str, Any]:
    """Parse rejecting NaN/Infinity tokens, which other JSON readers refuse."""

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_summary_gains_attribution_and_metrics(tmp_path: Path) -> None:
    run_dir = write_tiny_run(tmp_path / "run")

    returned = summarize_run(run_dir)

    written = _strict_json(run_dir / "summary.json")
    assert written == returned
    assert {k: written[k] for k in summary()} == summary()
    assert written["attribution"]["total"] == pytest.approx(0.99)
    assert written["attribution"]["spread_capture"] == pytest.approx(0.3)
    assert written["metrics"]["fill_rate"] == pytest.approx(0.6)
    assert written["metrics"]["sharpe"] is None  # one minute of data: undefined, stored as null
    assert written["metrics"]["markouts_bps"]["buy"]["1s"] == pytest.approx(15.005005, rel=1e-6)


def test_summarize_twice_gives_the_same_file(tmp_path: Path) -> None:
    run_dir = write_tiny_run(tmp_path / "run")
    summarize_run(run_dir)
    first = (run_dir / "summary.json").read_text()

    summarize_run(run_dir)

    assert (run_dir / "summary.json").read_text() == first


def test_missing_run_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run directory not found"):
        summarize_run(tmp_path / "nope")


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_run(tmp_path_factory.mktemp("synthetic"))


def test_real_backtest_summary(synthetic_dir: Path) -> None:
    before = json.loads((synthetic_dir / "summary.json").read_text())

    summary = summarize_run(synthetic_dir)

    assert {k: summary[k] for k in before} == before
    metrics = summary["metrics"]
    assert metrics["fills"] == before["fills"]
    assert metrics["orders_placed"] == before["orders_placed"]
    assert metrics["fill_rate"] == pytest.approx(before["fills"] / before["orders_placed"])
    assert metrics["traded_volume"] == pytest.approx(before["traded_volume"])
    assert metrics["minutes"] >= 3  # the synthetic run spans a bit over three minutes
    assert 0 <= metrics["adverse_selection_ratio"] <= 1
    assert metrics["max_drawdown"] >= 0
    assert summary["attribution"]["total"] == pytest.approx(before["total_pnl"], rel=1e-9)
