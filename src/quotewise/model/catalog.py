"""What the venues publish about their instruments, so a data file becomes a correctly priced contract.

Market data says little about the contract it trades: a Binance COIN-M depth stream has prices and
contract counts, not that a contract is 10 USD settled in ETH. This module holds the specifications
(tick, lot, contract kind and size, currencies, exchange minimums) of the instruments in the shared
and common data, and the published rules of each venue for the rest (Binance COIN-M: 100 USD per
BTC contract, 10 USD for every other coin). An instrument on a venue that lists linear and inverse
contracts side by side, and that no rule here covers, is refused: guessing linear is how a COIN-M
file was once priced 268 times too high. Figures change over time; each entry names its source and
date, and every field can be overridden (``mm backtest --contract ... --contract-size ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from quotewise.errors import ConfigError, one_line
from quotewise.model.instrument import ContractKind, Instrument

# tardis.dev and other sources name venues their own way
VENUE_ALIASES = {
    "binance": "binance-spot",
    "binance-futures": "binance-usdm",
    "binance-delivery": "binance-coinm",
    "huobi-dm": "huobi-dm-swap",
}
# quote assets of Binance symbols, longest first so that FDUSD is not read as ...USD
BINANCE_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")
# Binance's NOTIONAL / MIN_NOTIONAL filter for symbols not listed below (2024)
BINANCE_DEFAULT_MIN_NOTIONAL = 5.0
BINANCE_STABLE = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD")


@dataclass(frozen=True)
class Spec:
    """A venue's specification of one instrument; ``None`` fields are left as the data has them."""

    contract: ContractKind = "linear"
    contract_size: float = 1.0
    base: str = ""
    quote: str = ""
    settle: str = ""
    size_unit: str = ""
    tick_size: float | None = None
    lot_size: float | None = None
    min_size: float | None = None  # smallest order, in units of size
    min_notional: float = 0.0
    price_band: tuple[float, float] | None = None
    source: str = ""

    def fields(self) -> dict[str, Any]:
        """The Instrument fields this spec sets (tick, lot and minimum size are applied separately)."""
        return {
            "contract": self.contract,
            "contract_size": self.contract_size,
            "base": self.base,
            "quote": self.quote,
            "settle": self.settle,
            "size_unit": self.size_unit,
            "min_notional": self.min_notional,
            "price_band": self.price_band,
        }


_BINANCE_USDM_2024 = "Binance USD-M exchangeInfo (MIN_NOTIONAL raised to 100 / 20 USDT in Nov 2023)"
_BINANCE_SPOT_2024 = "Binance spot exchangeInfo (NOTIONAL minNotional 5 USDT since 2023)"
_BINANCE_COINM = "Binance COIN-M contract specifications: 100 USD per BTC contract, 10 USD per other coin"

