"""``mm model``: train and evaluate the next-mid-move models on order-flow features (docs/intelligence.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quotewise.console import console, err_console, fail, warn
from quotewise.errors import ConfigError, QuotewiseError
from quotewise.parsing import parse_duration
from quotewise.parsing import parse_time as parsing_time

if TYPE_CHECKING:
    from quotewise.backtest.source import DataSource

model_app = typer.Typer(
    help="Predict the next mid-price move from order flow: train and evaluate models.", no_args_is_help=True
)

DataOption = Annotated[
    str,
    typer.Option(
        "--data", help="market data: a file any `mm data` reads, a,b for consecutive files, synthetic:N"
    ),
]
StartOption = Annotated[
    str | None,
    typer.Option("--start", help="use samples at or after this time (ISO UTC, e.g. 2024-08-09T00:00, or ns)"),
]
EndOption = Annotated[str | None, typer.Option("--end", help="use samples before this time (ISO UTC or ns)")]


def parse_time(text: str | None, flag: str) -> int | None:
    """An ISO-8601 time (UTC unless it says otherwise) or integer nanoseconds since the epoch."""
    return None if text is None else parsing_time(text, flag)


@contextmanager
def _event_bar(quiet: bool, what: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(advance by n events, set the total) for a progress bar on stderr, or no-ops when quiet."""
    if quiet:
        yield (lambda n: None), (lambda n: None)
        return
    bar = Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(what, total=None)
        yield (lambda n: bar.advance(task, n)), (lambda n: bar.update(task, total=n))


def data_files(data: str) -> list[str]:
    """The files a ``--data`` value names, as absolute paths; the synthetic market as ``synthetic`` (every
    length is a prefix of one stream, so overlap is a matter of time range)."""
    from quotewise.backtest.source import data_paths
    from quotewise.data.synthetic import synthetic_events

    if synthetic_events(data) is not None:
        return ["synthetic"]
    paths = data_paths(data)
    return [str(Path(p).resolve()) for p in ([paths] if isinstance(paths, str) else paths)]


def _market(data: str) -> tuple[DataSource, list[str]]:
    """The market ``--data`` names, loaded, and its files."""
    from quotewise.api import load

    return load(data), data_files(data)


@model_app.command("train")
def train(
    data: DataOption,
    out: Annotated[Path, typer.Option("--out", help="directory to write the model to")],
    horizon: Annotated[
        str, typer.Option("--horizon", help="label horizon: the next mid change within it")
    ] = "1s",
    model: Annotated[str, typer.Option("--model", help="gbm, seq or all")] = "all",
    seed: Annotated[int, typer.Option("--seed", help="seed of the training's random draws")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", help="sequence model: passes over the data")] = 8,
    sample: Annotated[
        str,
        typer.Option("--sample", help="sample every --stride events (stride) or at each mid change (mid)"),
    ] = "stride",
    stride: Annotated[int, typer.Option("--stride", help="events between samples with --sample stride")] = 20,
    window: Annotated[
        str, typer.Option("--window", help="window of the flow features (OFI, trade flow, ...)")
    ] = "1s",
    start: StartOption = None,
    end: EndOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Compute features and labels on DATA (in time order) and train the models into OUT."""
    from quotewise.intelligence.features import FeatureConfig
    from quotewise.intelligence.flow_model import check_models
    from quotewise.intelligence.flow_model import train as train_models

    try:
        check_models(model)  # before reading the data
        if epochs <= 0:
            raise ConfigError(f"--epochs must be positive, got {epochs}")
        config = FeatureConfig(
            horizon_ns=parse_duration(horizon, "--horizon"),
            window_ns=parse_duration(window, "--window"),
            sample=sample,
            stride=stride,
        )
        with _event_bar(quiet, "features") as (advance, total):
            summary = train_models(
                *_market(data),
                out,
                config,
                model,
                seed,
                epochs,
                parse_time(start, "--start"),
                parse_time(end, "--end"),
                progress=advance,
                on_size=total,
            )
    except QuotewiseError as exc:
        fail(exc)
    t = summary["training"]
    console.print(
        f"samples {t['samples']:,}: {t['labelled']:,} labelled, {t['excluded_no_change']:,} excluded "
        f"(no mid change within {horizon}), {t['excluded_censored']:,} censored (data ended)"
    )
    for name, info in summary["models"].items():
        console.print(f"{name}: trained on {info['n_train']:,} samples in {info['train_s']:.1f} s")
    console.print(f"features {t['features_s']:.1f} s, total {t['total_s']:.1f} s. Model: [bold]{out}[/]")


def _table(result: dict[str, Any]) -> Table:
    table = Table(title="next mid move: up vs down")
    for header in ("model", "n", "AUC", "accuracy", "precision@0.7", "coverage@0.7"):
        table.add_column(header)

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for name, m in result.items():
        table.add_row(
            name,
            f"{m['n']:,}",
            fmt(m["auc"]),
            fmt(m["accuracy"]),
            fmt(m["precision_at_0.7"]),
            fmt(m["coverage_at_0.7"]),
        )
    return table


@model_app.command("eval")
def evaluate(
    directory: Annotated[Path, typer.Argument(help="model directory written by mm model train")],
    data: DataOption,
    start: StartOption = None,
    end: EndOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Score the models in DIRECTORY on DATA: AUC, accuracy, confident precision and calibration."""
    from quotewise.intelligence.flow_model import evaluate as evaluate_models

    try:
        with _event_bar(quiet or as_json, "features") as (advance, total):
            result, overlap = evaluate_models(
                directory,
                *_market(data),
                parse_time(start, "--start"),
                parse_time(end, "--end"),
                advance,
                total,
            )
    except QuotewiseError as exc:
        fail(exc)
    if overlap:
        warn(f"{data} overlaps the data the model was trained on: these scores are in-sample")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(_table(result))
    first = next(iter(result.values()))
    console.print(
        f"excluded: {first['excluded_no_change']:,} samples with no mid change within the horizon, "
        f"{first['excluded_censored']:,} censored by the end of the data"
    )
