"""The faults the Binance emulator injects on purpose, so a client's recovery paths get exercised
locally: dropped connections, throttling, server errors, slow order answers, duplicated, swapped or
missing stream messages and a server clock that is off.

The spec is comma-separated ``key=value`` pairs, e.g.
``drop=10s,429=0.05,5xx=0.02,ack_delay=200ms,dup=0.01,reorder=0.01,gap=30s,skew=2s``:

- ``drop``: close every websocket connection every this long;
- ``429`` / ``5xx``: this share of REST requests is answered 429 (code -1003) / 503;
- ``ack_delay``: REST order answers are held this long (the order is placed at once);
- ``dup`` / ``reorder``: this share of stream messages is sent twice / swapped with the next one;
- ``gap``: one depthUpdate is left out every this long (a sequence gap the client must see via pu);
- ``skew``: the server clock is this far ahead (``-2s``: behind);
- ``seed``: the random generator's seed (the same seed draws the same faults).

Durations are as everywhere else (a bare number is ms); shares are fractions or percentages.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from quotewise.errors import ConfigError
from quotewise.parsing import parse_duration

NS_PER_S = 1_000_000_000
SHARES = {"429": "throttle", "5xx": "server_error", "dup": "dup", "reorder": "reorder"}
PERIODS = {"drop": "drop_every", "gap": "gap_every"}
FAULT_NAMES = ("drop", "429", "5xx", "ack_delay", "dup", "reorder", "gap", "skew")
KNOWN_KEYS = (*FAULT_NAMES, "seed")


@dataclass(frozen=True)
class Faults:
    """What to inject; zero turns a fault off. Periods and delays in seconds, shares in 0..1."""

    drop_every: float = 0.0
    throttle: float = 0.0
    server_error: float = 0.0
    ack_delay: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    gap_every: float = 0.0
    skew: float = 0.0
    seed: int = 0


def _share(key: str, text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError as exc:
        raise ConfigError(f"--faults {key}={text}: not a share (write e.g. 0.05 or 5%)") from exc
    if not 0 <= value <= 1:
        raise ConfigError(f"--faults {key}={text}: a share must be between 0 and 1 (or 0% and 100%)")
    return value


def _seconds(key: str, text: str, signed: bool = False) -> float:
    sign = -1.0 if signed and text.startswith("-") else 1.0
    body = text[1:] if sign < 0 else text
    return sign * parse_duration(body, f"--faults {key}") / NS_PER_S


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise ConfigError(f"--faults seed={text}: the seed must be an integer") from exc


def _pair(part: str) -> tuple[str, str]:
    key, eq, value = part.partition("=")
    key, value = key.strip(), value.strip()
    if not eq or not key or not value:
        raise ConfigError(f"--faults: {part.strip()!r} is not key=value (e.g. drop=10s,429=0.05)")
    if key not in KNOWN_KEYS:
        raise ConfigError(
            f"--faults: unknown fault {key!r} in {part.strip()!r}; known: {', '.join(KNOWN_KEYS)}"
        )
    return key, value


def parse_faults(spec: str | None) -> Faults:
    """The faults of a ``key=value,...`` spec (empty or None: none); a bad part is named in the error."""
    values: dict[str, float | int] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, text = _pair(part)
        if key in SHARES:
            values[SHARES[key]] = _share(key, text)
        elif key in PERIODS:
            values[PERIODS[key]] = _seconds(key, text)
        elif key == "ack_delay":
            values["ack_delay"] = _seconds(key, text)
        elif key == "skew":
            values["skew"] = _seconds(key, text, signed=True)
        else:
            values["seed"] = _seed(text)
    return Faults(**values)


@dataclass
class FaultDice:
    """Draws the random faults and counts every fault injected (``counts``, by the spec's names)."""

    faults: Faults
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.faults.seed)
        for name in FAULT_NAMES:
            self.counts[name] = 0

    def hit(self, name: str, share: float) -> bool:
        """True (and counted) for about ``share`` of the calls."""
        if share <= 0 or self._rng.random() >= share:
            return False
        self.counts[name] += 1
        return True

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n