# Exact entries: the instruments of the shared data and the most traded neighbours.
KNOWN: dict[tuple[str, str], Spec] = {
    ("binance-spot", "BTCUSDT"): Spec(
        base="BTC", quote="USDT", tick_size=0.01, lot_size=0.00001, min_size=0.00001,
        min_notional=5.0, price_band=(0.2, 5.0), source=_BINANCE_SPOT_2024,
    ),
    ("binance-spot", "ETHUSDT"): Spec(
        base="ETH", quote="USDT", tick_size=0.01, lot_size=0.0001, min_size=0.0001,
        min_notional=5.0, price_band=(0.2, 5.0), source=_BINANCE_SPOT_2024,
    ),
    ("binance-usdm", "BTCUSDT"): Spec(
        base="BTC", quote="USDT", tick_size=0.1, lot_size=0.001, min_size=0.001,
        min_notional=100.0, price_band=(0.95, 1.05), source=_BINANCE_USDM_2024,
    ),
    ("binance-usdm", "ETHUSDT"): Spec(
        base="ETH", quote="USDT", tick_size=0.01, lot_size=0.001, min_size=0.001,
        min_notional=20.0, price_band=(0.95, 1.05), source=_BINANCE_USDM_2024,
    ),
    ("binance-coinm", "BTCUSD_PERP"): Spec(
        contract="inverse", contract_size=100.0, base="BTC", quote="USD", size_unit="contracts",
        tick_size=0.1, lot_size=1.0, min_size=1.0, price_band=(0.95, 1.05), source=_BINANCE_COINM,
    ),
    ("binance-coinm", "ETHUSD_PERP"): Spec(
        contract="inverse", contract_size=10.0, base="ETH", quote="USD", size_unit="contracts",
        tick_size=0.01, lot_size=1.0, min_size=1.0, price_band=(0.95, 1.05), source=_BINANCE_COINM,
    ),
    # tardis.dev samples: Deribit sizes are USD amounts in steps of one 10 USD contract
    ("deribit", "BTC-PERPETUAL"): Spec(
        contract="inverse", contract_size=1.0, base="BTC", quote="USD", size_unit="USD",
        tick_size=0.5, lot_size=10.0, min_size=10.0, source="Deribit contract specifications (10 USD)",
    ),
    ("deribit", "ETH-PERPETUAL"): Spec(
        contract="inverse", contract_size=1.0, base="ETH", quote="USD", size_unit="USD",
        tick_size=0.05, lot_size=1.0, min_size=1.0, source="Deribit contract specifications (1 USD)",
    ),
    ("bitmex", "XBTUSD"): Spec(
        contract="inverse", contract_size=1.0, base="BTC", quote="USD", size_unit="contracts",
        tick_size=0.5, lot_size=1.0, min_size=1.0, source="BitMEX XBTUSD: 1 USD per contract, settled in XBT",
    ),
    ("bitmex", "ETHUSD"): Spec(
        contract="quanto", contract_size=0.000001, base="ETH", quote="USD", settle="BTC",
        size_unit="contracts", tick_size=0.05, lot_size=1.0, min_size=1.0,
        source="BitMEX ETHUSD quanto: 0.000001 XBT per USD of price per contract",
    ),
    ("huobi-dm-swap", "BTC-USD"): Spec(
        contract="inverse", contract_size=100.0, base="BTC", quote="USD", size_unit="contracts",
        tick_size=0.1, lot_size=1.0, min_size=1.0,
        source="Huobi coin-margined swaps: 100 USD per BTC contract",
    ),
}


def _binance_pair(symbol: str) -> tuple[str, str]:
    pair = symbol.partition("_")[0]
    for quote in BINANCE_QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair[: -len(quote)], quote
    return "", ""


def _rule(venue: str, symbol: str) -> Spec | None:
    """A venue's published rule for an instrument not listed in :data:`KNOWN`, or None."""
    if venue in ("binance-spot", "binance-usdm"):
        base, quote = _binance_pair(symbol)
        minimum = BINANCE_DEFAULT_MIN_NOTIONAL if quote in BINANCE_STABLE else 0.0
        source = f"{venue} rule: linear, minimum order value {minimum:g} {quote or 'quote'}"
        return Spec(base=base, quote=quote, min_notional=minimum, source=source)
    if venue == "binance-coinm":
        base = _binance_pair(symbol)[0]
        size = 100.0 if base == "BTC" else 10.0
        return Spec(
            contract="inverse", contract_size=size, base=base, quote="USD", size_unit="contracts",
            lot_size=1.0, min_size=1.0, source=_BINANCE_COINM,
        )
    if venue == "nasdaq":
        return Spec(base=symbol, quote="USD", size_unit="shares", min_size=1.0, source="NASDAQ equity")
    if venue == "deribit" and re.fullmatch(r"(BTC|ETH)-\w+", symbol):
        size = 10.0 if symbol.startswith("BTC") else 1.0
        return Spec(
            contract="inverse", contract_size=1.0, base=symbol[:3], quote="USD", size_unit="USD",
            lot_size=size, min_size=size, source=f"Deribit inverse futures: {size:g} USD contracts",
        )
    if venue == "huobi-dm-swap" and symbol.endswith("-USD"):
        base = symbol[:-4]
        size = 100.0 if base == "BTC" else 10.0
        return Spec(
            contract="inverse", contract_size=size, base=base, quote="USD", size_unit="contracts",
            lot_size=1.0, min_size=1.0, source=f"Huobi coin-margined swaps: {size:g} USD per contract",
        )
    return None


