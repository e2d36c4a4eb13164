"""The ``mm`` command."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from quotewise.errors import ConfigError, QuotewiseError

app = typer.Typer(
    help="Quotewise: market making with a backtest you can trust.", no_args_is_help=True, add_completion=False
)
data_app = typer.Typer(help="Convert and inspect market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()
err_console = Console(stderr=True)

QUEUE_CHOICES = ("auto", "fifo", "risk-averse", "prob")


def _fail(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


def parse_settings(items: list[str]) -> dict[str, object]:
    """``key=value`` pairs; values are read as YAML scalars (numbers, booleans) or kept as text."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parsed = yaml.safe_load(value) if value.strip() else ""
        out[key.strip().replace("-", "_")] = (
            parsed if isinstance(parsed, int | float | bool) else value.strip()
        )
    return out


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _money(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.4f}"


def print_summary(summary: dict, out_dir: Path | None) -> None:
    inst = summary["instrument"]
    table = Table(
        title=f"Backtest: {summary['strategy']} on {inst['symbol']} ({summary['data']})", show_header=False
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("Total P&L", _money(summary["total_pnl"])),
        ("Fees (paid +, rebate -)", _money(summary["fees"])),
        ("Fills", f"{summary['fills']:,}"),
        ("Traded volume", f"{summary['traded_volume']:,.6g}"),
        ("Final position", f"{summary['final_position']:,.6g}"),
        ("Max |position|", f"{summary['max_abs_position']:,.6g}"),
        (
            "Orders placed / cancels / rejects",
            f"{summary['orders_placed']:,} / {summary['cancels']:,} / {summary['rejects']:,}",
        ),
        ("Events", f"{summary['events']:,}"),
        ("Wall time", f"{summary['wall_seconds']:.2f} s"),
        ("Events per second", f"{summary['events_per_second']:,.0f}"),
        ("Period", f"{summary['start']} -> {summary['end']}"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if out_dir is not None:
        console.print(f"Outputs in [bold]{out_dir}[/]")
        report = out_dir / "report.html"
        if report.exists():
            console.print(f"Report: [bold]{report}[/]")


@app.command()
def backtest(
    data: Annotated[str, typer.Option(help="data file (any supported format) or 'synthetic'")] = "synthetic",
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="lobster|binance|tardis|hftbacktest|parquet (default: detect)"),
    ] = None,
    strategy: Annotated[
        str, typer.Option(help="symmetric | skew | path/to/file.py:Class | package.module:Class")
    ] = "skew",
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="strategy parameter key=value (repeatable)")
    ] = None,
    tick: Annotated[float | None, typer.Option(help="tick size (default: from the data)")] = None,
    lot: Annotated[float | None, typer.Option(help="lot size (default: from the data)")] = None,
    latency_entry: Annotated[str, typer.Option(help="order entry latency, e.g. 1ms")] = "1ms",
    latency_response: Annotated[str, typer.Option(help="order response latency, e.g. 1ms")] = "1ms",
    feed_latency: Annotated[str, typer.Option(help="extra delay before the strategy sees an event")] = "0ms",
    queue: Annotated[
        str,
        typer.Option(help="queue model: auto (fifo on L3 data, else risk-averse), fifo, risk-averse, prob"),
    ] = "auto",
    queue_power: Annotated[float, typer.Option(help="exponent n of the probabilistic queue model")] = 3.0,
    maker_fee: Annotated[str | None, typer.Option(help="maker fee, e.g. -0.2bp (negative = rebate)")] = None,
    taker_fee: Annotated[str | None, typer.Option(help="taker fee, e.g. 0.5bp")] = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic market")] = 0,
    events: Annotated[int, typer.Option(help="length of the synthetic market, in events")] = 2_000_000,
    out: Annotated[
        Path | None, typer.Option(help="output directory (default: runs/<strategy>-<time>)")
    ] = None,
    report: Annotated[bool, typer.Option(help="write report.html")] = True,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Run a market-making backtest and write summary.json, fills/orders/equity Parquet and report.html."""
    try:
        from quotewise.backtest import source as sources
        from quotewise.backtest.runner import run_backtest
        from quotewise.parsing import parse_duration, parse_fee
        from quotewise.quoting.loader import make_strategy
        from quotewise.sim.exchange import SimConfig

        if queue not in QUEUE_CHOICES:
            raise ConfigError(f"unknown queue model {queue!r}; choose one of {', '.join(QUEUE_CHOICES)}")
        if events <= 0:
            raise ConfigError(f"--events must be positive, got {events}")
        strat = make_strategy(strategy, parse_settings(settings or []))
        src = (
            sources.synthetic(events, seed)
            if data == "synthetic"
            else sources.from_path(data, fmt, tick, lot)
        )
        updates: dict[str, float] = {}
        if maker_fee is not None:
            updates["maker_fee"] = parse_fee(maker_fee, "--maker-fee")
        if taker_fee is not None:
            updates["taker_fee"] = parse_fee(taker_fee, "--taker-fee")
        if updates:
            src.instrument = src.instrument.model_copy(update=updates)
        model = ("fifo" if src.l3 else "risk-averse") if queue == "auto" else queue
        if model == "fifo" and not src.l3:
            raise ConfigError(
                "the fifo queue model needs order-level (L3) data; use --queue risk-averse or prob"
            )
        config = SimConfig(
            entry_latency_ns=parse_duration(latency_entry, "--latency-entry"),
            response_latency_ns=parse_duration(latency_response, "--latency-response"),
            feed_latency_ns=parse_duration(feed_latency, "--feed-latency"),
            queue=model,  # type: ignore[arg-type]
            queue_power=queue_power,
            interval_ns=strat.interval_ns,
        )
        out_dir = out or Path("runs") / f"{strat.name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
        if quiet:
            result = run_backtest(src, strat, config, out_dir, report=report)
        else:
            with _progress() as bar:
                task = bar.add_task("backtest", total=src.n_events)
                result = run_backtest(
                    src,
                    strat,
                    config,
                    out_dir,
                    progress=lambda n: bar.update(task, completed=n),
                    report=report,
                )
    except QuotewiseError as exc:
        _fail(exc)
    print_summary(result.summary, result.out_dir)


@data_app.command("convert")
def data_convert(
    source: Annotated[Path, typer.Argument(help="input file or directory")],
    out: Annotated[Path, typer.Option(help="output .parquet file")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="lobster|binance|tardis|hftbacktest (default: detect)")
    ] = None,
    tick: Annotated[float | None, typer.Option(help="tick size (default: inferred)")] = None,
    lot: Annotated[float | None, typer.Option(help="lot size (default: inferred)")] = None,
) -> None:
    """Read a market-data file and write normalized events to Parquet."""
    try:
        from quotewise.data.convert import info, load_source
        from quotewise.data.store import write_events

        with err_console.status(f"reading {source}"):
            data = load_source(source, fmt, tick_size=tick, lot_size=lot)
        write_events(out, data)
    except QuotewiseError as exc:
        _fail(exc)
    summary = info(data)
    console.print(f"wrote {len(data.events):,} events to [bold]{out}[/]")
    _print_info(summary)


def _print_info(summary: dict) -> None:
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        table.add_row(
            str(key), json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
        )
    console.print(table)


@data_app.command("info")
def data_info(
    source: Annotated[
        Path, typer.Argument(help="a .parquet file written by `mm data convert`, or a raw file")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="format of a raw file (default: detect)")
    ] = None,
    tick: Annotated[float | None, typer.Option(help="tick size (default: stored or inferred)")] = None,
    lot: Annotated[float | None, typer.Option(help="lot size (default: stored or inferred)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Instrument, time span, event counts and the reader's report for a data file."""
    try:
        from quotewise.data.convert import info, load_source

        summary = info(load_source(source, fmt, tick_size=tick, lot_size=lot))
    except QuotewiseError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print_info(summary)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a backtest output directory")]) -> None:
    """Regenerate report.html for a backtest run."""
    try:
        from quotewise.analytics.report import write_report

        path = write_report(run_dir)
    except QuotewiseError as exc:
        _fail(exc)
    console.print(f"Report: [bold]{path}[/]")


if __name__ == "__main__":
    app()
