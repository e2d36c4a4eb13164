"""The ``mm`` command."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from quotewise.cli_live import register as register_live_commands
from quotewise.cli_model import model_app
from quotewise.cli_settings import STRATEGIES, ConfigFile, Pairs, flag, given, with_settings
from quotewise.cli_venue import venue_app
from quotewise.console import compile_notice, console, err_console, fail, warn
from quotewise.errors import ConfigError, QuotewiseError, RunError
from quotewise.settings import DEFAULT_STRATEGY, parse_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from quotewise.data.store import EventData

app = typer.Typer(
    help="Quotewise: market making with a backtest you can trust.", no_args_is_help=True, add_completion=False
)
data_app = typer.Typer(help="Convert and inspect market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(venue_app, name="venue")
app.add_typer(model_app, name="model")
register_live_commands(app)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"mm (quotewise) {version('quotewise')}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the installed version and exit"
        ),
    ] = False,
) -> None:
    """The installed version on request: what a bug report or a live deployment needs to name."""


def print_warnings(report: dict) -> None:
    """Every warning of a reader's report on stderr: what it skipped or assumed must not pass unseen."""
    for text in report.get("warnings", []):
        warn(text)


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
    from quotewise.analytics.report import fmt_money

    return fmt_money(x, missing="n/a")


