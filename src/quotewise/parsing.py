"""The quantities users type, parsed once at the edge into typed values: durations, fees and price
distances with their units.

Units are as market makers write them, the same on every command, in YAML and in the API:

- a **duration** is ``250us``, ``100ms``, ``5s``, ``2m``, ``1h``, ``2d``; a bare number is
  milliseconds (``--interval 5000`` is 5 s);
- a **price distance** is ``2ticks`` (or ``2t``), ``5bp``, ``0.5%`` of the mid, or ``0.05px`` in
  price; a bare number is ticks (``--spread 2`` on a 1-cent tick is 2 cents);
- a **fee** is ``-0.2bp``, ``0.02%`` or a fraction of notional (``0.0001``).

Settings models hold the parsed values (:data:`Duration` is int nanoseconds, :data:`Distance` a
:class:`PriceDistance`) and write them back as text in their canonical unit (``5s``, ``2ticks``),
so a stored config reads back the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from quotewise.errors import ConfigError

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
BARE_DURATION = "ms"  # what a duration without a unit is
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: {text!r} is not a number") from exc
    if not math.isfinite(value):
        raise ConfigError(f"{what}: {text!r} is not a finite number")
    return value


# -- durations ------------------------------------------------------------------------------------


def parse_duration(text: str | int | float, what: str = "duration") -> int:
    """``"1ms"``, ``"250us"``, ``"2s"``, ``"5m"``, ``"1.5h"``, ``"2d"``, ``"0"`` -> nanoseconds. A bare
    number (or a number given as such) is milliseconds. Hours and days are there for risk windows."""
    m = re.fullmatch(_NUMBER + r"\s*(ns|us|µs|ms|s|m|h|d)?", str(text).strip())
    if isinstance(text, bool) or not m:
        raise ConfigError(f"{what}: cannot read {text!r}; write e.g. 250us, 100ms, 2s, 5m, 1h, 2d or 0")
    _number(m.group(1), what)
    value = Fraction(m.group(1)) * _DURATION_UNITS[m.group(2) or BARE_DURATION]  # exact to the ns
    if value < 0:
        raise ConfigError(f"{what} must be >= 0, got {text!r}")
    return round(value)


def format_duration(ns: int) -> str:
    """Nanoseconds as text in the largest unit that states them exactly: ``5s``, ``1500ms``, ``2d``."""
    if ns == 0:
        return "0"
    for unit in ("d", "h", "m", "s", "ms", "us"):
        size = _DURATION_UNITS[unit]
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def setting(parse: Callable[[Any, str], Any]) -> BeforeValidator:
    """``parse(value, name)`` as the validator of a setting in a pydantic model: its ConfigError is
    the error pydantic reports under the setting's name (so without the name in front)."""

    def validate(value: Any, info: Any) -> Any:
        name = info.field_name
        try:
            return parse(value, name)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix(f"{name}: ").removeprefix(f"{name} ")) from None

    return BeforeValidator(validate)


Duration = Annotated[
    int,
    setting(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["100ms", "5s", "1h"]}),
]


# -- times and windows ----------------------------------------------------------------------------


def parse_time(text: str, what: str = "time") -> int:
    """An ISO-8601 time (UTC unless it says otherwise) or integer nanoseconds since the epoch."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{what} {text!r}: write an ISO time such as 2024-08-09T00:00:00 or nanoseconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1_000


def time_windows(text: str, what: str = "windows") -> list[tuple[int, int]]:
    """``START/DURATION[,START/DURATION...]`` (START an ISO time or epoch ns) as (start, end) ns
    pairs, in order; overlapping windows are kept as given."""
    out = []
    for item in str(text).split(","):
        start, sep, length = item.strip().partition("/")
        if not sep:
            raise ConfigError(f"{what}: {item.strip()!r} is not START/DURATION, e.g. 2024-08-08T13:30:00/5m")
        begin = parse_time(start, what)
        span = parse_duration(length, what)
        if span <= 0:
            raise ConfigError(f"{what}: {item.strip()!r} lasts no time")
        out.append((begin, begin + span))
    return sorted(out)


def parse_windows(text: Any, what: str = "windows") -> str:
    """Validate :func:`time_windows` text and keep it as written (the engine reads it again)."""
    time_windows(text, what)
    return str(text).strip()


Windows = Annotated[
    str,
    setting(parse_windows),
    WithJsonSchema({"type": "string", "examples": ["2024-08-08T13:30:00/5m,2024-08-08T14:00:00/1m"]}),
]


# -- fees -----------------------------------------------------------------------------------------


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


Fee = Annotated[
    float,
    setting(parse_fee),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}], "examples": ["-0.2bp", "0.02%"]}),
]


# -- price distances ------------------------------------------------------------------------------

DistanceUnit = Literal["ticks", "bp", "%", "px"]
_DISTANCE_UNITS: dict[str, DistanceUnit] = {
    "": "ticks",
    "t": "ticks",
    "tick": "ticks",
    "ticks": "ticks",
    "bp": "bp",
    "bps": "bp",
    "%": "%",
    "px": "px",
}


@dataclass(frozen=True)
class PriceDistance:
    """A distance in price as a user states it: ``amount`` ticks, bp or % of the mid, or price (px)."""

    amount: float
    unit: DistanceUnit = "ticks"

    def __str__(self) -> str:
        amount = str(int(self.amount)) if float(self.amount).is_integer() else repr(float(self.amount))
        if self.unit == "ticks":
            return f"{amount}{'tick' if self.amount == 1 else 'ticks'}"
        return f"{amount}{self.unit}"

    def resolve(self, tick_size: float) -> tuple[float, float]:
        """``(ticks, frac)``: the distance is ``ticks + frac x mid`` in ticks on this instrument."""
        if self.unit == "ticks":
            return self.amount, 0.0
        if self.unit == "px":
            return self.amount / tick_size, 0.0
        return 0.0, self.amount * (1e-4 if self.unit == "bp" else 1e-2)


def parse_distance(text: str | float | PriceDistance, what: str = "distance") -> PriceDistance:
    """``"2ticks"``, ``"2"`` (ticks), ``"5bp"``, ``"0.5%"``, ``"0.05px"`` -> a :class:`PriceDistance`."""
    if isinstance(text, PriceDistance):
        return text
    m = re.fullmatch(_NUMBER + r"\s*(ticks?|t|bps?|%|px)?", str(text).strip())
    if isinstance(text, bool) or not m:
        raise ConfigError(f"{what}: cannot read {text!r}; write e.g. 2 (ticks), 2ticks, 5bp, 0.5% or 0.05px")
    return PriceDistance(_number(m.group(1), what), _DISTANCE_UNITS[m.group(2) or ""])


def _non_negative_distance(value: Any, what: str) -> PriceDistance:
    distance = parse_distance(value, what)
    if distance.amount < 0:
        raise ConfigError(f"{what}: must be >= 0, got {value!r}")
    return distance


Distance = Annotated[
    PriceDistance,
    setting(_non_negative_distance),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["2", "2ticks", "5bp", "0.05px"]}),
]
