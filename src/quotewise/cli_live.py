"""The live lifecycle commands of ``mm``: ``engine start|stop|status``, ``start``, ``stop``, ``list``,
``status`` and ``config``. All but ``engine start`` talk to the running engine over its local API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from quotewise.cli_settings import STRATEGIES, ConfigFile, Pairs, given, with_settings
from quotewise.console import compile_notice, console, fail
from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live import KEEP_WARM, MAX_WORKERS, paths
from quotewise.live.client import EngineClient, EngineNotRunning, engine_url, running_engine
from quotewise.parsing import parse_duration
from quotewise.settings import DEFAULT_STRATEGY

engine_app = typer.Typer(help="Run the live engine (in the background) and stop it.", no_args_is_help=True)
START_WAIT_S = 30.0
COMPILE_WAIT_S = 120.0  # more for a start that may compile the simulator (resuming makers does)
ENGINE_COMPILING = (
    "the simulator is not compiled yet: the first maker to start or resume compiles it "
    "(first run only, about 30-60 s)"
)


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


def _settings(flags: dict[str, Any], pairs: list[str] | None, config: Path | None) -> tuple[str | None, dict]:
    """``(the config file's strategy, settings)``: the file's settings, then the flags, then ``--set``."""
    from quotewise.settings import load_config

    name, settings = load_config(config) if config is not None else (None, {})
    return name, {**settings, **given(flags, pairs)}


# -- the engine process ------------------------------------------------------------------------------
@engine_app.command("start")
def engine_start(
    db: Annotated[
        str | None, typer.Option(help="database URL or SQLite file (default: under the user data directory)")
    ] = None,
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (default: a free one)")] = 0,
    foreground: Annotated[bool, typer.Option(help="run here instead of in the background")] = False,
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to listen on instead of 127.0.0.1 (another machine: TLS or --insecure)"),
    ] = None,
    tls_cert: Annotated[str | None, typer.Option(help="TLS certificate file (PEM) for --listen")] = None,
    tls_key: Annotated[str | None, typer.Option(help="its private key file (PEM)")] = None,
    insecure: Annotated[
        bool, typer.Option(help="--listen beyond this machine without TLS (keys travel in clear)")
    ] = False,
    public_metrics: Annotated[
        bool, typer.Option(help="serve /metrics without an API key (for a Prometheus scraper)")
    ] = False,
    keep_warm: Annotated[
        str,
        typer.Option(
            help="idle makers rehearse their decision this often, so the first update after a pause "
            "does not wait on cold CPU caches (tick-to-quote p50 ~30 us instead of ~70); about 5% of one "
            "CPU while markets move, next to nothing once they are quiet; 0 turns it off"
        ),
    ] = KEEP_WARM,
    workers: Annotated[
        int,
        typer.Option(
            help="run the makers in this many worker processes, each with its own event loop (when one "
            "loop is saturated: mm engine status says so); the engine process keeps the API and the store. "
            "Needs a database file or URL",
            min=1,
            max=MAX_WORKERS,
        ),
    ] = 1,
) -> None:
    """Start the engine: it resumes every maker its database has as running."""
    info = running_engine()
    if info is not None:
        fail(QuotewiseError(f"an engine is already running (pid {info['pid']}, port {info['port']})"))
    try:
        from quotewise.live.server import listen_address
        from quotewise.live.store import db_url, default_db_url
        from quotewise.live.workers import check_workers

        parse_duration(keep_warm, "--keep-warm")
        check_workers(workers, db_url(db) if db else default_db_url())
        listen_address(listen, tls_cert, tls_key, insecure)  # refused here, in one line, not in the log
    except QuotewiseError as exc:
        fail(exc)
    paths.ensure_token()
    args = [sys.executable, "-m", "quotewise.live.server", "--port", str(port)]
    if db:
        args += ["--db", db]
    args += ["--keep-warm", keep_warm, "--workers", str(workers)]
    for flag, value in (("--listen", listen), ("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if value:
            args += [flag, value]
    if insecure:
        args.append("--insecure")
    if public_metrics:
        args.append("--public-metrics")
    wait_s = START_WAIT_S + (COMPILE_WAIT_S if compile_notice(ENGINE_COMPILING) else 0.0)
    if foreground:
        os.execv(sys.executable, args)
    stale = paths.read_engine_info()
    if stale is not None:  # left by an engine that was killed
        paths.clear_engine_info(int(stale["pid"]))
    with paths.console_path().open("wb") as out:  # the log has the engine's lines; this, any crash
        proc = subprocess.Popen(
            args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(
                QuotewiseError(
                    f"the engine exited at start (code {proc.returncode}); see {paths.console_path()}"
                )
            )
        info = paths.read_engine_info()
        if info is not None and info.get("pid") == proc.pid:
            try:
                EngineClient().health()
            except QuotewiseError:
                pass
            else:
                console.print(f"engine running on {engine_url(info)} (pid {proc.pid}, db {info['db']})")
                return
        time.sleep(0.1)
    proc.kill()
    fail(QuotewiseError(f"the engine did not answer within {wait_s:.0f} s; see {paths.log_path()}"))


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
def engine_status(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Whether an engine runs, where (its URL), on which database, whether it keeps idle makers warm,
    which API key this shell uses (QW_API_KEY, else the engine's token file), and how busy its event
    loop is (with a warning when it is saturated: quotes then follow the market late)."""
    info = running_engine()
    if info is None:
        fail(EngineNotRunning("no engine running (start one with: mm engine start)"))
    client = _client()
    health = _call(client.health)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "url": engine_url(info),
                    "pid": info["pid"],
                    "db": info["db"],
                    "makers": health["makers"],
                    "keep_warm": info.get("keep_warm"),
                    "key_file": client.key_source,
                    "role": health.get("role"),
                    **{k: health.get(k) for k in ("loop_busy", "loop_lag_ms", "loop_saturated", "workers")},
                }
            )
        )
        return
    warm = info.get("keep_warm")
    warm = f"kept warm every {warm}" if warm and parse_duration(warm) else "not kept warm"
    workers = health.get("workers")
    spread = f" over {len(workers)} worker processes" if workers else ""
    console.print(
        f"engine pid {info['pid']} on port {info['port']}, db {info['db']}, {health['makers']} makers"
        f"{spread}, {warm}"
    )
    for worker in workers or [health]:
        if worker.get("loop_busy") is not None:
            where = f"worker {worker['index']} ({worker['makers']} makers): " if workers else ""
            console.print(
                f"{where}event loop {worker['loop_busy']:.0%} busy, timers up to "
                f"{worker['loop_lag_ms']:.1f} ms late (last 10 s)"
            )
        elif workers and not worker.get("alive"):
            console.print(
                f"[red]worker {worker['index']} (pid {worker['pid']}) has exited: its makers resume at the "
                "next engine start[/red]"
            )
    if health.get("loop_saturated"):
        console.print(
            "[yellow]an event loop is saturated: quotes follow the market late; run fewer makers in this "
            "engine, or start it with more --workers (docs/live.md, Latency)[/yellow]"
        )