def print_summary(summary: dict, out_dir: Path | None) -> None:
    inst = summary["instrument"]
    table = Table(
        title=f"Backtest: {summary['strategy']} on {inst['symbol']} ({summary['data']})", show_header=False
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    units = summary.get("units") or {}
    money, size = units.get("total_pnl", ""), units.get("traded_volume", "")
    quote = units.get("total_pnl_quote", money)
    rows = [
        (f"Total P&L ({money})", _money(summary["total_pnl"])),
        (f"Fees, paid +, rebate - ({money})", _money(summary["fees"])),
        ("Fills", f"{summary['fills']:,}"),
        (f"Traded volume ({size})", f"{summary['traded_volume']:,.6g}"),
        (f"Traded notional ({money})", _money(summary.get("traded_notional"))),
        (f"Final position ({size})", f"{summary['final_position']:,.6g}"),
        (f"Max |position| ({size})", f"{summary['max_abs_position']:,.6g}"),
        (
            "Orders placed / cancels / rejects",
            f"{summary['orders_placed']:,} / {summary['cancels']:,} / {summary['rejects']:,}",
        ),
        ("Events", f"{summary['events']:,}"),
        ("Wall time", f"{summary['wall_seconds']:.2f} s"),
        ("Events per second", f"{summary['events_per_second']:,.0f}"),
        ("Period", f"{summary['start']} -> {summary['end']}"),
    ]
    if quote != money:  # an inverse contract: the coin figures in the quote currency as well
        rows[1:1] = [
            (f"Total P&L in {quote}, at the final mid", _money(summary.get("total_pnl_quote"))),
            (f"Traded notional in {quote}", _money(summary.get("traded_notional_quote"))),
        ]
    risk = summary.get("risk") or {}
    if risk.get("config") is not None:
        taken = ", ".join(f"{n} {action}" for action, n in risk["actions"].items() if n)
        rows.append(("Risk actions", taken or "none"))
    settled = summary.get("settlement")
    if settled:
        rows.insert(
            1, (f"Settled at {settled['price']:g} a share ({settled['source']})", _money(settled["pnl"]))
        )
    attribution = summary.get("attribution")
    if attribution:
        names = ["spread", "inventory", "fees"] + (["settlement"] if settled else [])
        parts = [attribution["spread_capture"], attribution["inventory"], attribution["fees"]]
        parts += [attribution["settlement"]] if settled else []
        rows.append((f"P&L = {' + '.join(names)}", " + ".join(_money(x) for x in parts)))
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
    """One backtest of a comparison: a label, a strategy name and its settings (strategy params,
    risk limits and venue settings by name)."""

    label: str
    strategy: str
    settings: dict[str, object]


def run_specs(
    strategies: list[str], settings: dict[str, object], config: Path | None, sweep: Path | None
) -> list[RunSpec]:
    """What to run: a sweep file, or each --strategy (or the config's) with the config's settings,
    then the flags and --set."""
    if sweep is not None:
        if strategies or config is not None:
            raise ConfigError(
                "--sweep lists its own strategies; do not combine it with --strategy or --config"
            )
        return _sweep_specs(sweep, settings)
    params: dict[str, object] = {}
    if config is not None:
        from quotewise.settings import load_config

        name, params = load_config(config)
        strategies = strategies or [name]
    names = strategies or [DEFAULT_STRATEGY]
    if len(set(names)) != len(names):
        raise ConfigError(f"--strategy given twice: {names}")
    from quotewise.sweep import strategy_label

    return [RunSpec(strategy_label(n), n, {**params, **settings}) for n in names]


def _sweep_specs(path: Path, settings: dict[str, object]) -> list[RunSpec]:
    from quotewise.settings import read_yaml
    from quotewise.sweep import sweep_runs

    doc = read_yaml(path, "sweep file")
    if isinstance(doc, dict) and {"data", "grid"} & set(doc):
        raise ConfigError(f"{path} names data or a grid: run it with mm sweep {path}")
    runs = sweep_runs(doc, path)
    return [RunSpec(name, strategy, {**params, **settings}) for name, strategy, params in runs]


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
    """One row per run; the csv module quotes a run name with a comma or a quote in it (sweep names
    are free text), so it stays one field."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ("run", "strategy", *COMPARE_COLUMNS)
    with (out_dir / "comparison.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([r[c] for c in columns] for r in rows)


def _listing(specs: list[RunSpec]) -> dict[str, object]:
    """The data's listing as the runs change it (fees, contract, minimums): the data is read once,
    so every run must state the same."""
    from quotewise.settings import LISTING_FIELDS

    listings = [{k: v for k, v in spec.settings.items() if k in LISTING_FIELDS} for spec in specs]
    if any(other != listings[0] for other in listings[1:]):
        raise ConfigError(
            "the runs change the data's listing differently (fees, contract, minimums): the data is read "
            "once, so give them as flags for every run"
        )
    return listings[0]


@app.command()
@with_settings()
def backtest(
    data: Annotated[
        str,
        typer.Option(
            help="data file (any supported format), a,b for consecutive files, or 'synthetic' "
            "(--events long) / synthetic:N"
        ),
    ] = "synthetic",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="lobster|binance|tardis|hftbacktest|polymarket|kalshi|parquet (default: detect)"
        ),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(help=f"{STRATEGIES} (default {DEFAULT_STRATEGY}); repeat to compare several"),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="the run's name: its folder under runs/ unless --out is given")
    ] = None,
    settings: Pairs = None,
    config: ConfigFile = None,
    sweep: Annotated[
        Path | None, typer.Option(help="YAML file with a 'runs:' list of {name, strategy, params}")
    ] = None,
    portfolio: Annotated[
        Path | None,
        typer.Option(help="YAML file of several instruments run as one hedged book (docs/portfolio.md)"),
    ] = None,
    tick: Annotated[float | None, typer.Option(help="tick size (default: from the data)")] = None,
    lot: Annotated[float | None, typer.Option(help="lot size (default: from the data)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic market")] = 0,
    events: Annotated[int, typer.Option(help="length of the synthetic market, in events")] = 2_000_000,
    out: Annotated[
        Path | None, typer.Option(help="output directory (default: runs/<name or strategy>-<time>)")
    ] = None,
    market: Annotated[
        list[str] | None,
        typer.Option(
            help="the market of a file that holds several: a Polymarket capture's token id, a Kalshi "
            "capture's ticker, or a many-market table's slug (repeat for several)"
        ),
    ] = None,
    markets: Annotated[
        int | None,
        typer.Option(help="a many-market table: the N resolved markets with the most snapshots", min=1),
    ] = None,
    resolve: Annotated[
        str | None,
        typer.Option(
            help="a binary-outcome market's result: yes, no, or a file saying which; the final position "
            "is settled at 1 or 0 per share (default: the data's market_resolved, if any)"
        ),
    ] = None,
    neg_risk: Annotated[
        bool,
        typer.Option(
            "--neg-risk",
            help="a many-market table: run whole negative-risk events (every outcome of a question, one "
            "YES): --markets N events, or the events of the --market slugs",
        ),
    ] = False,
    report: Annotated[bool, typer.Option(help="write report.html")] = True,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    debug: Annotated[bool, typer.Option(help="print the full traceback when a strategy raises")] = False,
    **flags: Any,
) -> None:
    """Run market-making backtests; write summary.json, fills/orders/equity Parquet and report.html.

    Every strategy setting, risk limit and venue setting is a flag, the same as on mm start and
    mm config; distances are in ticks unless a unit says otherwise (2, 2ticks, 5bp, 0.05px),
    durations in ms unless a unit says otherwise (5000, 5s, 1h). With several strategies (repeat
    --strategy, or --sweep FILE) each run gets its own folder under --out and a comparison table is
    written to comparison.csv.
    """
    try:
        import quotewise.api as qw
        from quotewise.settings import LISTING_FIELDS

        if portfolio is not None:
            from quotewise.portfolio.command import portfolio_backtest, refuse_single_run_options

            single = {"--data": data != "synthetic", "--strategy": strategy, "--sweep": sweep}
            single |= {"--config": config, "--events": events != 2_000_000, "--seed": seed}
            single |= {"--market": market, "--markets": markets, "--resolve": resolve, "--neg-risk": neg_risk}
            single |= {"--tick": tick, "--lot": lot, "settings": given(flags, settings)}
            refuse_single_run_options(single)
            portfolio_backtest(portfolio, out, name, quiet)
            return
        specs = run_specs(strategy or [], given(flags, settings), config, sweep)
        for spec in specs:  # every setting checked before the data is read
            qw.check_settings(spec.strategy, spec.settings, flag)
        listing = _listing(specs)
        if _many_markets(data, market, markets):
            if listing:
                raise ConfigError(f"{', '.join(sorted(listing))}: the many-market table sets its own listing")
            _run_markets(data, market, markets, specs, out, name, report, quiet, neg_risk)
            return
        if neg_risk:
            raise ConfigError(
                "--neg-risk groups the outcome markets of a many-market table into events; one capture is "
                "one market (its settlement is its own)"
            )
        compile_notice()  # the arguments are good: the wait that may come is compiling, not a hang
        picked = market[0] if market else None
        src = qw.load(
            data, events=events, seed=seed, format=fmt, tick=tick, lot=lot, market=picked, **listing
        )
        print_warnings(src.report)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        label = specs[0].label if len(specs) == 1 else "compare"
        base = out or Path("runs") / (name or f"{label}-{stamp}")
        results = []
        for spec in specs:
            out_dir = base if len(specs) == 1 else base / spec.label
            run = {k: v for k, v in spec.settings.items() if k not in LISTING_FIELDS}
            if quiet:
                result = qw.backtest(src, spec.strategy, out=out_dir, report=report, resolve=resolve, **run)
            else:
                with _progress() as bar:
                    task = bar.add_task(spec.label, total=src.n_events)
                    result = qw.backtest(
                        src,
                        spec.strategy,
                        out=out_dir,
                        report=report,
                        resolve=resolve,
                        progress=lambda n, t=task: bar.update(t, completed=n),
                        **run,
                    )
            results.append((spec, result))
    except RunError as exc:
        if debug:
            err_console.print(exc.traceback, markup=False, highlight=False)
        log = f" (traceback: {exc.log})" if exc.log is not None else " (--debug prints the traceback)"
        fail(f"{exc}{log}", code=1)
    except QuotewiseError as exc:
        fail(exc)
    if len(results) == 1:
        print_summary(results[0][1].summary, results[0][1].out_dir)
        return
    rows = [
        {"run": spec.label, "strategy": spec.strategy, **{c: r.summary[c] for c in COMPARE_COLUMNS}}
        for spec, r in results
    ]
    write_comparison(rows, base)
    print_comparison(rows, base)


def _many_markets(data: str, market: list[str] | None, markets: int | None) -> bool:
    """Whether ``data`` is a many-market table (then --market/--markets pick what runs)."""
    from quotewise.data.polymarket_quotes import is_quotes_table

    table = Path(data).suffix == ".parquet" and is_quotes_table(data)
    if markets and not table:
        raise ConfigError(f"--markets picks markets of a many-market table; {data} is not one")
    if market and len(market) > 1 and not table:
        raise ConfigError(f"{data} is backtested one market at a time: give one --market")
    return table


def _run_markets(
    data: str,
    market: list[str] | None,
    markets: int | None,
    specs: list[RunSpec],
    out: Path | None,
    name: str | None,
    report: bool,
    quiet: bool,
    neg_risk: bool,
) -> None:
    """Each market of the table backtested and settled; per-market and total results printed (with
    ``neg_risk``, whole events and their table)."""
    import quotewise.api as qw
    from quotewise.backtest.markets import MARKETS_HTML, run_events, run_markets
    from quotewise.data.polymarket_quotes import pick_events, pick_markets

    if len(specs) != 1:
        raise ConfigError("many markets run one strategy: give one --strategy")
    events = pick_events(data, market, markets) if neg_risk else None
    chosen = [m for e in events for m in e.markets] if events else pick_markets(data, market, markets)
    base = out or Path("runs") / (name or f"markets-{datetime.now(UTC):%Y%m%d-%H%M%S}")
    compile_notice()
    with _progress() as bar:
        task = bar.add_task("markets", total=len(chosen))

        def one(source: Any, run_dir: Path) -> Any:
            return qw.backtest(source, specs[0].strategy, out=run_dir, report=report, **specs[0].settings)

        tick = None if quiet else (lambda n, _slug: bar.update(task, completed=n))
        if events:
            result = run_events(data, events, one, base, progress=tick)
        else:
            result = run_markets(data, chosen, one, base, progress=tick)
    t = result["totals"]
    table = Table(title=f"{t['markets']} markets ({t['markets_traded']} traded)", show_header=False)
    for label, key in (
        ("Total P&L", "total_pnl"),
        ("spread capture", "spread_capture"),
        ("inventory", "inventory"),
    ):
        table.add_row(label, _money(t[key]))
    table.add_row("fees", _money(t["fees"]))
    table.add_row("settlement", _money(t["settlement"]))
    table.add_row("fills", f"{t['fills']:,}")
    table.add_row("mean Brier score of the mids", "n/a" if t["brier"] is None else f"{t['brier']:.4f}")
    console.print(table)
    for e in result.get("events", []):
        coherent = "n/a" if e["mean_sum_of_mids"] is None else f"{e['mean_sum_of_mids']:.3f}"
        console.print(
            f"event {e['event']!r}: {e['outcomes']} outcomes, P&L {_money(e['total_pnl'])}, worst settlement "
            f"{e['worst_settlement']:+g} shares, mean sum of YES mids {coherent}"
        )
    console.print(f"Per market: [bold]{base / 'markets.csv'}[/]; overview: [bold]{base / MARKETS_HTML}[/]")


@app.command()
def sweep(
    file: Annotated[
        Path, typer.Argument(help="YAML: runs (as --sweep takes them), data (files), grid, events")
    ],
    out: Annotated[
        Path, typer.Option(help="output directory: a folder per run, comparison.parquet and report.html")
    ],
    jobs: Annotated[int, typer.Option(help="backtests at a time, one process each")] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="run on Ray instead: --ray alone starts a local one, --ray ADDRESS joins a cluster "
            "(pip install 'quotewise[ray]')",
        ),
    ] = None,
    heatmap: Annotated[
        str | None,
        typer.Option(
            help="X,Y: the report's heatmap of --metric over these two settings (default: the grid's "
            "first two)"
        ),
    ] = None,
    metric: Annotated[
        str, typer.Option(help="the figure the report ranks runs by and the heatmap shows")
    ] = "total_pnl",
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Every run of FILE (crossed with its grid) on every data file, JOBS at a time; a run already
    finished in OUT is not run again, so a sweep stopped halfway finishes the rest when run again.
    Writes OUT/comparison.parquet and OUT/report.html (runs ranked by --metric, a heatmap)."""
    from quotewise.sweep import ROW_FILE, TABLE_FILE, grid_names, load_sweep, run_sweep
    from quotewise.sweep_report import check_metric, heatmap_axes, ranked, write_sweep_report

    try:
        runs = load_sweep(file)
        check_metric(metric)
        axes = heatmap_axes(runs, heatmap, grid_names(file))
        finished = sum((out / r.folder / ROW_FILE).exists() for r in runs)
        if finished:
            console.print(f"{finished} of {len(runs)} runs already finished in {out}: running the rest")
        compile_notice()
        with _progress() as bar:
            task = bar.add_task("sweep", total=len(runs))
            table = run_sweep(
                runs, out, jobs, None if quiet else lambda n, _name: bar.update(task, completed=n), ray=ray
            )
        report = write_sweep_report(out, table, metric, axes)
    except RunError as exc:
        fail(f"{exc} (traceback: {exc.log})" if exc.log is not None else str(exc), code=1)
    except QuotewiseError as exc:
        fail(exc)
    from rich.markup import escape  # run names hold [grid values], not markup

    best = ranked(table, metric).head(5)
    view = Table(title=f"best of {len(table)} runs by {metric}")
    for col in ("name", metric, "fills", "max_abs_position"):
        view.add_column(col)
    for _, row in best.iterrows():
        view.add_row(
            escape(str(row["name"])),
            f"{row[metric]:,.4g}",
            f"{row['fills']:,}",
            f"{row['max_abs_position']:g}",
        )
    console.print(view)
    top = best.iloc[0]
    console.print(f"Best: [bold]{escape(str(top['name']))}[/] ({metric} {top[metric]:,.6g})")
    console.print(f"Table: [bold]{out / TABLE_FILE}[/]; report: [bold]{report}[/]")


@app.command()
def tune(
    file: Annotated[
        Path,
        typer.Argument(help="YAML: strategy, params, space, objective, data, split, trials (docs/sweep.md)"),
    ],
    out: Annotated[
        Path, typer.Option(help="output directory: trials.parquet, best.json, report.html, runs/")
    ],
    trials: Annotated[int | None, typer.Option(help="trials to run (default: the file's)", min=1)] = None,
    jobs: Annotated[
        int, typer.Option(help="trials at a time (Optuna asked for this many at once), one process each")
    ] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="run on Ray instead: --ray alone starts a local one, --ray ADDRESS joins a cluster "
            "(pip install 'quotewise[ray]')",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="the sampler's seed: with it the search repeats (default: random)")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Tune a strategy's settings with Optuna (TPE) on the earlier part of the data, then score the
    best trials on the later, held-out part: a fall from fit to held out is overfitting."""
    from quotewise.tune import load_tune, run_count
    from quotewise.tune import tune as run_tune

    try:
        spec = load_tune(file, trials)
        compile_notice()
        with _progress() as bar:
            task = bar.add_task("tune", total=run_count(spec))
            result = run_tune(
                spec, out, jobs, ray, seed, None if quiet else lambda n, _name: bar.update(task, completed=n)
            )
    except RunError as exc:
        fail(f"{exc} (traceback: {exc.log})" if exc.log is not None else str(exc), code=1)
    except QuotewiseError as exc:
        fail(exc)
    best = result.best
    view = Table(title=f"top trials by fit ({best['objective_formula']})")
    for col in ("trial", "settings", "fit", "held out"):
        view.add_column(col)
    for entry in best["top"]:
        view.add_row(
            f"#{entry['trial']}",
            json.dumps(entry["params"]),
            _score(entry["fit_objective"]),
            _score(entry["held_out_objective"]),
        )
    console.print(view)
    console.print(f"Best: trial #{best['trial']} {json.dumps(best['params'])}")
    console.print(
        f"  fit {_score(best['fit_objective'])} on {', '.join(best['fit_data'])}; "
        f"held out {_score(best['held_out_objective'])} on {', '.join(best['held_out_data'])}"
    )
    console.print(
        f"Trials: [bold]{out / 'trials.parquet'}[/]; best: [bold]{out / 'best.json'}[/]; "
        f"report: [bold]{out / 'report.html'}[/]"
    )


def _score(value: float | None) -> str:
    return "undefined" if value is None else f"{value:,.6g}"


@data_app.command("convert")
def data_convert(
    source: Annotated[str, typer.Argument(help="input file or directory, or a,b for consecutive files")],
    out: Annotated[
        Path, typer.Option(help="output file: .parquet (normalized events) or .npz (hftbacktest)")
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="lobster|binance|tardis|hftbacktest|polymarket|kalshi (default: detect)"
        ),
    ] = None,
    tick: Annotated[float | None, typer.Option(help="tick size (default: inferred)")] = None,
    lot: Annotated[float | None, typer.Option(help="lot size (default: inferred)")] = None,
) -> None:
    """Read a market-data file and write normalized events to Parquet, or an hftbacktest .npz."""
    try:
        from quotewise.backtest.source import data_paths
        from quotewise.data.convert import info, load_source

        write = _event_writer(out)
        with err_console.status(f"reading {source}"):
            data = load_source(data_paths(source), fmt, tick_size=tick, lot_size=lot)
        out.parent.mkdir(parents=True, exist_ok=True)
        write(data, out)
    except QuotewiseError as exc:
        fail(exc)
    print_warnings(data.report)
    summary = info(data)
    console.print(f"wrote {len(data.events):,} events to [bold]{out}[/]")
    if out.suffix == ".npz":
        inst = data.instrument
        console.print(
            f"an .npz keeps no tick or lot: read it with --tick {inst.tick_size} --lot {inst.lot_size}"
        )
    _print_info(summary)


def _event_writer(out: Path) -> Callable[[EventData, Path], Path]:
    """The writer the output's suffix asks for, checked before the (slow) read: a Parquet file under
    another name would only fail later, in whatever tool opens it."""
    if out.suffix == ".parquet":
        from quotewise.data.store import write_events

        return lambda data, path: write_events(path, data)
    if out.suffix == ".npz":
        from quotewise.data.hftbacktest import write_hftbacktest_npz

        return write_hftbacktest_npz
    raise ConfigError(f"--out {out}: write a .parquet (normalized events) or a .npz (hftbacktest) file")


def _print_info(summary: dict) -> None:
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in summary.items():
        table.add_row(
            str(key), json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
        )
    console.print(table)


RECORDABLE = ("polymarket",)


@data_app.command("record")
def data_record(
    venue: Annotated[str, typer.Argument(help="the venue whose market channel to record: polymarket")],
    tokens: Annotated[list[str], typer.Argument(help="token ids (a market's YES and NO, or several)")],
    out: Annotated[Path, typer.Option("--out", help="capture file to write (.gz: gzip)")],
    duration: Annotated[
        str | None, typer.Option("--duration", help="stop after this long, e.g. 10m (default: Ctrl-C)")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="another host, e.g. an emulator's http://127.0.0.1:PORT")
    ] = None,
) -> None:
    """Record the venue's live market channel to a capture file `mm backtest --data` reads."""
    import asyncio

    from quotewise.data.record import Recording, market_ws_url, record_polymarket
    from quotewise.parsing import parse_duration

    if venue not in RECORDABLE:
        fail(f"unknown venue {venue!r}: mm data record speaks {', '.join(RECORDABLE)}")
    try:
        seconds = None if duration is None else parse_duration(duration, "--duration") / 1e9
        url = market_ws_url(endpoint)
    except QuotewiseError as exc:
        fail(exc)
    if out.exists():
        fail(f"{out} exists: a recording never overwrites one (choose another --out)")
    err_console.print(f"recording {len(tokens)} token(s) from {url} to {out} (Ctrl-C stops)")

    def progress(stats: Recording) -> None:
        if stats.messages % 500 == 0:
            err_console.print(f"  {stats.messages:,} messages, {stats.bytes / 1e6:.1f} MB")

    stats = Recording()
    try:
        asyncio.run(record_polymarket(tokens, out, url, seconds, progress, stats))
    except KeyboardInterrupt:
        pass
    except QuotewiseError as exc:
        fail(exc)
    typer.echo(f"wrote {out}: {stats.messages:,} messages, {stats.reconnects} reconnect(s)")


@data_app.command("info")
def data_info(
    source: Annotated[
        str,
        typer.Argument(
            help="a .parquet file written by `mm data convert`, a raw file, or a,b for consecutive files"
        ),
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
        from quotewise.backtest.source import data_paths
        from quotewise.data.convert import info, load_source
        from quotewise.data.polymarket_quotes import is_quotes_table, table_info

        if source.endswith(".parquet") and is_quotes_table(source):
            summary = table_info(source)  # many markets: what --markets and --market pick from
            typer.echo(json.dumps(summary, indent=2) if as_json else _table_lines(summary))
            return
        summary = info(load_source(data_paths(source), fmt, tick_size=tick, lot_size=lot))
    except QuotewiseError as exc:
        fail(exc)
    print_warnings(summary["report"])
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print_info(summary)


@data_app.command("toxicity")
def data_toxicity(
    source: Annotated[str, typer.Argument(help="a data file (any format mm data reads), or a,b")],
    lead: Annotated[
        str | None, typer.Option(help="the lead instrument's data (e.g. the USD-M perpetual for spot)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Toxic-flow detectors on a file: VPIN, sweeps, size outliers and, with --lead, lead-lag bursts."""
    try:
        from quotewise.api import load
        from quotewise.signals.toxicity import scan

        summary = scan(load(source), None if lead is None else load(lead))
    except QuotewiseError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for name, part in summary.items():
        if isinstance(part, dict):
            typer.echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in part.items()))
        else:
            typer.echo(f"{name}: {part}")


def _table_lines(summary: dict[str, Any]) -> str:
    top = ", ".join(f"{m['slug']} ({m['snapshots']})" for m in summary["most_snapshots"])
    return (
        f"{summary['markets']:,} markets, {summary['resolved']:,} with a trusted resolution, "
        f"{summary['snapshots']:,} snapshots\nmost snapshots: {top}\n"
        "backtest them with mm backtest --data FILE --markets N (or --market SLUG)"
    )


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a backtest output directory")]) -> None:
    """Recompute attribution and metrics into summary.json and regenerate report.html for a run."""
    try:
        from quotewise.analytics.analyze import summarize_run
        from quotewise.analytics.report import write_report

        summarize_run(run_dir)
        path = write_report(run_dir)
    except QuotewiseError as exc:
        fail(exc)
    console.print(f"Report: [bold]{path}[/]")


sim_app = typer.Typer(help="Model-world simulations from the market-making literature.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


@sim_app.command("as2008")
def sim_as2008(
    gamma: Annotated[float, typer.Option("--gamma", help="risk aversion")] = 0.1,
    k: Annotated[float, typer.Option("--k", help="decay of order arrivals with distance from the mid")] = 1.5,
    arrival: Annotated[float, typer.Option("--A", help="order arrival rate at the mid")] = 140.0,
    sigma: Annotated[float, typer.Option("--sigma", help="volatility of the mid")] = 2.0,
    s0: Annotated[float, typer.Option("--s0", help="initial mid")] = 100.0,
    horizon: Annotated[float, typer.Option("--T", help="horizon")] = 1.0,
    dt: Annotated[float, typer.Option("--dt", help="time step; T must be a whole number of steps")] = 0.005,
    q0: Annotated[int, typer.Option("--q0", help="initial inventory")] = 0,
    paths: Annotated[int, typer.Option("--paths", help="number of simulated paths")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random draws")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Avellaneda-Stoikov (2008): their inventory strategy against the symmetric one, on the same draws.

    Defaults are the paper's section 3.3; the table is laid out like the paper's tables.
    """
    try:
        from quotewise.sim.as2008 import AS2008Params, simulate

        params = AS2008Params(
            s0=s0, T=horizon, sigma=sigma, dt=dt, A=arrival, k=k, gamma=gamma, q0=q0, paths=paths
        )
        result = simulate(params, seed)
    except QuotewiseError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"Avellaneda-Stoikov (2008): {paths:,} paths, gamma={gamma:g}, seed {seed}")
    for header in ("Strategy", "Average spread", "Profit", "Std(Profit)", "Final q", "Std(Final q)"):
        table.add_column(header, justify="left" if header == "Strategy" else "right")
    for name, row in result["strategies"].items():
        table.add_row(
            name.capitalize(),
            f"{row['mean_spread']:.2f}",
            f"{row['profit_mean']:.2f}",
            f"{row['profit_std']:.2f}",
            f"{row['final_q_mean']:.3f}",
            f"{row['final_q_std']:.2f}",
        )
    console.print(table)


@sim_app.command("options")
def sim_options(
    spot: Annotated[float, typer.Option("--spot", help="the underlying's price at the start")] = 100.0,
    strike: Annotated[
        float | None, typer.Option("--strike", help="strike (default: the spot, at the money)")
    ] = None,
    expiry: Annotated[str, typer.Option("--expiry", help="time to expiry, e.g. 30d, 12h, 0.25y")] = "30d",
    kind: Annotated[str, typer.Option("--type", help="call or put")] = "call",
    implied: Annotated[
        float, typer.Option("--implied", help="implied vol: pricing, hedging and quoting")
    ] = 0.5,
    realised: Annotated[
        list[str] | None,
        typer.Option(
            "--realised", help="realised vol of the underlying; repeat or comma list (default 0.6,0.5,0.4)"
        ),
    ] = None,
    rate: Annotated[float, typer.Option("--rate", help="interest rate per year, continuous")] = 0.0,
    paths: Annotated[int, typer.Option("--paths", help="number of simulated paths")] = 2000,
    steps: Annotated[int, typer.Option("--steps", help="hedging (and quoting) steps to expiry")] = 720,
    flow: Annotated[float, typer.Option("--flow", help="option buyers and sellers per day, each side")] = 5.0,
    vol_spread: Annotated[
        float, typer.Option("--vol-spread", help="the market maker's bid-ask width in vol, e.g. 0.02")
    ] = 0.02,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random draws")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Delta hedging an option at its implied vol while the market realises another, against the
    gamma-P&L identity; and an option market maker quoting it (docs/options.md)."""
    try:
        from quotewise.options.expiry import parse_expiry
        from quotewise.options.sim import OptionsSimParams, parse_vols, simulate

        params = OptionsSimParams(
            spot=spot,
            strike=strike,
            expiry=parse_expiry(expiry),
            implied=implied,
            realised=parse_vols(realised or ["0.6,0.5,0.4"], "--realised"),
            rate=rate,
            kind=kind,
            paths=paths,
            steps=steps,
            flow=flow,
            vol_spread=vol_spread,
        )
        result = simulate(params, seed)
    except QuotewiseError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    option = f"{kind} K={params.option.strike:g}, {expiry}, implied {implied:g}"
    table = Table(title=f"Delta-hedged long {option}: {paths:,} paths, {steps} steps, seed {seed}")
    for header in ("Realised", "Mean P&L", "Stderr", "Theory (path gamma)", "BS(realised) - BS(implied)"):
        table.add_column(header, justify="right")
    for row in result["gaps"]:
        values = (row["mean_pnl"], row["stderr"], row["theory"], row["closed_form"])
        table.add_row(f"{row['realised']:g}", *(f"{x:.4f}" for x in values))
    console.print(table)
    maker = Table(title=f"Option market maker: {flow:g} buyers and sellers a day, width {vol_spread:g} vol")
    for header in ("Realised", "P&L", "Stderr", "Spread capture", "Inventory P&L", "Fills", "Hedges"):
        maker.add_column(header, justify="right")
    for row in result["market_maker"]["results"]:
        values = (row["mean_pnl"], row["stderr"], row["spread_capture"], row["inventory_pnl"])
        counts = (row["fills_per_path"], row["hedges_per_path"])
        maker.add_row(f"{row['realised']:g}", *(f"{x:.4f}" for x in values), *(f"{x:.1f}" for x in counts))
    console.print(maker)


@app.command()
def quote(
    strategy: Annotated[
        str | None,
        typer.Option(help="strategy name or path/to/file.py:Class (default: the config's, or skew)"),
    ] = None,
    mid: Annotated[float | None, typer.Option(help="mid price (a two-tick market around it)")] = None,
    bid: Annotated[float | None, typer.Option(help="best bid (with --ask, instead of --mid)")] = None,
    ask: Annotated[float | None, typer.Option(help="best ask (with --bid)")] = None,
    bid_size: Annotated[float, typer.Option(help="size at the best bid, in lots")] = 1.0,
    ask_size: Annotated[float, typer.Option(help="size at the best ask, in lots")] = 1.0,
    inventory: Annotated[float, typer.Option(help="current position, instrument units")] = 0.0,
    sigma: Annotated[float | None, typer.Option("--sigma", help="volatility, price per sqrt second")] = None,
    gamma: Annotated[float | None, typer.Option("--gamma", help="risk aversion")] = None,
    intensity_a: Annotated[float | None, typer.Option("--A", help="fill intensity at depth 0, 1/s")] = None,
    intensity_k: Annotated[float | None, typer.Option("--k", help="fill intensity decay, 1/price")] = None,
    tick: Annotated[float, typer.Option(help="tick size")] = 0.01,
    lot: Annotated[float, typer.Option(help="lot size")] = 1.0,
    maker_fee: Annotated[str, typer.Option(help="maker fee, e.g. -0.2bp (negative = rebate)")] = "0",
    taker_fee: Annotated[str, typer.Option(help="taker fee, e.g. 0.5bp")] = "0",
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="strategy parameter key=value (repeatable)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file with 'strategy:' and 'params:'; flags and --set override")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    spot: Annotated[
        float | None, typer.Option(help="--strategy option: the underlying's price (black76: the forward)")
    ] = None,
    strike: Annotated[float | None, typer.Option(help="--strategy option: strike")] = None,
    expiry: Annotated[
        str | None, typer.Option(help="--strategy option: time to expiry, e.g. 30d, 12h, 0.25y (bare: years)")
    ] = None,
    vol: Annotated[
        float | None, typer.Option(help="--strategy option: volatility per year, e.g. 0.5")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="--strategy option: interest rate per year, continuous (default 0)")
    ] = None,
    option_type: Annotated[str | None, typer.Option("--type", help="--strategy option: call or put")] = None,
    price: Annotated[
        float | None, typer.Option(help="--strategy option: a market price: print its implied vol (no --vol)")
    ] = None,
    dividend: Annotated[
        float | None, typer.Option(help="--strategy option: dividend yield or carry per year (bs only)")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="--strategy option: bs (Black-Scholes) or black76 (default bs)")
    ] = None,
) -> None:
    """Print the quotes a strategy would post for a given book and inventory, before risking money.

    --strategy option prices a European option instead (docs/options.md): price and greeks at --vol,
    or the implied vol of --price and the greeks at it."""
    option_flags = {"spot": spot, "strike": strike, "expiry": expiry, "vol": vol, "rate": rate}
    option_flags.update(option_type=option_type, price=price, dividend=dividend, model=model)
    if strategy == "option":
        _print_option_quote(option_flags, as_json)
        return
    if any(v is not None for v in option_flags.values()):
        from quotewise.options.quote import OPTION_FLAGS

        given_flags = ", ".join(OPTION_FLAGS[k] for k, v in option_flags.items() if v is not None)
        fail(f"{given_flags}: only --strategy option reads these")
    try:
        from quotewise.quoting.preview import quote_preview

        params: dict[str, object] = {}
        name = "skew"
        if config is not None:
            from quotewise.settings import load_config, split_settings

            name, values = load_config(config)
            params = split_settings(values)[0]  # what quotes a strategy posts: its params alone
        strategy = strategy or name
        flags = {"sigma": sigma, "gamma": gamma, "A": intensity_a, "k": intensity_k}
        params = {**params, **{k: v for k, v in flags.items() if v is not None}}
        params.update(parse_settings(settings or []))
        out = quote_preview(
            strategy,
            params,
            mid=mid,
            bid=bid,
            ask=ask,
            bid_size=bid_size,
            ask_size=ask_size,
            inventory=inventory,
            tick=tick,
            lot=lot,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            missing_hint="give it (--sigma, --A, --k or --set)",
        )
    except QuotewiseError as exc:
        fail(exc)
    state = out["state"]
    bb, ba, mid_px = out["market"]["bid"], out["market"]["ask"], out["market"]["mid"]
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    table = Table(title=f"{out['strategy']}: market {bb:.10g} / {ba:.10g}, inventory {inventory:g}")
    for col in ("side", "level", "price", "size", "from mid", "ticks", "bp"):
        table.add_column(col, justify="left" if col == "side" else "right")
    for level_side in ("bid", "ask"):
        for i, q in enumerate(out[f"{level_side}s"]):
            dist = abs(q["price"] - mid_px)
            table.add_row(
                level_side,
                str(i + 1),
                f"{q['price']:.10g}",
                f"{q['size']:g}",
                f"{dist:.6g}",
                f"{dist / tick:.1f}",
                f"{dist / mid_px * 1e4:.2f}",
            )
    console.print(table if out["bids"] or out["asks"] else "no quotes: both sides are stopped")
    for key, value in state.items():
        console.print(f"  {key}: {value:.6g}" if isinstance(value, float) else f"  {key}: {value}")


def _print_option_quote(flags: dict[str, Any], as_json: bool) -> None:
    try:
        from quotewise.options.quote import option_quote

        out = option_quote(**flags)
    except QuotewiseError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    underlying = "forward" if out["model"] == "black76" else "spot"
    table = Table(
        title=f"{out['model']} {out['type']}: {underlying} {out[underlying]:g}, strike {out['strike']:g}, "
        f"{out['expiry_years']:.6g} years"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    for key in ("price", "implied_vol", "vol", "delta", "gamma", "vega", "theta", "rho"):
        if key in out and not (key == "vol" and "implied_vol" in out):
            table.add_row(key, f"{out[key]:.8g}")
    console.print(table)


# options whose value may be left out, and the value they then take (Typer has no optional values)
OPTIONAL_VALUES = {"--ray": "local"}


def with_optional_values(args: list[str]) -> list[str]:
    """``args`` with the implied value after an option of :data:`OPTIONAL_VALUES` given bare (last, or
    followed by another option): ``--ray --out D`` is ``--ray local --out D``."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        following = args[i + 1] if i + 1 < len(args) else None
        if arg in OPTIONAL_VALUES and (following is None or following.startswith("-")):
            out.append(OPTIONAL_VALUES[arg])
    return out


def run() -> None:
    """The ``mm`` command."""
    app(args=with_optional_values(sys.argv[1:]))


if __name__ == "__main__":
    run()
