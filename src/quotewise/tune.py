"""``mm tune``: search a strategy's settings with Optuna's TPE on the earlier part of the data, then
score the best trials on the later part, which the search never saw.

A setting tuned on the data it is judged on looks better than it is; the later part (held out) shows
by how much. With several data files (in time order) the first ``split`` of them are fitted and the
rest held out; with one file, the first ``split`` of its time span and the rest (that part opens with
the book as the earlier events left it: ``quotewise.backtest.source.time_window``).

    strategy: skew
    params: {max_pos: 5}                      # fixed settings
    space:                                    # searched: a range, or a list of choices
      spread: {low: 1, high: 10, step: 1}     # all integers: an integer setting
      skew: {low: 0.0, high: 2.0}             # else a float (log: true for a log scale)
      queue: [prob, fifo]
    objective: {total_pnl: 1.0, markout_5s: 0.5}   # or one name: total_pnl, sharpe, markout_5s, ...
    data: [a.parquet, b.parquet]
    split: 0.5
    trials: 30

The backtests go through the sweep's executors (``quotewise.sweep.executor``: here, a process pool or
Ray); with ``jobs`` N the tuner asks Optuna for N trials at a time and tells it their scores in trial
order, so a seed gives the same search whatever finishes first.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quotewise.errors import ConfigError
from quotewise.sweep import ROW_FIGURES, RowSource, SweepRun, collect_rows, data_files, executor

TRIALS_FILE = "trials.parquet"
BEST_FILE = "best.json"
RUNS_FOLDER = "runs"
DEFAULT_TOP = 5
KEYS = ("strategy", "params", "space", "objective", "data", "split", "trials", "top", "events")
RANGE_KEYS = {"low", "high", "log", "step"}
CHOICE_TYPES = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range (``low``..``high``, integer when both ends and the step are) or a
    list of ``choices``."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def integer(self) -> bool:
        ends = (self.low, self.high, 1 if self.step is None else self.step)
        return self.choices is None and all(isinstance(v, int) for v in ends)

    def ends(self) -> tuple[Any, Any]:
        """The two extremes, to check the strategy takes every value between."""
        return (self.choices[0], self.choices[-1]) if self.choices is not None else (self.low, self.high)

    def suggest(self, trial: Any) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class Part:
    """The fit or held-out part of the data: whole files, or one file's window of its time span."""

    files: tuple[str, ...]
    window: tuple[float, float] | None = None

    def labels(self) -> list[str]:
        tail = "" if self.window is None else f" [{self.window[0]:g}, {self.window[1]:g}) of its time span"
        return [f"{Path(f).name}{tail}" for f in self.files]


@dataclass(frozen=True)
class TuneSpec:
    """A tuning file, checked."""

    strategy: str
    fixed: dict[str, Any]
    space: tuple[Dimension, ...]
    objective: dict[str, float]
    fit: Part
    held_out: Part
    split: float
    trials: int
    top: int = DEFAULT_TOP
    events: int = 1_000_000
    source: Path = field(default=Path("."))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_dimension(name: str, value: Any, path: Path) -> Dimension:
    """A ``space:`` entry, or a one-line error naming what is wrong with it."""
    where = f"{path}: space.{name}"
    if isinstance(value, list):
        if not value or not all(isinstance(v, CHOICE_TYPES) for v in value):
            raise ConfigError(f"{where}: a list of choices is non-empty, of numbers, strings or booleans")
        return Dimension(name, choices=tuple(value))
    if not isinstance(value, dict) or not {"low", "high"} <= set(value) or set(value) - RANGE_KEYS:
        raise ConfigError(f"{where}: give {{low, high[, log, step]}} or a list of choices, got {value!r}")
    low, high, step, log = value["low"], value["high"], value.get("step"), value.get("log", False)
    if not (_number(low) and _number(high)) or (step is not None and not _number(step)):
        raise ConfigError(f"{where}: low, high and step are numbers, got {value!r}")
    if low > high:
        raise ConfigError(f"{where}: low {low} is above high {high}")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log is true or false, got {log!r}")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: step must be positive, got {step}")
    if log and (low <= 0 or step is not None):
        raise ConfigError(f"{where}: a log scale needs low > 0 and no step")
    return Dimension(name, low=low, high=high, log=log, step=step)


def parse_objective(value: Any, path: Path) -> dict[str, float]:
    """``objective:`` as weights by figure: a name is weight 1."""
    weights = {value: 1.0} if isinstance(value, str) else value
    if not isinstance(weights, dict) or not weights or not all(_number(w) for w in weights.values()):
        raise ConfigError(f"{path}: objective is a figure's name or {{figure: weight, ...}}, got {value!r}")
    unknown = [k for k in weights if k not in ROW_FIGURES]
    if unknown:
        raise ConfigError(
            f"{path}: unknown objective {', '.join(map(str, unknown))}; choose from {', '.join(ROW_FIGURES)}"
        )
    return {k: float(w) for k, w in weights.items()}


