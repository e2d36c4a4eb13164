"""``mm sweep``: runs x grid x data from one file, on a process pool; the table is the same whatever
the pool size, and a sweep run again does only what was not finished."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from quotewise.errors import ConfigError
from quotewise.sweep import ROW_FILE, TABLE_FILE, load_sweep, run_sweep

SWEEP = {
    "runs": [
        {"name": "tight", "strategy": "symmetric", "params": {"spread": "1tick"}},
        {"name": "skewed", "strategy": "skew", "params": {"spread": "2ticks"}},
    ],
    "grid": {"max_pos": [2, 5]},
    "data": ["synthetic:40000", "synthetic:60000"],
}


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP))
    return path


def mm_sweep(sweep_file: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    """``mm sweep FILE OPTIONS --out OUT --quiet`` as a user runs it."""
    args = ["sweep", str(sweep_file), *options, "--out", str(out), "--quiet"]
    return subprocess.run(
        [sys.executable, "-m", "quotewise.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_runs_cross_the_grid_and_the_data_in_the_files_order(sweep_file: Path) -> None:
    runs = load_sweep(sweep_file)
    assert [r.name for r in runs] == [
        f"{name}[max_pos={m}]@synthetic:{n}"
        for name in ("tight", "skewed")
        for m in (2, 5)
        for n in (40000, 60000)
    ]
    assert runs[0].settings == {"spread": "1tick", "max_pos": 2} and runs[-1].strategy == "skew"


def test_a_pool_gives_the_sequential_table_and_a_rerun_does_only_the_rest(
    sweep_file: Path, tmp_path: Path
) -> None:
    runs = load_sweep(sweep_file)
    one = run_sweep(runs, tmp_path / "one", jobs=1)
    two = run_sweep(runs, tmp_path / "two", jobs=2)
    pd.testing.assert_frame_equal(one, two)
    assert list(one["name"]) == [r.name for r in runs] and one["fills"].sum() > 0
    assert one.loc[one["name"].str.contains("max_pos=2"), "max_abs_position"].max() <= 2

    # as if killed halfway: two runs never finished (no row), the others did
    for run in runs[2:4]:
        (tmp_path / "two" / run.folder / ROW_FILE).unlink()
    stamps = {
        r.name: (tmp_path / "two" / r.folder / ROW_FILE).stat().st_mtime_ns
        for r in runs
        if r not in runs[2:4]
    }
    again = run_sweep(runs, tmp_path / "two", jobs=2)
    pd.testing.assert_frame_equal(one, again)
    assert {
        r.name: (tmp_path / "two" / r.folder / ROW_FILE).stat().st_mtime_ns for r in runs if r.name in stamps
    } == stamps
    assert pd.read_parquet(tmp_path / "two" / TABLE_FILE).equals(again)


def test_the_command_prints_the_best_and_refuses_a_bad_file(sweep_file: Path, tmp_path: Path) -> None:
    done = mm_sweep(sweep_file, tmp_path / "cli", "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert "best of 8 runs" in done.stdout and (tmp_path / "cli" / TABLE_FILE).exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SWEEP, "grid": {"max_pos": []}}))
    with pytest.raises(ConfigError, match="non-empty list"):
        load_sweep(bad)
    bad.write_text(yaml.safe_dump({**SWEEP, "data": ["missing.gz"]}))
    with pytest.raises(ConfigError, match=r"missing\.gz does not exist"):
        load_sweep(bad)


def test_ray_gives_the_same_table(sweep_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is the optional extra quotewise[ray] (make test installs it)")
    runs = load_sweep(sweep_file)
    alone = run_sweep(runs, tmp_path / "alone", jobs=1)
    done = mm_sweep(sweep_file, tmp_path / "ray", "--ray")  # bare: a local Ray
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(alone, pd.read_parquet(tmp_path / "ray" / TABLE_FILE))


def test_an_option_with_an_optional_value_takes_its_default_when_bare() -> None:
    from quotewise.cli import with_optional_values

    assert with_optional_values(["sweep", "f.yaml", "--ray"]) == ["sweep", "f.yaml", "--ray", "local"]
    assert with_optional_values(["--ray", "--out", "d"]) == ["--ray", "local", "--out", "d"]
    assert with_optional_values(["--ray", "ray://head:10001"]) == ["--ray", "ray://head:10001"]
