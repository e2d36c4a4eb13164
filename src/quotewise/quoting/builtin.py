"""The built-in strategies, by the name ``--strategy`` takes (built in :mod:`quotewise.quoting.named`)."""

from __future__ import annotations

from quotewise.quoting.adaptive import AdaptiveStrategy
from quotewise.quoting.base import Strategy
from quotewise.quoting.named import (
    NAMED,
    AvellanedaStoikovStrategy,
    GLFTStrategy,
    LadderStrategy,
    SkewStrategy,
    SymmetricStrategy,
)

__all__ = [
    "BUILTIN",
    "AdaptiveStrategy",
    "AvellanedaStoikovStrategy",
    "GLFTStrategy",
    "LadderStrategy",
    "SkewStrategy",
    "SymmetricStrategy",
]

BUILTIN: dict[str, type[Strategy]] = {cls.name: cls for cls in (*NAMED, AdaptiveStrategy)}
