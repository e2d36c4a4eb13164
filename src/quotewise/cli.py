"""The ``mm`` command."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
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


@dataclass
class RunSpec:
    """One backtest of a comparison: a label, a strategy name and its parameters."""

    label: str
    strategy: str
    params: dict[str, object]


def run_specs(
    strategies: list[str], settings: dict[str, object], config: Path | None, sweep: Path | None
) -> list[RunSpec]:
    """What to run: a sweep file, or each --strategy (or the config's) with the config's params and --set."""
    if sweep is not None:
        if strategies or config is not None:
            raise ConfigError(
                "--sweep lists its own strategies; do not combine it with --strategy or --config"
            )
        return _sweep_specs(sweep, settings)
    params: dict[str, object] = {}
    if config is not None:
        from quotewise.quoting.config import load_strategy_config

        name, params = load_strategy_config(config)
        strategies = strategies or [name]
    names = strategies or ["skew"]
    if len(set(names)) != len(names):
        raise ConfigError(f"--strategy given twice: {names}")
    return [RunSpec(_label(n), n, {**params, **settings}) for n in names]


def _label(strategy: str) -> str:
    return Path(strategy.rpartition(":")[2] if ":" in strategy else strategy).name


def _sweep_specs(path: Path, settings: dict[str, object]) -> list[RunSpec]:
    if not path.exists():
        raise ConfigError(f"sweep file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{path}: expected a 'runs:' list of {{name, strategy, params}} entries")
    specs = []
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or "strategy" not in run:
            raise ConfigError(f"{path}: run #{i + 1} needs a 'strategy'")
        unknown = set(run) - {"name", "strategy", "params"}
        if unknown:
            raise ConfigError(f"{path}: run #{i + 1} has unknown keys {sorted(unknown)}")
        label = str(run.get("name") or _label(run["strategy"]))
        specs.append(RunSpec(label, str(run["strategy"]), {**(run.get("params") or {}), **settings}))
    labels = [sp.label for sp in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{path}: run names must be unique, got {labels}")
    return specs


COMPARE_COLUMNS = (
    "total_pnl",
    "fees",
    "fills",
    "traded_volume",
    "max_abs_position",
    "final_position",
    "wall_seconds",
)
COMPARE_HEADERS = ("P&L", "fees", "fills", "volume", "max |pos|", "final pos", "wall s")


def print_comparison(rows: list[dict], out_dir: Path) -> None:
    table = Table(title="Comparison")
    table.add_column("run", style="bold")
    for header in COMPARE_HEADERS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(
            row["run"],
            *(f"{row[c]:,.4g}" if isinstance(row[c], float) else f"{row[c]:,}" for c in COMPARE_COLUMNS),
        )
    console.print(table)
    console.print(f"Comparison in [bold]{out_dir / 'comparison.csv'}[/]")


def write_comparison(rows: list[dict], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [",".join(("run", "strategy", *COMPARE_COLUMNS))]
    lines += [",".join(str(r[c]) for c in ("run", "strategy", *COMPARE_COLUMNS)) for r in rows]
    (out_dir / "comparison.csv").write_text("\n".join(lines) + "\n")


@app.command()
def backtest(
    data: Annotated[str, typer.Option(help="data file (any supported format) or 'synthetic'")] = "synthetic",
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="lobster|binance|tardis|hftbacktest|parquet (default: detect)"),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="symmetric | skew | path/to/file.py:Class | package.module:Class; repeat to compare several"
        ),
    ] = None,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="strategy parameter key=value (repeatable)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file with 'strategy:' and 'params:'; --set overrides")
    ] = None,
    sweep: Annotated[
        Path | None, typer.Option(help="YAML file with a 'runs:' list of {name, strategy, params}")
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
    """Run market-making backtests; write summary.json, fills/orders/equity Parquet and report.html.

    With several strategies (repeat --strategy, or --sweep FILE) each run gets its own folder under
    --out and a comparison table is written to comparison.csv.
    """
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
        specs = run_specs(strategy or [], parse_settings(settings or []), config, sweep)
        strats = [(spec, make_strategy(spec.strategy, spec.params)) for spec in specs]
        entry = parse_duration(latency_entry, "--latency-entry")
        response = parse_duration(latency_response, "--latency-response")
        feed = parse_duration(feed_latency, "--feed-latency")
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
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        base = out or Path("runs") / (
            f"{strats[0][1].name}-{stamp}" if len(strats) == 1 else f"compare-{stamp}"
        )
        results = []
        for spec, strat in strats:
            sim = SimConfig(
                entry_latency_ns=entry,
                response_latency_ns=response,
                feed_latency_ns=feed,
                queue=model,  # type: ignore[arg-type]
                queue_power=queue_power,
                interval_ns=strat.interval_ns,
            )
            out_dir = base if len(strats) == 1 else base / spec.label
            if quiet:
                result = run_backtest(src, strat, sim, out_dir, report=report)
            else:
                with _progress() as bar:
                    task = bar.add_task(spec.label, total=src.n_events)
                    result = run_backtest(
                        src,
                        strat,
                        sim,
                        out_dir,
                        progress=lambda n, t=task: bar.update(t, completed=n),
                        report=report,
                    )
            results.append((spec, result))
    except QuotewiseError as exc:
        _fail(exc)
    if len(results) == 1:
        print_summary(results[0][1].summary, results[0][1].out_dir)
        return
    rows = [
        {"run": spec.label, "strategy": spec.strategy, **{c: r.summary[c] for c in COMPARE_COLUMNS}}
        for spec, r in results
    ]
    write_comparison(rows, base)
    print_comparison(rows, base)


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
