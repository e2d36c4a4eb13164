"""The live lifecycle commands of ``mm``: ``engine start|stop|status``, ``start``, ``stop``, ``list``,
``status`` and ``config``. All but ``engine start`` talk to the running engine over its local API."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from quotewise.console import console, fail
from quotewise.errors import QuotewiseError
from quotewise.live import KEEP_WARM, paths
from quotewise.live.client import EngineClient, EngineNotRunning, running_engine
from quotewise.parsing import parse_duration

engine_app = typer.Typer(help="Run the live engine (in the background) and stop it.", no_args_is_help=True)
START_WAIT_S = 30.0

# strategy parameters settable from the command line (values are read as numbers when they are)
STRATEGY_FLAGS = {
    "spread": "distance from fair value to each quote, e.g. 2ticks, 5bp",
    "min_spread": "smallest distance from fair value to a quote",
    "max_spread": "largest distance from fair value to a quote",
    "size": "order size, instrument units",
    "interval": "time between quote decisions, e.g. 100ms",
    "skew": "centre shift at max inventory, in half-spreads",
    "max_inventory": "inventory at which the side that adds stops quoting, units",
    "vol_mult": "spread widening per unit of volatility",
    "alpha": "smoothing of the fair value",
    "fv_method": "fair value: mid_price|weighted_mid|microprice|vwap|ema",
    "threshold": "move a quote only when its price should move this much",
    "max_orders": "quotes (levels) per side",
    "level_spacing": "distance between ladder levels",
    "level_decay": "size of level i is size x decay^i",
}
RISK_FLAGS = {
    "max_pos": "risk: largest absolute position, units",
    "max_loss": "risk: loss that halts quoting, settlement currency",
    "max_drawdown": "risk: fall from the P&L peak that halts quoting",
    "max_notional": "risk: largest |position| x fair value",
    "stale_after": "risk: cancel quotes when no market event comes for this long, e.g. 5s",
}


def _client() -> EngineClient:
    try:
        return EngineClient(actor="cli")
    except QuotewiseError as exc:
        fail(exc)


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except QuotewiseError as exc:
        fail(exc)


def with_flags(func: Callable) -> Callable:
    """Give a command every strategy and risk flag (declared once, here) besides its own."""
    sig = inspect.signature(func, eval_str=True)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, typer.Option(help=text, rich_help_panel=panel)],
        )
        for flags, panel in ((STRATEGY_FLAGS, "Strategy"), (RISK_FLAGS, "Risk"))
        for name, text in flags.items()
    ]
    func.__signature__ = sig.replace(parameters=own + extra)  # type: ignore[attr-defined]
    return func


def _changes(flags: dict[str, Any], settings: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(strategy params, risk limits) from the flags given and ``--set key=value`` pairs."""
    from quotewise.cli import parse_settings

    given = [f"{k}={v}" for k, v in flags.items() if v is not None]
    values = parse_settings([*given, *(settings or [])])
    risk = {k: v for k, v in values.items() if k in RISK_FLAGS}
    params = {k: v for k, v in values.items() if k not in RISK_FLAGS}
    return params, risk


# -- the engine process ------------------------------------------------------------------------------
@engine_app.command("start")
def engine_start(
    db: Annotated[
        str | None, typer.Option(help="database URL or SQLite file (default: under the user data directory)")
    ] = None,
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (default: a free one)")] = 0,
    foreground: Annotated[bool, typer.Option(help="run here instead of in the background")] = False,
    keep_warm: Annotated[
        str,
        typer.Option(
            help="idle makers rehearse their decision this often, so the first update after a pause "
            "does not wait on cold CPU caches (tick-to-quote p50 ~30 us instead of ~70); about 5% of one "
            "CPU while markets move, next to nothing once they are quiet; 0 turns it off"
        ),
    ] = KEEP_WARM,
) -> None:
    """Start the engine: it resumes every maker its database has as running."""
    info = running_engine()
    if info is not None:
        fail(QuotewiseError(f"an engine is already running (pid {info['pid']}, port {info['port']})"))
    try:
        parse_duration(keep_warm, "--keep-warm")
    except QuotewiseError as exc:
        fail(exc)
    paths.ensure_token()
    args = [sys.executable, "-m", "quotewise.live.server", "--port", str(port)]
    if db:
        args += ["--db", db]
    args += ["--keep-warm", keep_warm]
    if foreground:
        os.execv(sys.executable, args)
    stale = paths.read_engine_info()
    if stale is not None:  # left by an engine that was killed
        paths.clear_engine_info(int(stale["pid"]))
    log = paths.log_path().open("ab")
    proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(
                QuotewiseError(f"the engine exited at start (code {proc.returncode}); see {paths.log_path()}")
            )
        info = paths.read_engine_info()
        if info is not None and info.get("pid") == proc.pid:
            try:
                EngineClient().health()
            except QuotewiseError:
                pass
            else:
                console.print(
                    f"engine running on http://127.0.0.1:{info['port']} (pid {proc.pid}, db {info['db']})"
                )
                return
        time.sleep(0.1)
    proc.kill()
    fail(QuotewiseError(f"the engine did not answer within {START_WAIT_S:.0f} s; see {paths.log_path()}"))


@engine_app.command("stop")
def engine_stop(
    wait: Annotated[float, typer.Option(help="seconds to wait for it to exit")] = 20.0,
) -> None:
    """Stop the engine gracefully: every maker cancels its orders first."""
    client = _client()
    pid = int(client.info["pid"])
    _call(client.stop_engine)
    deadline = time.monotonic() + wait
    while running_engine() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_engine() is not None:
        os.kill(pid, signal.SIGTERM)
        fail(QuotewiseError(f"the engine (pid {pid}) did not stop within {wait:.0f} s; sent SIGTERM"))
    console.print(f"engine stopped (pid {pid})")


