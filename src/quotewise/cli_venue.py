"""``mm venue``: local exchange emulators that speak a venue's own wire protocol, so a stock client
(ccxt, or our live engine) can be run against a replayed market without the internet."""

from __future__ import annotations

import asyncio
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quotewise.console import fail
from quotewise.errors import ConfigError, QuotewiseError

if TYPE_CHECKING:
    from quotewise.live.venues.binance_emulator import BinanceEmulator
    from quotewise.live.venues.kalshi_emulator import KalshiEmulator
    from quotewise.live.venues.polymarket_emulator import PolymarketEmulator

    Emulator = BinanceEmulator | KalshiEmulator | PolymarketEmulator

venue_app = typer.Typer(help="Serve a local exchange emulator driven by market data.", no_args_is_help=True)
EXCHANGES = ("binanceusdm", "polymarket", "kalshi")
SYNTHETIC_BINARY = (
    "synthetic-binary"  # --data: the synthetic prediction market, written as the venue's capture
)


@venue_app.command("serve")
def serve(
    exchange: Annotated[str, typer.Argument(help="the exchange to emulate: binanceusdm, polymarket, kalshi")],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="market data file (any `mm data` reads), synthetic, or for polymarket and kalshi "
            "synthetic-binary[:N] (a synthetic prediction market of N events)",
        ),
    ],
    api_key: Annotated[str, typer.Option("--api-key", help="the API key (Kalshi: key id) clients must send")],
    secret: Annotated[
        str | None, typer.Option("--secret", help="binanceusdm, polymarket: the secret clients sign with")
    ] = None,
    passphrase: Annotated[
        str | None, typer.Option("--passphrase", help="polymarket: the API passphrase clients send")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="kalshi: PEM file of the public half of the clients' RSA key"),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="port to listen on (0: any free port)")] = 8080,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    speed: Annotated[float, typer.Option("--speed", help="replay speed (2: twice real time)")] = 1.0,
    faults: Annotated[
        str | None, typer.Option("--faults", help="faults to inject, e.g. drop=10s,429=0.05,gap=30s")
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbol", help="list the market as this: ETHUSDT, a Polymarket token id, a Kalshi ticker"
        ),
    ] = None,
) -> None:
    """Serve the exchange on HOST:PORT in the foreground until killed (REST and websocket on one port)."""
    if exchange not in EXCHANGES:
        fail(f"unknown exchange {exchange!r}: the emulator speaks {', '.join(EXCHANGES)}")
    with tempfile.TemporaryDirectory(prefix="mm-venue-") as scratch:
        try:
            source = _data_for(exchange, data, symbol, Path(scratch))
            emulator = _emulator(
                exchange, source, api_key, secret, passphrase, public_key, speed, faults, symbol
            )
        except QuotewiseError as exc:
            fail(exc)
        try:
            asyncio.run(_serve(emulator, exchange, host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _data_for(exchange: str, data: str, symbol: str | None, scratch: Path) -> str:
    """The file to replay: ``data``, or the synthetic prediction market written as the venue's capture."""
    if not data.startswith(SYNTHETIC_BINARY):
        return data
    if exchange == "binanceusdm":
        raise ConfigError(
            f"--data {data}: a prediction market, for polymarket or kalshi (binanceusdm: synthetic)"
        )
    from quotewise.data import kalshi, polymarket
    from quotewise.data.synthetic import DEFAULT_BINARY_EVENTS, synthetic_binary

    count = data.removeprefix(SYNTHETIC_BINARY).removeprefix(":")
    try:
        n = int(count) if count else DEFAULT_BINARY_EVENTS
    except ValueError:
        raise ConfigError(f"--data {data!r}: synthetic-binary:N wants a number of events") from None
    market = synthetic_binary(n)
    if exchange == "kalshi":
        return str(kalshi.write_capture(market, scratch / "kalshi.txt", symbol))
    return str(polymarket.write_capture(market, scratch / "polymarket.txt", symbol))


def _emulator(
    exchange: str,
    data: str,
    api_key: str,
    secret: str | None,
    passphrase: str | None,
    public_key: Path | None,
    speed: float,
    faults: str | None,
    symbol: str | None,
) -> Emulator:
    """The exchange's emulator, refusing a missing credential by its flag."""
    needs = {
        "binanceusdm": ("--secret",),
        "polymarket": ("--secret", "--passphrase"),
        "kalshi": ("--public-key",),
    }
    given = {"--secret": secret, "--passphrase": passphrase, "--public-key": public_key}
    missing = [flag for flag in needs[exchange] if not given[flag]]
    if missing:
        raise ConfigError(f"the {exchange} emulator needs {' and '.join(missing)}")
    if exchange == "polymarket":
        from quotewise.live.venues.polymarket_emulator import PolymarketEmulator

        return PolymarketEmulator(
            data, api_key, secret or "", passphrase or "", speed=speed, faults=faults, token=symbol
        )
    if exchange == "kalshi":
        from quotewise.live.venues.kalshi_emulator import KalshiEmulator

        assert public_key is not None
        if not public_key.is_file():
            raise ConfigError(f"--public-key {public_key}: no such file")
        return KalshiEmulator(
            data, api_key, public_key.read_bytes(), speed=speed, faults=faults, ticker=symbol
        )
    from quotewise.live.venues.binance_emulator import BinanceEmulator

    return BinanceEmulator(data, api_key, secret or "", speed=speed, faults=faults, symbol=symbol)


async def _serve(emulator: Emulator, exchange: str, host: str, port: int) -> None:
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