def split_data(files: list[str], split: float, path: Path) -> tuple[Part, Part]:
    """The fit and held-out parts: the first ``split`` of several files (at least one each side), or
    of one file's time span."""
    if not _number(split) or not 0 < split < 1:
        raise ConfigError(f"{path}: split is a fraction strictly between 0 and 1, got {split!r}")
    if len(files) == 1:
        return Part((files[0],), (0.0, float(split))), Part((files[0],), (float(split), 1.0))
    cut = min(max(round(split * len(files)), 1), len(files) - 1)
    return Part(tuple(files[:cut])), Part(tuple(files[cut:]))


def _check_space(strategy: str, fixed: dict[str, Any], space: tuple[Dimension, ...], path: Path) -> None:
    """Every searched setting is one the strategy (or the risk and venue settings) takes, at both ends
    of its range; searched settings are not also fixed."""
    import quotewise.api as qw

    both = sorted(set(fixed) & {d.name for d in space})
    if both:
        raise ConfigError(f"{path}: {', '.join(both)} is both fixed (params) and searched (space)")
    for end in (0, 1):
        settings = {**fixed, **{d.name: d.ends()[end] for d in space}}
        try:
            qw.check_settings(strategy, settings)
        except ConfigError as exc:
            raise ConfigError(
                f"{path}: strategy {strategy} with the space's {'upper' if end else 'lower'} ends: {exc}"
            ) from None


def load_tune(path: str | Path, trials: int | None = None) -> TuneSpec:
    """The tuning file at ``path`` (``trials`` overrides its own), checked before anything runs."""
    from quotewise.settings import read_yaml

    path = Path(path)
    doc = read_yaml(path, "tuning file")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with {', '.join(KEYS)}")
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown} ({', '.join(KEYS)})")
    missing = [k for k in ("strategy", "space", "objective", "data") if k not in doc]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    space = doc["space"]
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{path}: space maps each searched setting to a range or a list of choices")
    fixed = doc.get("params") or {}
    if not isinstance(fixed, dict):
        raise ConfigError(f"{path}: params maps settings to values")
    dimensions = tuple(parse_dimension(str(k), v, path) for k, v in space.items())
    strategy = str(doc["strategy"])
    objective = parse_objective(doc["objective"], path)
    fit, held_out = split_data(data_files(doc, path), doc.get("split", 0.5), path)
    count = trials if trials is not None else doc.get("trials", 30)
    top = doc.get("top", DEFAULT_TOP)
    for key, value in (("trials", count), ("top", top), ("events", doc.get("events", 1_000_000))):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{path}: {key} is a positive whole number, got {value!r}")
    _check_space(strategy, fixed, dimensions, path)
    return TuneSpec(
        strategy,
        fixed,
        dimensions,
        objective,
        fit,
        held_out,
        float(doc.get("split", 0.5)),
        count,
        top,
        int(doc.get("events", 1_000_000)),
        path,
    )