# -- makers -------------------------------------------------------------------------------------------
@with_settings()
def start(
    venue: Annotated[
        str,
        typer.Argument(
            help="where to trade: paper (a replayed file), polymarket, kalshi, or a ccxt exchange id, "
            "e.g. binanceusdm"
        ),
    ],
    market: Annotated[
        str | None,
        typer.Argument(
            help="paper: the data's market, e.g. BTCUSDT (BTC/USDT and btc-usdt match it; synthetic data "
            "is SYNTH), default the data's symbol; an exchange: its ccxt symbol, e.g. BTC/USDT:USDT; "
            "polymarket: the outcome token id; kalshi: the market ticker"
        ),
    ] = None,
    *,
    data: Annotated[
        str | None, typer.Option(help="paper: file to replay (any format mm data reads), or synthetic[:N]")
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="an exchange: send every REST and websocket request to this origin (a proxy, mm venue "
            "serve), e.g. http://127.0.0.1:8900; 'testnet': the exchange's testnet"
        ),
    ] = None,
    speed: Annotated[float, typer.Option(help="replay speed, times real time")] = 1.0,
    neg_risk: Annotated[
        bool,
        typer.Option(
            "--neg-risk", help="polymarket: the market is one outcome of a negative-risk event (checked)"
        ),
    ] = False,
    strategy: Annotated[
        str | None,
        typer.Option(help=f"{STRATEGIES} (default: the --config file's, else {DEFAULT_STRATEGY})"),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="the maker's id (letters, digits, . _ -; default: mm-<random>)")
    ] = None,
    book: Annotated[
        str | None,
        typer.Option(help="the book it belongs to: totals in mm status --book, limits in mm book limits"),
    ] = None,
    settings: Pairs = None,
    config: ConfigFile = None,
    **flags: Any,
) -> None:
    """Start a market maker; prints its id.

    Every strategy setting, risk limit and venue setting is a flag, the same as on mm backtest: the
    command line that was backtested runs live. On an exchange the API keys come from
    QW_<EXCHANGE>_API_KEY and QW_<EXCHANGE>_SECRET (or the keys file, docs/venues.md); on Polymarket
    from POLY_API_KEY, POLY_API_SECRET, POLY_PASSPHRASE and POLY_PRIVATE_KEY; on Kalshi from
    KALSHI_API_KEY and KALSHI_PRIVATE_KEY_FILE (docs/prediction-markets.md). They are sent to the
    engine with the request, never stored.
    """
    try:
        from quotewise.settings import split_settings

        file_strategy, values = _settings(flags, settings, config)
        params, risk, venue_values = split_settings(values)
    except QuotewiseError as exc:
        fail(exc)
    spec = {
        "venue": venue,
        "market": market,
        "data": data,
        "endpoint": endpoint,
        "speed": speed,
        "neg_risk": neg_risk,
        "strategy": strategy or file_strategy or DEFAULT_STRATEGY,
        "name": name,
        "book": book,
        "params": params,
        "risk": risk or None,
        **venue_values,
    }
    if venue != "paper":
        try:
            spec["credentials"] = _env_credentials(venue)
        except QuotewiseError as exc:
            fail(exc)
    maker_id = _call(lambda: _client().start(spec))
    typer.echo(maker_id)


