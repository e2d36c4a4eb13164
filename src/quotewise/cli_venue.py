"""``mm venue``: local exchange emulators that speak a venue's own wire protocol, so a stock client
(ccxt, or our live engine) can be run against a replayed market without the internet."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from quotewise.console import fail
from quotewise.errors import QuotewiseError

if TYPE_CHECKING:
    from quotewise.live.venues.binance_emulator import BinanceEmulator

venue_app = typer.Typer(help="Serve a local exchange emulator driven by market data.", no_args_is_help=True)
EXCHANGES = ("binanceusdm",)


@venue_app.command("serve")
def serve(
    exchange: Annotated[str, typer.Argument(help="the exchange to emulate: binanceusdm")],
    data: Annotated[str, typer.Option("--data", help="market data file (any `mm data` reads) or synthetic")],
    api_key: Annotated[str, typer.Option("--api-key", help="the API key clients must send")],
    secret: Annotated[str, typer.Option("--secret", help="the secret clients sign requests with")],
    port: Annotated[int, typer.Option("--port", help="port to listen on (0: any free port)")] = 8080,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    speed: Annotated[float, typer.Option("--speed", help="replay speed (2: twice real time)")] = 1.0,
    faults: Annotated[
        str | None, typer.Option("--faults", help="faults to inject, e.g. drop=10s,429=0.05,gap=30s")
    ] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="list the market as this, e.g. ETHUSDT")
    ] = None,
) -> None:
    """Serve the exchange on HOST:PORT in the foreground until killed (REST and websocket on one port)."""
    if exchange not in EXCHANGES:
        fail(f"unknown exchange {exchange!r}: the emulator speaks {', '.join(EXCHANGES)}")
    from quotewise.live.venues.binance_emulator import BinanceEmulator

    try:
        emulator = BinanceEmulator(data, api_key, secret, speed=speed, faults=faults, symbol=symbol)
    except QuotewiseError as exc:
        fail(exc)
    try:
        asyncio.run(_serve(emulator, exchange, host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


async def _serve(emulator: BinanceEmulator, exchange: str, host: str, port: int) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly (connections closed, state dropped)."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        bound = await emulator.start(host, port)
        typer.echo(f"{exchange} emulator on http://{host}:{bound} ({emulator.symbol}, data {emulator.data})")
        await stopped.wait()
    finally:
        await emulator.stop()