# venues where an unlisted instrument may be linear, inverse or quanto: refused rather than guessed
MIXED_VENUES = ("bitmex", "deribit", "huobi-dm-swap", "okex", "okex-swap", "bybit", "kraken-futures")


def lookup(venue: str, symbol: str) -> Spec | None:
    """The specification of ``symbol`` on ``venue`` (exact entry, else the venue's rule), or None."""
    venue = VENUE_ALIASES.get(venue.lower(), venue.lower())
    symbol = symbol.upper()
    spec = KNOWN.get((venue, symbol)) or _rule(venue, symbol)
    if spec is None and venue in MIXED_VENUES:
        raise ConfigError(
            f"{venue} {symbol}: this venue lists linear, inverse and quanto contracts and {symbol} is not "
            "one Quotewise knows; give --contract linear|inverse|quanto and --contract-size"
        )
    return spec


def with_spec(instrument: Instrument, spec: Spec) -> Instrument:
    """``instrument`` with the contract, currencies and minimums of ``spec`` (tick and lot as they are:
    the events are in their units); the minimum size is rounded up to whole lots."""
    update = spec.fields()
    if spec.min_size is not None:
        update["min_size_lots"] = max(1, _ceil_lots(spec.min_size, instrument.lot_size))
    return Instrument(**{**instrument.model_dump(), **update})


def _ceil_lots(size: float, lot: float) -> int:
    lots = size / lot
    return int(lots) if abs(lots - round(lots)) < 1e-9 else int(lots) + 1


def grid_factor(data_step: float, listed_step: float) -> int | None:
    """How many listed steps make one step of the data's grid (an integer >= 1), or None when the
    data has values off the listed grid (a finer or shifted grid: the listing is of another date)."""
    ratio = data_step / listed_step
    k = round(ratio)
    return k if k >= 1 and abs(ratio - k) < 1e-9 * max(1.0, ratio) else None


def with_overrides(
    instrument: Instrument,
    *,
    maker_fee: float | None = None,
    taker_fee: float | None = None,
    contract: str | None = None,
    contract_size: float | None = None,
    min_size: float | None = None,
    min_notional: float | None = None,
) -> Instrument:
    """``instrument`` with what the user stated on the command line (None: not given), validated as a
    new instrument: a fee of 1e9 or a negative contract size is a ConfigError naming the field."""
    update: dict[str, Any] = {}
    if maker_fee is not None:
        update["maker_fee"] = maker_fee
    if taker_fee is not None:
        update["taker_fee"] = taker_fee
    if contract is not None:
        if contract not in ("linear", "inverse", "quanto"):
            raise ConfigError(f"--contract must be linear, inverse or quanto, got {contract!r}")
        update["contract"] = contract
    if contract_size is not None:
        update["contract_size"] = contract_size
    if min_notional is not None:
        update["min_notional"] = min_notional
    if min_size is not None:
        if not min_size > 0:
            raise ConfigError(f"--min-size must be positive, got {min_size}")
        update["min_size_lots"] = max(1, _ceil_lots(min_size, instrument.lot_size))
    if not update:
        return instrument
    try:
        return Instrument(**{**instrument.model_dump(), **update})
    except ValueError as exc:
        raise ConfigError(f"instrument: {one_line(exc)}") from None

