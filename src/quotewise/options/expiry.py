"""Time to expiry as a person writes it: ``30d``, ``12h``, ``0.25y`` or a plain number of years."""

from __future__ import annotations

import math
import re

from quotewise.errors import ConfigError

DAYS_PER_YEAR = 365.0  # calendar days: theta and the rates are per calendar year
_UNITS = {"y": 1.0, "d": 1.0 / DAYS_PER_YEAR, "h": 1.0 / (DAYS_PER_YEAR * 24.0)}
_EXPIRY = re.compile(r"([+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([ydh]?)")


def parse_expiry(text: str | float, what: str = "--expiry") -> float:
    """Years to expiry, > 0. A day is 1/365 of a year, an hour 1/24 of a day."""
    if isinstance(text, bool):
        raise ConfigError(f"{what}: cannot read {text!r}")
    match = _EXPIRY.fullmatch(str(text).strip().lower())
    if match is None:
        raise ConfigError(
            f"{what}: cannot read {text!r}; write a time to expiry such as 30d, 12h, 0.25y "
            "or a number of years"
        )
    years = float(match.group(1)) * _UNITS[match.group(2) or "y"]
    if not (math.isfinite(years) and years > 0):
        raise ConfigError(f"{what} must be a finite time > 0, got {text!r}")
    return years