def _env_credentials(exchange: str) -> dict[str, str] | None:
    """This shell's credentials for the venue, for an engine started elsewhere: QW_<EXCHANGE>_API_KEY
    / _SECRET, or a prediction market's own variables (POLY_*, KALSHI_*), which must all be set (None:
    none is, and the engine uses its own environment or keys file)."""
    from quotewise.live.venues.prediction import ENVIRONMENT, env_credentials

    if exchange in ENVIRONMENT:
        given = any(os.environ.get(var) for var in ENVIRONMENT[exchange].values())
        return env_credentials(exchange) if given else None
    key = os.environ.get(f"QW_{exchange.upper()}_API_KEY")
    secret = os.environ.get(f"QW_{exchange.upper()}_SECRET")
    return {"api_key": key, "secret": secret} if key and secret else None


def stop(maker_id: Annotated[str, typer.Argument(help="the maker's id (mm list)")]) -> None:
    """Cancel a maker's orders and stop it."""
    result = _call(lambda: _client().stop(maker_id))
    console.print(f"{maker_id} stopped; {result['fills']} fills, position {result.get('position')}")


def halt(
    maker_id: Annotated[str | None, typer.Argument(help="the maker's id (mm list)")] = None,
    all_makers: Annotated[bool, typer.Option("--all", help="every running maker")] = False,
    flatten: Annotated[
        bool, typer.Option(help="also close the position with marketable orders inside the risk limits")
    ] = False,
) -> None:
    """Kill switch: cancel every order and stop quoting (until mm resume, also across a restart)."""
    if (maker_id is None) == (not all_makers):
        fail(ConfigError("name one maker, or --all"))
    client = _client()
    ids = [maker_id] if maker_id else [m["id"] for m in _call(client.list) if m["status"] == "running"]
    for one in ids:
        state = _call(lambda one=one: client.halt(one, flatten))
        what = "halted, flattening" if flatten else "halted"
        console.print(f"{one} {what}; position {state.get('position')}")


def resume(maker_id: Annotated[str, typer.Argument(help="the maker's id (mm list)")]) -> None:
    """Quote again after mm halt."""
    state = _call(lambda: _client().resume(maker_id))
    console.print(f"{maker_id} quoting again; position {state.get('position')}")


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
    show_traceback: Annotated[
        bool, typer.Option("--traceback", help="print the traceback of the exception that failed the maker")
    ] = False,
    book: Annotated[
        str | None,
        typer.Option(help="a book's makers and totals (P&L, net and gross exposure in its quote currency)"),
    ] = None,
) -> None:
    """Quotes, position, P&L, fills and risk state of a maker (or a line for each); for a failed one,
    its error; with --book, a book's makers and totals."""
    if show_traceback and maker_id is None:
        fail("--traceback needs a maker id (mm status ID --traceback)")
    if book is not None:
        if maker_id is not None:
            fail("--book shows a whole book: give a maker id or --book, not both")
        _book_status(book, as_json)
        return
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
    if show_traceback:
        if not s.get("traceback"):
            fail(f"{maker_id} has no traceback (status {s['status']}): only a maker that raised keeps one")
        typer.echo(s["traceback"], nl=False)
        return
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
    connection = s.get("connection")
    if connection:  # a live exchange's (or live data's) link: docs/venues.md
        table.add_row("venue", _connection_line(connection))
    if s["status"] == "failed":
        table.add_row("error", escape(s["reason"]))
    console.print(table)
    if s.get("traceback"):  # below the table, on one line: the log's path is not wrapped in a cell
        log = client.info.get("log")
        also = f"; logged in {log}" if log else ""
        console.print(escape(f"traceback: mm status {maker_id} --traceback prints it{also}"))