def part_runs(spec: TuneSpec, number: int, params: dict[str, Any], part: Part, tag: str) -> list[SweepRun]:
    """The backtests that score one trial's ``params`` on ``part``. A run's folder ends in a digest of
    all that decides its result, so a row found there (a tune run again) is that run's."""
    settings = {**spec.fixed, **params}
    runs = []
    for i, data in enumerate(part.files):
        key = json.dumps(
            [spec.strategy, settings, data, part.window, spec.events], sort_keys=True, default=str
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        name = f"t{number:04d}-{tag}-{i}-{digest}"
        runs.append(SweepRun(name, spec.strategy, settings, data, spec.events, part.window))
    return runs


def figures_of(rows: pd.DataFrame) -> dict[str, float]:
    """Each figure averaged over a part's runs (those that define it; NaN when none does)."""
    return {k: float(pd.to_numeric(rows[k], errors="coerce").mean()) for k in ROW_FIGURES}


def score(figures: dict[str, float], objective: dict[str, float]) -> float:
    """sum over the objective's figures of weight x the figure's mean over the part's runs; NaN when a
    figure it needs is undefined (sharpe of a run shorter than two minutes, markout without fills)."""
    return math.fsum(w * figures[k] for k, w in objective.items())


@dataclass
class TuneResult:
    trials: pd.DataFrame
    best: dict[str, Any]


Progress = Callable[[int, str], None]


def run_count(spec: TuneSpec) -> int:
    """How many backtests a tune makes at most: every trial on the fit part, the top on the held-out."""
    return spec.trials * len(spec.fit.files) + min(spec.top, spec.trials) * len(spec.held_out.files)


def _scored(
    rows_of: RowSource,
    runs_by_trial: dict[int, list[SweepRun]],
    out: Path,
    progress: Progress | None,
    done: int,
) -> dict[int, dict[str, float]]:
    runs = [r for trial_runs in runs_by_trial.values() for r in trial_runs]
    table = collect_rows(rows_of(runs, out), runs, progress, done)
    table.index = [r.name for r in runs]
    return {n: figures_of(table.loc[[r.name for r in rs]]) for n, rs in runs_by_trial.items()}


def tune(
    spec: TuneSpec,
    out: Path,
    jobs: int = 1,
    ray: str | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Search ``spec.trials`` trials, ``jobs`` at a time, then score the top ``spec.top`` on the held-out
    part; write trials.parquet, best.json and report.html to ``out``."""
    import optuna

    from quotewise.sweep_report import write_tune_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = secrets.randbelow(2**31) if seed is None else seed
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    folder = out / RUNS_FOLDER
    fit: dict[int, dict[str, float]] = {}
    params: dict[int, dict[str, Any]] = {}
    done = 0
    with executor(jobs, ray) as rows_of:
        out.mkdir(parents=True, exist_ok=True)
        while len(params) < spec.trials:
            batch = [study.ask() for _ in range(min(jobs, spec.trials - len(params)))]
            for trial in batch:
                params[trial.number] = {d.name: d.suggest(trial) for d in spec.space}
            runs = {t.number: part_runs(spec, t.number, params[t.number], spec.fit, "fit") for t in batch}
            fit.update(_scored(rows_of, runs, folder, progress, done))
            done += sum(len(r) for r in runs.values())
            for trial in batch:  # in trial order: the sampler's state does not depend on timing
                value = score(fit[trial.number], spec.objective)
                if math.isnan(value):
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, value)
        top = _top(study, spec.top)
        held = {n: part_runs(spec, n, params[n], spec.held_out, "held") for n in top}
        held_out = _scored(rows_of, held, folder, progress, done)
    trials = trials_table(spec, params, fit, held_out)
    best = best_record(spec, trials, top, seed)
    trials.to_parquet(out / TRIALS_FILE, index=False)
    (out / BEST_FILE).write_text(json.dumps(best, indent=2, default=str), encoding="utf-8")
    write_tune_report(out, trials, best)
    return TuneResult(trials, best)


def _top(study: Any, count: int) -> list[int]:
    """The numbers of the ``count`` completed trials with the highest fit objective (ties: earlier)."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError(
            "the objective is undefined in every trial (sharpe needs two minutes of P&L, markouts need "
            "fills): choose another objective or longer data"
        )
    return [t.number for t in sorted(complete, key=lambda t: (-t.value, t.number))[:count]]


def _column(values: list[Any]) -> list[Any]:
    """A params column Parquet can store: mixed kinds of choices become their text."""
    kinds = {type(v) for v in values if v is not None}
    return values if len(kinds) <= 1 or kinds <= {int, float} else [str(v) for v in values]


def trials_table(
    spec: TuneSpec,
    params: dict[int, dict[str, Any]],
    fit: dict[int, dict[str, float]],
    held_out: dict[int, dict[str, float]],
) -> pd.DataFrame:
    """One row per trial: its number, settings, fit objective and figures, and (for the top trials)
    the held-out objective and figures."""
    numbers = sorted(params)
    nan = dict.fromkeys(ROW_FIGURES, math.nan)
    frame = pd.DataFrame({"number": numbers})
    for dim in spec.space:
        frame[f"params_{dim.name}"] = _column([params[n][dim.name] for n in numbers])
    frame["params"] = [json.dumps(params[n], sort_keys=True, default=str) for n in numbers]
    frame["fit_objective"] = [score(fit[n], spec.objective) for n in numbers]
    frame["state"] = ["undefined" if math.isnan(v) else "complete" for v in frame["fit_objective"]]
    frame["held_out_objective"] = [score(held_out.get(n, nan), spec.objective) for n in numbers]
    for key in ROW_FIGURES:
        frame[f"fit_{key}"] = [fit[n][key] for n in numbers]
    for key in ROW_FIGURES:
        frame[f"held_out_{key}"] = [held_out.get(n, nan)[key] for n in numbers]
    return frame


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def best_record(spec: TuneSpec, trials: pd.DataFrame, top: list[int], seed: int) -> dict[str, Any]:
    """What best.json holds: the best trial by fit, its scores on both parts, and how it was scored."""
    by_number = trials.set_index("number")

    def entry(n: int) -> dict[str, Any]:
        row = by_number.loc[n]
        return {
            "trial": n,
            "params": json.loads(row["params"]),
            "fit_objective": _finite(row["fit_objective"]),
            "held_out_objective": _finite(row["held_out_objective"]),
        }

    formula = " + ".join(f"{w:g} * mean({k})" for k, w in spec.objective.items())
    return {
        **entry(top[0]),
        "strategy": spec.strategy,
        "settings": {**spec.fixed, **json.loads(by_number.loc[top[0], "params"])},
        "objective": spec.objective,
        "objective_formula": f"{formula}, each mean over the part's runs, maximised",
        "fit_data": spec.fit.labels(),
        "held_out_data": spec.held_out.labels(),
        "split": spec.split,
        "trials": spec.trials,
        "seed": seed,
        "top": [entry(n) for n in top],
    }
