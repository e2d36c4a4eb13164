"""Prediction-market venues, Polymarket and Kalshi: their credentials and their clients, each shaped
as a ccxt exchange (:mod:`.polymarket_exchange`, :mod:`.kalshi_exchange`) so that
:class:`~quotewise.live.venues.ccxt_venue.CcxtVenue` trades them under the same rules as a crypto
exchange (client order ids, reconciliation, rate limits, pausing while the book is not trusted).

Credentials come from the environment of ``mm start`` (sent with the request, never stored) or of
the engine: Polymarket's L2 API key, secret and passphrase with the wallet's private key (which signs
each order); Kalshi's API key id with the RSA private key file that signs each request (readable by
its owner alone)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quotewise.errors import ConfigError

# credential name -> the environment variable it is read from
POLYMARKET_ENV = {
    "api_key": "POLY_API_KEY",
    "secret": "POLY_API_SECRET",
    "passphrase": "POLY_PASSPHRASE",
    "private_key": "POLY_PRIVATE_KEY",
}
KALSHI_ENV = {"api_key": "KALSHI_API_KEY", "private_key": "KALSHI_PRIVATE_KEY_FILE"}
ENVIRONMENT = {"polymarket": POLYMARKET_ENV, "kalshi": KALSHI_ENV}
PREDICTION_VENUES = tuple(ENVIRONMENT)
MARKET_HELP = {
    "polymarket": "the outcome token's id (the CLOB's token_id, a long number)",
    "kalshi": "the market's ticker, e.g. KXHIGHNY-26DEC04-T50",
}


def is_prediction_venue(venue: str) -> bool:
    return venue in ENVIRONMENT


def credential_names(venue: str) -> frozenset[str]:
    """The credentials a venue's request carries (a ccxt exchange: its API key and secret)."""
    return frozenset(ENVIRONMENT.get(venue, {"api_key": "", "secret": ""}))


def _key_file(path: str) -> str:
    """The PEM text of a private key file only its owner can read."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{KALSHI_ENV['private_key']}={path}: no such file")
    if stat.S_IMODE(file.stat().st_mode) & 0o077:
        raise ConfigError(f"{file} can be read by others: chmod 600 {file} (it holds a private key)")
    return file.read_text()


def env_credentials(venue: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every credential ``venue`` needs, from the environment; one line naming what is missing
    otherwise (the names only: values are never echoed)."""
    env = os.environ if environ is None else environ
    names = ENVIRONMENT[venue]
    missing = [var for var in names.values() if not env.get(var)]
    if missing:
        raise ConfigError(
            f"{venue} needs its API credentials: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set (docs/prediction-markets.md)"
        )
    values = {name: env[var] for name, var in names.items()}
    if venue == "kalshi":
        values["private_key"] = _key_file(values["private_key"])
    return values


def open_prediction_exchange(
    venue: str,
    maker_id: str,
    credentials: Mapping[str, str],
    endpoint: str | None,
    state_dir: Path,
    market: str,
) -> Any:
    """The venue's client shaped as a ccxt exchange, every host moved to ``endpoint`` when given;
    Polymarket's order ids (it has no client ids) are kept in ``state_dir`` across restarts."""
    if venue == "polymarket":
        from quotewise.live.venues.polymarket_exchange import PolymarketExchange

        state_dir.mkdir(parents=True, exist_ok=True)
        return PolymarketExchange(
            credentials["private_key"],
            credentials["api_key"],
            credentials["secret"],
            credentials["passphrase"],
            host=endpoint,
            state_path=state_dir / f"{maker_id}.polymarket-orders.json",
            tokens=[market],
        )
    from quotewise.live.venues.kalshi_exchange import KalshiExchange

    return KalshiExchange(
        credentials["api_key"], credentials["private_key"].encode(), host=endpoint, tickers=[market]
    )


async def check_neg_risk(venue: Any, exchange: Any) -> None:
    """``--neg-risk`` states the market is one outcome of a negative-risk event: what the venue says
    must agree (an order signed for the wrong exchange contract is refused by Polymarket)."""
    if not venue.market.get("info", {}).get("neg_risk"):
        await exchange.close()
        raise ConfigError(
            f"--neg-risk: polymarket says {venue.symbol} is not in a negative-risk event (leave the flag off)"
        )
