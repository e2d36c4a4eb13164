"""The Python API: a backtest from a notebook in three lines, the same run ``mm backtest`` makes.

    import quotewise as qw
    r = qw.backtest(data="synthetic", strategy="skew", events=200_000, spread=2, max_pos=5)
    r.summary["total_pnl"], r.fills.head(), r.report("out.html")

Settings are keyword arguments with the names and units of the command line's flags (``spread=2``
is 2 ticks, ``interval=5000`` is 5 s; risk limits such as ``max_pos`` by their names, see
``mm backtest --help``). The command line is a layer over these functions.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quotewise.errors import ConfigError
from quotewise.settings import DEFAULT_STRATEGY, LISTING_FIELDS, split_settings, venue_settings

if TYPE_CHECKING:
    import pandas as pd

    from quotewise.backtest.runner import BacktestResult
    from quotewise.backtest.source import DataSource
    from quotewise.quoting.base import Strategy
    from quotewise.risk.config import RiskConfig

TABLES = ("fills", "orders", "equity", "risk_events")


def load(
    data: str = "synthetic",
    *,
    events: int = 2_000_000,
    seed: int = 0,
    format: str | None = None,
    tick: float | None = None,
    lot: float | None = None,
    market: str | None = None,
    **listing: Any,
) -> DataSource:
    """The market to replay: a data file (any format ``mm data`` reads; ``a,b`` for consecutive
    files), ``"synthetic"`` (``events`` long) or ``"synthetic:N"``. ``listing`` overrides the data's
    listing: ``maker_fee``, ``taker_fee``, ``contract``, ``contract_size``, ``min_size``,
    ``min_notional`` (docs/contracts.md). ``market`` picks one market of a file that holds several: a
    Polymarket capture's token id, a Kalshi capture's ticker."""
    from quotewise.backtest import source as sources
    from quotewise.data.synthetic import synthetic_events

    unknown = sorted(set(listing) - set(LISTING_FIELDS))
    if unknown:
        raise ConfigError(
            f"load() does not take {unknown}; the listing's settings are {list(LISTING_FIELDS)}"
        )
    venue = venue_settings(listing)
    if events <= 0:
        raise ConfigError(f"events must be positive, got {events}")
    n_synthetic = events if data == "synthetic" else synthetic_events(data)
    src = (
        sources.synthetic(n_synthetic, seed)
        if n_synthetic is not None
        else sources.from_path(sources.data_paths(data), format, tick, lot, symbol=market)
    )
    src.instrument = venue.listing(src.instrument)
    return src


def build_strategy(name: str = DEFAULT_STRATEGY, **params: Any) -> Strategy:
    """A strategy by name (a built-in, ``file.py:Class`` or ``package.module:Class``) with its
    settings validated; an error names the setting and what is wrong with it."""
    from quotewise.quoting.loader import make_strategy

    return make_strategy(name, params)


def check_settings(strategy: str, settings: Mapping[str, Any], name: Callable[[str], str] = str) -> None:
    """Check a run's settings without running it (the strategy's params, the risk limits, the venue
    settings); a ConfigError names what is wrong, each setting as ``name(setting)``."""
    from quotewise.risk.config import risk_config

    params, limits, venue = split_settings(settings)
    build_strategy(strategy, **params)
    risk_config(limits, name)
    venue_settings(venue, name)


class Backtest:
    """A finished backtest: ``summary`` (what ``summary.json`` holds), the ``fills``, ``orders``,
    ``equity`` and ``risk_events`` as pandas DataFrames with UTC timestamps, and :meth:`report`."""

    def __init__(self, result: BacktestResult) -> None:
        self._result = result

    @property
    def summary(self) -> dict[str, Any]:
        return self._result.summary

    @property
    def out_dir(self) -> Path | None:
        """Where the run's files are (None when it ran in memory)."""
        return self._result.out_dir

    def table(self, name: str) -> pd.DataFrame:
        """One output table (``fills``, ``orders``, ``equity``, ``risk_events``) as a DataFrame;
        every ``*ts`` column is a UTC timestamp."""
        import pandas as pd
        import pyarrow.parquet as pq

        if name not in TABLES:
            raise ConfigError(f"unknown table {name!r}; a backtest has {', '.join(TABLES)}")
        data = getattr(self._result, name)
        if data is None:
            assert self.out_dir is not None, "a run without an output directory keeps its tables"
            data = pq.read_table(self.out_dir / f"{name}.parquet")
        frame = data.to_pandas()
        for column in frame.columns:
            if column == "ts" or column.endswith("_ts"):
                frame[column] = pd.to_datetime(frame[column], unit="ns", utc=True)
        return frame

    @cached_property
    def fills(self) -> pd.DataFrame:
        return self.table("fills")

    @cached_property
    def orders(self) -> pd.DataFrame:
        return self.table("orders")

    @cached_property
    def equity(self) -> pd.DataFrame:
        return self.table("equity")

    @cached_property
    def risk_events(self) -> pd.DataFrame:
        return self.table("risk_events")

    def report(self, path: str | Path | None = None) -> Path:
        """Write the HTML report (to ``path``, or ``report.html`` in the run's directory) and return
        where it is."""
        from quotewise.analytics.report import write_report
        from quotewise.backtest.runner import write_outputs

        if self.out_dir is not None:
            written = write_report(self.out_dir)
            if path is None or Path(path).resolve() == written.resolve():
                return written
            return Path(shutil.copyfile(written, path))
        if path is None:
            raise ConfigError("this backtest ran in memory: give report() a path, e.g. r.report('out.html')")
        with tempfile.TemporaryDirectory(prefix="quotewise-report-") as tmp:
            write_outputs(self._result, Path(tmp), report=True)
            return Path(shutil.move(Path(tmp) / "report.html", path))

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<Backtest {s['strategy']} on {s['data']}: P&L {s['total_pnl']:.6g}, {s['fills']} fills, "
            f"{s['events']:,} events>"
        )


