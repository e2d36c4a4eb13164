"""``mm tune``: a TPE search on the earlier data, scored on the later; the same seed gives the same
search, a bad search space is refused in one line, and a window of one file opens on its book."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import quotewise.api as qw
from quotewise.backtest.source import book_snapshot, time_window
from quotewise.cli import app
from quotewise.errors import ConfigError
from quotewise.model.events import ADD, CLEAR, DELETE, EVENT_DTYPE, EXECUTE, REDUCE, SET, TRADE
from quotewise.tune import BEST_FILE, TRIALS_FILE, load_tune

TUNE = {
    "strategy": "skew",
    "params": {"spread": 1},
    "space": {"max_pos": {"low": 1, "high": 6, "step": 1}, "skew": {"low": 0.0, "high": 2.0}},
    "objective": {"total_pnl": 1.0, "markout_5s": 0.01},
    "data": ["synthetic:20000", "synthetic:30000"],
    "split": 0.5,
    "trials": 10,
}


def _file(tmp_path: Path, name: str = "tune.yaml", **changes: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**TUNE, **changes}))
    return path


def _tune(file: Path, out: Path, *args: str) -> str:
    done = CliRunner().invoke(app, ["tune", str(file), "--out", str(out), "--quiet", *args])
    assert done.exit_code == 0, done.output
    return done.output


def test_six_trials_fit_on_the_first_file_and_repeat_with_the_seed(tmp_path: Path) -> None:
    file = _file(tmp_path)
    printed = _tune(file, tmp_path / "a", "--trials", "6", "--seed", "7")
    _tune(file, tmp_path / "b", "--trials", "6", "--seed", "7")

    trials = pd.read_parquet(tmp_path / "a" / TRIALS_FILE)
    assert list(trials["number"]) == list(range(6))
    assert trials["params_max_pos"].between(1, 6).all() and trials["params_skew"].between(0, 2).all()
    expected = trials["fit_total_pnl"] + 0.01 * trials["fit_markout_5s"]
    np.testing.assert_allclose(trials["fit_objective"], expected)
    pd.testing.assert_frame_equal(trials, pd.read_parquet(tmp_path / "b" / TRIALS_FILE))

    best = json.loads((tmp_path / "a" / BEST_FILE).read_text())
    assert best == json.loads((tmp_path / "b" / BEST_FILE).read_text())
    assert best["fit_objective"] == trials["fit_objective"].max()
    assert best["held_out_objective"] is not None and best["seed"] == 7
    assert best["fit_data"] == ["synthetic:20000"] and best["held_out_data"] == ["synthetic:30000"]
    assert best["objective"] == {"total_pnl": 1.0, "markout_5s": 0.01}
    assert best["settings"] == {"spread": 1, **best["params"]}
    assert trials["held_out_objective"].notna().sum() == 5  # the top five, scored on the later file
    assert "held out" in printed and (tmp_path / "a" / "report.html").exists()


def test_one_file_is_split_by_time(tmp_path: Path) -> None:
    file = _file(tmp_path, data=["synthetic:40000"], split=0.6, objective="total_pnl", top=2)
    _tune(file, tmp_path / "one", "--trials", "3", "--seed", "1", "--jobs", "2")
    best = json.loads((tmp_path / "one" / BEST_FILE).read_text())
    assert best["fit_data"] == ["synthetic:40000 [0, 0.6) of its time span"]
    assert best["held_out_data"] == ["synthetic:40000 [0.6, 1) of its time span"]
    assert len(best["top"]) == 2 and best["held_out_objective"] is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": {"spread": {"low": 5, "high": 1}}}, "space.spread: low 5 is above high 1"),
        ({"space": {"sprd": {"low": 1, "high": 2}}}, "sprd"),
        ({"space": {"skew": {"low": 0.0, "high": 1.0, "log": True}}}, "log scale needs low > 0"),
        ({"space": {"spread": [1, 2]}}, "spread is both fixed"),
        ({"objective": "profit"}, "unknown objective profit"),
        ({"objective": {"total_pnl": "high"}}, "objective is a figure's name"),
        ({"split": 1.0}, "split is a fraction"),
    ],
)
def test_a_bad_tuning_file_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_tune(_file(tmp_path, **change))


def test_the_command_refuses_a_bad_space_in_one_line(tmp_path: Path) -> None:
    file = _file(tmp_path, space={"spread": {"low": 5, "high": 1}})
    done = CliRunner().invoke(app, ["tune", str(file), "--out", str(tmp_path / "never")])
    assert done.exit_code == 2 and not (tmp_path / "never").exists()
    assert done.output.strip().count("\n") == 0 and "low 5 is above high 1" in done.output


def _events(rows: list[tuple[int, int, int, int, int, int]]) -> np.ndarray:
    """(ts, price, size, order_id, kind, side) records."""
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    columns = ("exch_ts", "price", "size", "order_id", "kind", "side")
    for name, column in zip(columns, zip(*rows, strict=True), strict=True):
        out[name] = column
    out["local_ts"] = out["exch_ts"]
    return out


def test_the_book_snapshot_keeps_what_rests_in_the_order_it_came() -> None:
    events = _events(
        [
            (1, 99, 5, 1, ADD, 1),
            (2, 101, 4, 2, ADD, -1),
            (3, 99, 3, 3, ADD, 1),
            (4, 99, 2, 1, REDUCE, 1),  # order 1 keeps 3
            (5, 101, 4, 2, EXECUTE, -1),  # order 2 filled: gone
            (6, 98, 7, 4, ADD, 1),
            (7, 98, 7, 4, DELETE, 1),
            (8, 101, 1, 0, TRADE, -1),
            (9, 102, 6, 0, SET, -1),
            (10, 103, 2, 0, SET, -1),
            (11, 0, 0, 0, CLEAR, -1),
            (12, 104, 5, 0, SET, -1),
            (13, 97, 8, 0, SET, 1),
            (14, 97, 0, 0, SET, 1),  # removed again
        ]
    )
    snap = book_snapshot(events, 50)
    got = [tuple(int(e[k]) for k in ("kind", "side", "price", "size", "order_id")) for e in snap]
    assert got == [(ADD, 1, 99, 3, 1), (ADD, 1, 99, 3, 3), (SET, -1, 104, 5, 0)]
    assert (snap["exch_ts"] == 50).all() and (snap["local_ts"] == 50).all()


def test_a_later_window_opens_on_the_book_and_the_two_halves_cover_the_data() -> None:
    source = qw.load("synthetic:30000")
    early, late = time_window(source, 0, 0.5), time_window(source, 0.5, 1)
    opening, *rest = list(late.chunks())  # the book as the first half left it, then the second half
    early_count = sum(len(c) for c in early.chunks())
    assert early_count + sum(len(c) for c in rest) == source.n_events
    assert early.n_events == early_count and late.n_events == len(opening) + source.n_events - early_count
    assert (opening["kind"] == ADD).all() and len(opening) > 10
    run = qw.backtest(late, "skew")
    assert run.summary["book"]["negative_clamps"] == 0  # cancels find the orders they cancel
    with pytest.raises(ConfigError, match="time window"):
        time_window(source, 0.5, 0.5)