def _book_status(name: str, as_json: bool) -> None:
    """``mm status --book NAME``: one line per maker, then the totals, limits and breaches."""
    from quotewise.live.books import check_book_name

    _call(lambda: check_book_name(name))
    b = _call(lambda: _client().book(name))
    if as_json:
        typer.echo(json.dumps(b, indent=2))
        return
    currency = b["currency"] or "quote currency"
    table = Table(title=f"book {name} ({currency})")
    for col in ("id", "market", "status", "position", "P&L", "exposure", "share"):
        table.add_column(col)
    for m in b["makers"]:
        state = m["halted"] or m["status"] if m["status"] == "running" else m["status"]
        pnl, exposure, share = m["pnl"], m["exposure"], m["share"]
        table.add_row(
            m["id"],
            m["market"],
            state,
            f"{m['position']:.15g}",
            "" if pnl is None else f"{pnl:.6g}",
            "unpriced" if exposure is None else f"{exposure:.6g}",
            "" if share is None else f"{share:.1%}",
        )
    console.print(table)
    t = b["totals"]
    console.print(
        f"P&L {t['pnl']:.6g}, net {t['net_exposure']:.6g}, gross {t['gross_exposure']:.6g} {currency}"
    )
    if b.get("limits"):
        console.print(f"limits: {_limits_text(b['limits'])}")
    for br in b["breaches"]:
        console.print(f"beyond {br['limit']}: {br['value']:.6g} > {br['threshold']:.6g}")


def _connection_line(c: dict[str, Any]) -> str:
    """``in sync, clock -3.9 ms, 2 disconnects, 1 resync, 3 rate limited`` (what is not zero)."""
    feed, orders = c.get("feed", {}), c.get("orders", {})
    counts = {
        "disconnects": feed.get("disconnects"),
        "resyncs": feed.get("resyncs"),
        "late": feed.get("late"),
        "timeouts": orders.get("timeouts"),
        "reconciles": orders.get("reconciles"),
        "rate limited": c.get("rate_limited"),
    }
    parts = ["in sync" if c.get("trusted") else f"paused ({feed.get('last_reason') or 'connecting'})"]
    parts.append(f"clock {c.get('clock_offset_ms', 0):+.1f} ms")
    parts += [f"{n} {name}" for name, n in counts.items() if n]
    return escape(", ".join(parts))


@with_settings(venue=False)
def config(
    maker_id: Annotated[str, typer.Argument(help="the maker's id (mm list)")],
    settings: Pairs = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML file with 'strategy:', 'params:', 'risk:' for this maker's strategy"),
    ] = None,
    **flags: Any,
) -> None:
    """Show a maker's config, or change it (effective at its next requote; audited).

    The flags are those of mm start, without the venue's: a running maker's venue stays as it started.
    """
    client = _client()
    try:
        file_strategy, changes = _settings(flags, settings, config)
    except QuotewiseError as exc:
        fail(exc)
    if file_strategy is not None:
        running = _call(lambda: client.status(maker_id))["strategy"]
        if file_strategy != running:
            fail(ConfigError(f"{config} is for strategy {file_strategy}; {maker_id} runs {running}"))
    result = _call(lambda: client.config(maker_id, changes))
    typer.echo(json.dumps(result, indent=2))


# -- API keys ------------------------------------------------------------------------------------------
keys_app = typer.Typer(
    help="API keys of the engine and their roles (viewer, trader, admin).", no_args_is_help=True
)
DbOption = Annotated[
    str | None, typer.Option(help="the engine's database (default: the running engine's, else the default)")
]


