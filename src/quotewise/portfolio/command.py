"""``mm backtest --portfolio FILE``: the command line's side of a portfolio run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quotewise.errors import ConfigError


def refuse_single_run_options(given: dict[str, Any]) -> None:
    """--portfolio names each instrument's data and settings in its file: single-run options beside it
    would be silently ignored, so they are refused."""
    used = [name for name, value in given.items() if value not in (None, False, [], {})]
    if used:
        raise ConfigError(
            f"--portfolio takes the data, strategies and settings from its file; drop {', '.join(used)}"
        )


def portfolio_backtest(path: Path, out: Path | None, name: str | None, quiet: bool) -> Path:
    """Run the portfolio file and print where its book went; returns the output folder."""
    from quotewise.console import compile_notice, console
    from quotewise.portfolio.config import load_portfolio
    from quotewise.portfolio.runner import run_portfolio

    spec = load_portfolio(path)
    compile_notice()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = out or Path("runs") / (name or f"portfolio-{stamp}")
    summary = run_portfolio(spec, folder, quiet=quiet)
    parts = ", ".join(f"{k} {v:,.6g}" for k, v in summary["attribution"].items())
    console.print(f"Portfolio P&L [bold]{summary['total_pnl']:,.6g}[/] {summary['currency']} ({parts})")
    if summary.get("halted"):
        h = summary["halted"]
        console.print(f"[bold]Halted[/] at {h['time']}: {h['rule']} {h['value']:,.6g} > {h['limit']:,.6g}")
    for w in summary.get("limit_windows") or []:
        seconds = (w["end"] - w["start"]) / 1e9
        console.print(
            f"[bold]{w['action'].capitalize()}[/] from {w['time']} for {seconds:g} s: "
            f"{w['rule']} {w['value']:,.6g} > {w['limit']:,.6g}"
        )
    console.print(f"Book in [bold]{folder}[/] (summary.json, report.html; one folder per instrument)")
    return folder
