"""Many backtests from one YAML file, on a pool of processes: every run of ``runs:`` (crossed with
the ``grid:``) on every file of ``data:``. Each run writes its own folder and, last, ``row.json``: a
run whose row is there is finished and is not run again (a sweep killed halfway, run again, does only
the rest). Runs go to a local process pool (``--jobs N``) or to Ray (``--ray [ADDRESS]``, an optional
extra). The table, ``comparison.parquet``, lists the runs in the file's order whatever ran first, so
it is the same with ``--jobs 1``, ``--jobs 8`` or ``--ray``; the wall time of each run, which is
not, stays in its own ``summary.json``. ``mm sweep`` then writes ``report.html``
(quotewise.sweep_report); ``mm tune`` (quotewise.tune) runs its trials on the same executors.

    runs:                      # as mm backtest --sweep takes it
      - {name: tight, strategy: symmetric, params: {spread: 1tick}}
      - {name: skewed, strategy: skew, params: {spread: 2ticks}}
    data: [a.gz, b.gz]         # default: synthetic (``events:`` long)
    grid: {max_pos: [2, 5]}    # every run with every combination
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quotewise.errors import ConfigError

ROW_FILE = "row.json"
TABLE_FILE = "comparison.parquet"
FIGURES = (  # the summary's figures every row has (deterministic: no wall time)
    "total_pnl",
    "fees",
    "fills",
    "traded_volume",
    "traded_notional",
    "max_abs_position",
    "final_position",
    "orders_placed",
    "cancels",
    "rejects",
    "events",
)
# figures of the run's metrics (summary.json "metrics", computed from its fills and equity): the
# annualised Sharpe of minute P&L changes and the mean 5 s markout of all fills, in bps
METRIC_FIGURES = ("sharpe", "markout_5s")
ROW_FIGURES = (*FIGURES, *METRIC_FIGURES)


@dataclass(frozen=True)
class SweepRun:
    """One backtest of a sweep: its unique name, strategy, settings by name and data."""

    name: str
    strategy: str
    settings: dict[str, Any] = field(hash=False)
    data: str
    events: int
    window: tuple[float, float] | None = None  # a part of the data's time span, as fractions [start, end)

    @property
    def folder(self) -> str:
        """The run's folder under the sweep's: its name with anything but letters, digits, . _ - as _."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)