def _key_store(db: str | None) -> Any:
    from quotewise.live.store import Store, db_url, default_db_url

    info = running_engine()
    url = db_url(db) if db else (info["db"] if info is not None else default_db_url())
    return Store(url)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="viewer (read), trader (run its own makers) or admin (all)")],
    name: Annotated[str, typer.Option(help="who holds it: the audit records its requests under this name")],
    db: DbOption = None,
) -> None:
    """Make an API key; it is printed once, on the last line (only its hash is kept)."""
    try:
        store = _key_store(db)
        key = store.add_api_key(name, role)
        store.audit(os.environ.get("USER") or "cli", "key_create", None, {"name": name, "role": role})
    except QuotewiseError as exc:
        fail(exc)
    console.print(f"API key {name} ({role}); shown this once, keep it secret:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """Every key's name, role and dates (never the key)."""
    try:
        rows = _key_store(db).api_keys()
    except QuotewiseError as exc:
        fail(exc)
    table = Table(title="API keys")
    for col in ("name", "role", "created", "revoked"):
        table.add_column(col)
    for r in rows:
        revoked = (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["revoked_at"] / 1e9)) if r["revoked_at"] else ""
        )
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["created_at"] / 1e9))
        table.add_row(r["name"], r["role"], created, revoked)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")], db: DbOption = None) -> None:
    """Revoke a key at once: its next request is refused (401)."""
    try:
        store = _key_store(db)
        store.revoke_api_key(name)
        store.audit(os.environ.get("USER") or "cli", "key_revoke", None, {"name": name})
    except QuotewiseError as exc:
        fail(exc)
    console.print(f"key {name} revoked")


# -- books -------------------------------------------------------------------------------------------------
book_app = typer.Typer(help="Books: makers grouped under one name, their limits.", no_args_is_help=True)


@book_app.command("limits")
def book_limits(
    name: Annotated[str, typer.Argument(help="the book (mm start --book NAME)")],
    max_loss: Annotated[
        float | None, typer.Option(help="halt the book when its P&L falls below minus this")
    ] = None,
    max_gross: Annotated[
        float | None, typer.Option(help="halt it when its gross exposure exceeds this")
    ] = None,
    max_net: Annotated[
        float | None, typer.Option(help="halt it when its absolute net exposure exceeds this")
    ] = None,
    var_1m: Annotated[
        float | None,
        typer.Option(
            "--var-1m", help="halt it when its 99% 1-minute VaR (from its P&L each second) exceeds this"
        ),
    ] = None,
    flatten: Annotated[bool, typer.Option(help="a breach also closes every position of the book")] = False,
    action: Annotated[
        str, typer.Option(help="what a breach does: halt, pause (no quoting) or reduce (reducing side only)")
    ] = "halt",
    pause_for: Annotated[
        str | None, typer.Option(help="how long a pause or reduce lasts, on each maker's clock [default: 1m]")
    ] = None,
) -> None:
    """Set a book's limits, in its quote currency (they replace the last ones): beyond one, every maker of
    the book is halted (mm resume each; halted again while the book is still beyond it), or with
    --action pause | reduce paused (reduce-only) for --pause-for, again while still beyond."""
    from quotewise.live.books import book_limits as checked
    from quotewise.live.books import check_book_name

    values = {"max_loss": max_loss, "max_gross": max_gross, "max_net": max_net, "var_1m": var_1m}
    values |= {"flatten": flatten, "action": action, "pause_for": pause_for}
    _call(lambda: (check_book_name(name), checked(values)))  # refused here, in one line
    b = _call(lambda: _client().set_book_limits(name, values))
    console.print(f"book {name}: {_limits_text(b['limits'])}; {len(b['makers'])} makers")


@book_app.command("list")
def book_list(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Every book: its makers and limits."""
    rows = _call(lambda: _client().books())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="books")
    for col in ("book", "makers", "limits"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["book"], " ".join(r["makers"]), _limits_text(r["limits"] or {}))
    console.print(table)


def _limits_text(limits: dict[str, Any]) -> str:
    """``max_gross 1000, max_loss 50, flatten`` or ``..., pause 1m``: the limits set and their action."""
    from quotewise.live.books import LIMITS

    shown = [f"{k} {limits[k]:g}" for k in LIMITS if limits.get(k) is not None]
    if limits.get("flatten"):
        shown.append("flatten")
    if limits.get("action") in ("pause", "reduce"):
        shown.append(f"{limits['action']} {limits.get('pause_for')}")
    return ", ".join(shown)


def mcp() -> None:
    """Serve the engine's tools to an AI agent over stdio (MCP), with this shell's API key
    (QW_API_KEY, else the engine's token): the agent has that key's rights and limits (docs/mcp.md)."""
    from quotewise.live.mcp_server import run_stdio

    run_stdio()


def register(app: typer.Typer) -> None:
    """Add the lifecycle commands to ``mm``."""
    app.add_typer(engine_app, name="engine")
    app.add_typer(keys_app, name="keys")
    app.add_typer(book_app, name="book")
    app.command("start")(start)
    app.command("stop")(stop)
    app.command("halt")(halt)
    app.command("resume")(resume)
    app.command("mcp")(mcp)
    app.command("list")(list_makers)
    app.command("status")(status)
    app.command("config")(config)
