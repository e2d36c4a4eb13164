"""How a binary-outcome market ends: each share pays 1 (its outcome happened) or 0, and a backtest's
position is settled at that price instead of being marked at the last mid.

The price comes from ``--resolve`` (``yes``, ``no``, or a file saying which) or, without it, from
the data itself (a Polymarket capture's ``market_resolved`` message: the reader puts the token's
``settlement_price`` in its report). The P&L attribution gains a fourth line, ``settlement`` =
P (v(s) - v(M)): what settling the final position P at s adds to marking it at the last mid M, so that
spread + inventory + fees + settlement = total, exactly (docs/prediction-markets.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quotewise.errors import ConfigError

OUTCOMES = {"yes": 1.0, "no": 0.0}


@dataclass(frozen=True)
class Settlement:
    """The price each share of the instrument pays at the end, and where that was read."""

    price: float
    source: str


def _outcome(value: Any, where: str) -> float:
    """``yes``/``no`` (any case), ``1``/``0``, or a price in [0, 1]."""
    if isinstance(value, str) and value.strip().lower() in OUTCOMES:
        return OUTCOMES[value.strip().lower()]
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not an outcome (yes, no, or a price from 0 to 1)") from None
    if not 0.0 <= price <= 1.0:
        raise ConfigError(f"{where}: a settlement price is from 0 to 1, got {price:g}")
    return price


def _from_file(path: Path) -> float:
    """A file that says the outcome: ``yes``/``no`` as text, or JSON ``{"outcome": "yes"}`` or
    ``{"settlement_price": 1.0}``."""
    text = path.read_text(encoding="utf-8").strip()
    try:
        content = json.loads(text)
    except json.JSONDecodeError:
        return _outcome(text, str(path))
    if isinstance(content, dict):
        for key in ("settlement_price", "outcome", "resolution", "winning_outcome"):
            if key in content:
                return _outcome(content[key], f"{path} ({key})")
        raise ConfigError(f"{path}: no outcome in it (keys outcome or settlement_price)")
    return _outcome(content, str(path))


def settlement(resolve: str | None, report: dict[str, Any]) -> Settlement | None:
    """The settlement ``--resolve`` asks for, else the one the data holds, else None (the position
    stays marked at the last mid)."""
    if resolve is not None:
        if resolve.strip().lower() in OUTCOMES:
            return Settlement(OUTCOMES[resolve.strip().lower()], f"--resolve {resolve.strip().lower()}")
        path = Path(resolve)
        if not path.is_file():
            raise ConfigError(f"--resolve takes yes, no or a file saying which; {resolve!r} is none of them")
        return Settlement(_from_file(path), f"--resolve {path}")
    price = report.get("settlement_price")
    if price is None:
        return None
    source = str(report.get("settlement_source") or "the data (market_resolved)")
    return Settlement(_outcome(price, source), source)