def backtest(
    data: str | DataSource = "synthetic",
    strategy: str | Strategy = DEFAULT_STRATEGY,
    *,
    events: int = 2_000_000,
    seed: int = 0,
    format: str | None = None,
    tick: float | None = None,
    lot: float | None = None,
    risk: Mapping[str, Any] | RiskConfig | None = None,
    out: str | Path | None = None,
    report: bool = False,
    progress: Callable[[int], None] | None = None,
    compiled: bool | None = None,
    resolve: str | None = None,
    **settings: Any,
) -> Backtest:
    """Run one market-making backtest and return its :class:`Backtest`.

    ``data`` is what :func:`load` takes (or a loaded source, to run several strategies on one
    market); ``strategy`` a name or a :class:`~quotewise.quoting.base.Strategy`; ``settings`` are the
    strategy's settings, risk limits (joined with ``risk``) and the simulated venue's settings by
    name: ``spread=2, interval="5s", max_pos=5, latency_entry="2ms", queue="prob", maker_fee="-0.2bp"``
    (``mm backtest --help`` lists them all). With ``out`` the outputs are written there as the run
    goes (and ``report.html`` with ``report=True``); without, they are kept in memory. ``resolve``
    (``"yes"``, ``"no"`` or a file saying which) settles a binary-outcome market's final position at 1
    or 0 per share; without it, a resolution in the data is used (docs/prediction-markets.md).
    """
    from quotewise.backtest.runner import run_backtest
    from quotewise.quoting.base import Strategy as StrategyBase
    from quotewise.risk.config import RiskConfig, risk_config

    params, limits, venue_values = split_settings(settings)
    venue = venue_settings(venue_values)
    if isinstance(risk, RiskConfig):
        if limits:
            raise ConfigError("give risk limits either as a RiskConfig in risk= or by name, not both")
        guard: RiskConfig | None = risk
    else:
        guard = risk_config({**(risk or {}), **limits})
    if isinstance(strategy, StrategyBase):
        if params:
            raise ConfigError(f"settings {sorted(params)} beside a built strategy: pass the strategy's name")
        strat = strategy
    else:
        strat = build_strategy(strategy, **params)
    listing = {k: venue_values[k] for k in LISTING_FIELDS if k in venue_values}
    if isinstance(data, str):
        source = load(data, events=events, seed=seed, format=format, tick=tick, lot=lot, **listing)
    elif listing:
        raise ConfigError(f"{sorted(listing)} apply when the data is loaded: pass them to load()")
    else:
        source = data
    sim = venue.sim_config(source.l3, strat.interval_ns)
    return Backtest(
        run_backtest(
            source,
            strat,
            sim,
            out,
            progress=progress,
            report=report,
            risk=guard,
            compiled=compiled,
            resolve=resolve,
        )
    )
