"""Parsing of the quantities users type: durations, fees and price distances with their units."""

from __future__ import annotations

import math
import re

from quotewise.errors import ConfigError

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
}
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: {text!r} is not a number") from exc
    if not math.isfinite(value):
        raise ConfigError(f"{what}: {text!r} is not a finite number")
    return value


def parse_duration(text: str | int | float, what: str = "duration") -> int:
    """``"1ms"``, ``"250us"``, ``"2s"``, ``"0"`` -> nanoseconds. A bare number means nanoseconds."""
    if isinstance(text, int | float):
        value = _number(str(text), what)
        if value < 0:
            raise ConfigError(f"{what} must be >= 0, got {text!r}")
        return int(value)
    m = re.fullmatch(_NUMBER + r"\s*(ns|us|µs|ms|s|m)?", text.strip())
    if not m:
        raise ConfigError(f"{what}: cannot read {text!r}; write e.g. 1ms, 250us, 2s or 0")
    value = _number(m.group(1), what) * _DURATION_UNITS[m.group(2) or "ns"]
    if value < 0:
        raise ConfigError(f"{what} must be >= 0, got {text!r}")
    return round(value)


def parse_fee(text: str | float, what: str = "fee") -> float:
    """``"-0.2bp"``, ``"0.5bps"``, ``"0.02%"``, ``"0.0001"`` -> a fraction of notional (negative = rebate)."""
    if isinstance(text, int | float):
        return _number(str(text), what)
    m = re.fullmatch(_NUMBER + r"\s*(bps?|%)?", text.strip())
    if not m:
        raise ConfigError(f"{what}: cannot read {text!r}; write e.g. -0.2bp, 0.5bp, 0.02% or 0.0001")
    value = _number(m.group(1), what)
    unit = m.group(2)
    if unit in ("bp", "bps"):
        return value * 1e-4
    if unit == "%":
        return value * 1e-2
    return value


def parse_distance(text: str | float, tick_size: float, mid: float, what: str = "distance") -> float:
    """A price distance: ``"2ticks"``/``"2t"`` (ticks), ``"5bp"`` (of ``mid``), or a plain price amount."""
    if isinstance(text, int | float):
        return _number(str(text), what)
    m = re.fullmatch(_NUMBER + r"\s*(ticks?|t|bps?|%)?", text.strip())
    if not m:
        raise ConfigError(f"{what}: cannot read {text!r}; write e.g. 2ticks, 5bp or 0.05")
    value = _number(m.group(1), what)
    unit = m.group(2)
    if unit in ("tick", "ticks", "t"):
        return value * tick_size
    if unit in ("bp", "bps"):
        return value * 1e-4 * mid
    if unit == "%":
        return value * 1e-2 * mid
    return value


def check_distance(text: str | float, what: str = "distance", allow_zero: bool = False) -> str | float:
    """Validate a distance without an instrument (for config validation): its syntax, and that it is
    positive (or zero, where ``allow_zero`` says a zero distance means something). Raises ValueError,
    so a pydantic model reports it under the field's name."""
    try:
        value = parse_distance(text, 1.0, 1.0, what)
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix(f"{what}: ")) from None
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"must be {'>= 0' if allow_zero else '> 0'}, got {text!r}")
    return text