@engine_app.command("status")
def engine_status() -> None:
    """Whether an engine runs, where, on which database, and whether it keeps idle makers warm."""
    info = running_engine()
    if info is None:
        fail(EngineNotRunning("no engine running (start one with: mm engine start)"))
    health = _call(_client().health)
    warm = info.get("keep_warm")
    warm = f"kept warm every {warm}" if warm and parse_duration(warm) else "not kept warm"
    console.print(
        f"engine pid {info['pid']} on port {info['port']}, db {info['db']}, {health['makers']} makers, {warm}"
    )


# -- makers -------------------------------------------------------------------------------------------
@with_flags
def start(
    venue: Annotated[str, typer.Argument(help="where to trade: paper (more venues come later)")],
    market: Annotated[
        str | None,
        typer.Argument(
            help="the data's market, e.g. BTCUSDT (BTC/USDT and btc-usdt match it; synthetic data is SYNTH); "
            "default: the data's symbol"
        ),
    ] = None,
    *,
    data: Annotated[str, typer.Option(help="file to replay (any format mm data reads), or synthetic[:N]")],
    speed: Annotated[float, typer.Option(help="replay speed, times real time")] = 1.0,
    strategy: Annotated[
        str, typer.Option(help="symmetric | skew | ladder | file.py:Class ...")
    ] = "symmetric",
    settings: Annotated[list[str] | None, typer.Option("--set", help="strategy parameter key=value")] = None,
    latency_entry: Annotated[str, typer.Option(help="paper venue: order entry latency")] = "1ms",
    latency_response: Annotated[str, typer.Option(help="paper venue: response latency")] = "1ms",
    **flags: Any,
) -> None:
    """Start a market maker; prints its id."""
    params, risk = _changes(flags, settings)
    spec = {
        "venue": venue,
        "market": market,
        "data": data,
        "speed": speed,
        "strategy": strategy,
        "params": params,
        "risk": risk or None,
        "latency_entry": latency_entry,
        "latency_response": latency_response,
    }
    maker_id = _call(lambda: _client().start(spec))
    typer.echo(maker_id)


def stop(maker_id: Annotated[str, typer.Argument(help="the maker's id (mm list)")]) -> None:
    """Cancel a maker's orders and stop it."""
    result = _call(lambda: _client().stop(maker_id))
    console.print(f"{maker_id} stopped; {result['fills']} fills, position {result.get('position')}")


def list_makers() -> None:
    """Every maker the engine knows, running or not."""
    rows = _call(lambda: _client().list())
    table = Table(title="makers")
    for col in ("id", "market", "venue", "strategy", "status", "fills", "data"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"], r["market"], r["venue"], r["strategy"], r["status"], str(r["fills"]), r["data"]
        )
    console.print(table)


def status(
    maker_id: Annotated[str | None, typer.Argument(help="one maker (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Quotes, position, P&L, fills and risk state of a maker (or a line for each)."""
    client = _client()
    if maker_id is None:
        rows = [_call(lambda r=r: client.status(r["id"])) for r in _call(client.list)]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title="makers")
        for col in ("id", "market", "status", "fills", "position", "P&L", "quotes"):
            table.add_column(col)
        for r in rows:
            quotes = " / ".join(f"{q['side']} {q['price']:.15g}" for q in r.get("quotes", []))
            pnl = r.get("pnl")
            table.add_row(
                r["id"],
                r["market"],
                r["status"],
                str(r["fills"]),
                str(r.get("position", "")),
                f"{pnl:.4f}" if pnl is not None else "",
                quotes,
            )
        console.print(table)
        return
    s = _call(lambda: client.status(maker_id))
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    table = Table(title=f"{maker_id} on {s['market']} ({s['status']})", show_header=False)
    for key in ("strategy", "position", "pnl", "cash", "fees", "fills", "best_bid", "best_ask", "decisions"):
        if key in s:  # prices and sizes come on their grid: shown whole, money to 6 digits
            money = key in ("pnl", "cash", "fees") and isinstance(s[key], float)
            unit = f" {s.get('currency', '')}" if money else ""
            table.add_row(key, f"{s[key]:.6g}{unit}" if money else str(s[key]))
    for q in s.get("quotes", []):
        table.add_row(f"quote {q['side']}", f"{q['size']:.15g} @ {q['price']:.15g} ({q['status']})")
    risk = s.get("risk", {})
    table.add_row("risk", "halted" if risk.get("halted") else "blocked" if risk.get("blocked") else "ok")
    console.print(table)


@with_flags
def config(
    maker_id: Annotated[str, typer.Argument(help="the maker's id (mm list)")],
    settings: Annotated[list[str] | None, typer.Option("--set", help="strategy parameter key=value")] = None,
    **flags: Any,
) -> None:
    """Show a maker's config, or change it (effective at its next requote; audited)."""
    params, risk = _changes(flags, settings)
    changes = {**params, **risk}
    result = _call(lambda: _client().config(maker_id, changes))
    typer.echo(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    """Add the lifecycle commands to ``mm``."""
    app.add_typer(engine_app, name="engine")
    app.command("start")(start)
    app.command("stop")(stop)
    app.command("list")(list_makers)
    app.command("status")(status)
    app.command("config")(config)