def _grid(doc: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    grid = doc.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{path}: 'grid:' maps each setting to a non-empty list of values")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def data_files(doc: dict[str, Any], path: Path) -> list[str]:
    """The ``data:`` of a sweep (or tuning) file: synthetic names as given, files made absolute."""
    data = doc.get("data", ["synthetic"])
    data = [data] if isinstance(data, str) else data
    if not isinstance(data, list) or not data or not all(isinstance(d, str) for d in data):
        raise ConfigError(f"{path}: 'data:' is a file or a list of files (or synthetic)")
    out = []
    for d in data:
        if d == "synthetic" or d.startswith("synthetic:"):
            out.append(d)
            continue
        file = Path(d) if Path(d).is_absolute() else path.parent / d
        if not file.exists():
            raise ConfigError(
                f"{path}: data file {d} does not exist (relative paths are from the sweep file)"
            )
        out.append(str(file))
    return out


def strategy_label(strategy: str) -> str:
    """A run's default name: the strategy's, or its class's for ``file.py:Class``."""
    return Path(strategy.rpartition(":")[2] if ":" in strategy else strategy).name


def sweep_runs(doc: Any, path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, strategy, params)`` of each entry of the ``runs:`` list, names unique."""
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{path}: expected a 'runs:' list of {{name, strategy, params}} entries")
    out = []
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or "strategy" not in run:
            raise ConfigError(f"{path}: run #{i + 1} needs a 'strategy'")
        unknown = set(run) - {"name", "strategy", "params"}
        if unknown:
            raise ConfigError(f"{path}: run #{i + 1} has unknown keys {sorted(unknown)}")
        label = str(run.get("name") or strategy_label(run["strategy"]))
        out.append((label, str(run["strategy"]), dict(run.get("params") or {})))
    labels = [name for name, _, _ in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{path}: run names must be unique, got {labels}")
    return out


def grid_names(path: str | Path) -> list[str]:
    """The settings the sweep file's ``grid:`` crosses, in its order."""
    from quotewise.settings import read_yaml

    doc = read_yaml(Path(path), "sweep file")
    grid = doc.get("grid") if isinstance(doc, dict) else None
    return list(grid) if isinstance(grid, dict) else []


def load_sweep(path: str | Path, settings: dict[str, Any] | None = None) -> list[SweepRun]:
    """Every run of the sweep file at ``path``: its ``runs:`` (with ``settings`` over their params)
    crossed with its ``grid:``, each on every file of its ``data:``, in that order."""
    path = Path(path)
    from quotewise.settings import read_yaml

    doc = read_yaml(path, "sweep file")
    runs = [
        (name, strategy, {**params, **(settings or {})}) for name, strategy, params in sweep_runs(doc, path)
    ]
    unknown = set(doc) - {"runs", "data", "grid", "events"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (runs, data, grid, events)")
    events = int(doc.get("events", 1_000_000))
    out = []
    for name, strategy, params in runs:
        for combo in _grid(doc, path):
            tag = ",".join(f"{k}={v}" for k, v in combo.items())
            for data in data_files(doc, path):
                label = f"{name}[{tag}]" if tag else name
                full = f"{label}@{Path(data).name}"
                out.append(SweepRun(full, strategy, {**params, **combo}, data, events))
    folders = [r.folder for r in out]
    if len(set(folders)) != len(folders):
        raise ConfigError(f"{path}: two runs would share a folder; give the runs distinct names")
    return out


def run_one(run: SweepRun, out: Path) -> dict[str, Any]:
    """The run's row: read back when it is finished, else backtested now and written last."""
    folder = out / run.folder
    done = folder / ROW_FILE
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    import quotewise.api as qw

    if run.window is None:
        result = qw.backtest(
            run.data, run.strategy, events=run.events, out=folder, report=False, **run.settings
        )
    else:
        source, settings = _windowed(run)
        result = qw.backtest(source, run.strategy, out=folder, report=False, **settings)
    row = {
        "name": run.name,
        "data": run.data,
        "strategy": run.strategy,
        "settings": json.dumps(run.settings, sort_keys=True, default=str),
        **row_figures(result.summary),
    }
    done.write_text(json.dumps(row, default=str), encoding="utf-8")
    return row


def row_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """A finished run's figures of :data:`ROW_FIGURES`: the summary's, then the two of its metrics."""
    metrics = summary.get("metrics") or {}
    markouts = (metrics.get("markouts_bps") or {}).get("all") or {}
    return {
        **{k: summary.get(k) for k in FIGURES},
        "sharpe": metrics.get("sharpe"),
        "markout_5s": markouts.get("5s"),
    }


def _windowed(run: SweepRun) -> tuple[Any, dict[str, Any]]:
    """The run's part of its data, loaded with the listing its settings give, and its other settings."""
    import quotewise.api as qw
    from quotewise.backtest.source import time_window
    from quotewise.settings import LISTING_FIELDS

    assert run.window is not None
    listing = {k: v for k, v in run.settings.items() if k in LISTING_FIELDS}
    source = time_window(qw.load(run.data, events=run.events, **listing), *run.window)
    return source, {k: v for k, v in run.settings.items() if k not in LISTING_FIELDS}


LOCAL_RAY = "local"  # --ray alone: a Ray started here for the sweep


def run_sweep(
    runs: list[SweepRun],
    out: Path,
    jobs: int = 1,
    progress: Callable[[int, str], None] | None = None,
    ray: str | None = None,
) -> pd.DataFrame:
    """Every run (``jobs`` processes at a time, or as Ray tasks on the cluster at ``ray``: ``local``
    starts one here), then ``comparison.parquet`` in the runs' order."""
    with executor(jobs, ray) as rows_of:
        out.mkdir(parents=True, exist_ok=True)
        table = collect_rows(rows_of(runs, out), runs, progress)
    table.to_parquet(out / TABLE_FILE, index=False)
    return table


# runs, the sweep's folder -> (name, row) of each run as it finishes
RowSource = Callable[[list[SweepRun], Path], Iterable[tuple[str, dict[str, Any]]]]


def collect_rows(
    done: Iterable[tuple[str, dict[str, Any]]],
    runs: list[SweepRun],
    progress: Callable[[int, str], None] | None = None,
    counted: int = 0,
) -> pd.DataFrame:
    """The finished rows as a table in the runs' order, ``progress(counted + i, name)`` after each."""
    rows: dict[str, dict[str, Any]] = {}
    for i, (name, row) in enumerate(done, 1):
        rows[name] = row
        if progress is not None:
            progress(counted + i, name)
    table = pd.DataFrame([rows[r.name] for r in runs])
    for key in METRIC_FIGURES:  # None where a run does not define it: NaN, a float column however many
        if key in table:
            table[key] = table[key].astype("float64")
    return table


@contextmanager
def executor(jobs: int = 1, ray: str | None = None) -> Iterator[RowSource]:
    """Where runs go, kept open for several batches (a tuner's): here one by one (``jobs`` 1), a pool
    of ``jobs`` processes, or Ray tasks on the cluster at ``ray`` (``local`` starts one here)."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if ray is not None:
        with _ray_session(ray) as remote:
            yield lambda runs, out: _ray_rows(remote, runs, out.resolve())
    elif jobs == 1:
        yield lambda runs, out: ((run.name, run_one(run, out)) for run in runs)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            yield lambda runs, out: _pool_rows(pool, runs, out)


def _pool_rows(
    pool: ProcessPoolExecutor, runs: list[SweepRun], out: Path
) -> Iterable[tuple[str, dict[str, Any]]]:
    futures = {pool.submit(run_one, run, out): run.name for run in runs}
    for future in as_completed(futures):
        yield futures[future], future.result()


@contextmanager
def _ray_session(address: str) -> Iterator[Any]:
    """Ray for the runs (``pip install quotewise[ray]``), and ``run_one`` as its remote task; on a
    cluster of several machines the output folder must be one every node sees."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'quotewise[ray]'") from None
    ray.init(
        address=None if address == LOCAL_RAY else address,
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
    )
    try:
        yield ray.remote(run_one)
    finally:
        ray.shutdown()


def _ray_rows(task: Any, runs: list[SweepRun], out: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    import ray

    names = {task.remote(run, out): run.name for run in runs}
    pending = list(names)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            yield names[ref], ray.get(ref)
