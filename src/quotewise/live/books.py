"""Books: makers grouped under one name, with their totals and the limits the engine holds them to.

A book's figures are in the quote currency of its instruments (a book holds one: a maker quoted in
another is refused at start). Each maker's exposure is its position valued at the mid in the quote
currency (:meth:`Instrument.quote_notional`, signed): ``position x mid x contract size`` for a linear
contract, ``position x contract size`` for an inverse one (its size is quote currency already). Its
P&L (cash plus the position marked at the mid: realised and unrealised together, the figure ``mm
status`` shows) is in its settlement currency; an inverse contract's, in coins, is converted at the
mid (:meth:`Instrument.to_quote`). A quanto contract has no quote-currency figure: it is listed under
``unpriced`` and left out of the totals. A maker with no mid yet counts its P&L as its cash and no
exposure.

net = sum of exposures; gross = sum of their absolute values; a maker's share = |exposure| / gross
(instantaneous: :class:`quotewise.portfolio.risk.Exposure` is the same on a backtest's time grid,
averaged over time; built as a DataFrame it costs ~0.5 ms, too much for the event loop every 100 ms).

Limits (all optional, none negative): ``max_loss`` (breached when the book's P&L < -max_loss),
``max_gross`` (gross > max_gross), ``max_net`` (|net| > max_net), ``var_1m`` (the book's 99% parametric
1-minute VaR > var_1m: :class:`PnlHistory`, the backtest's rule). What a breach does (``action``):
``halt`` every maker (``flatten``: and close every position), ``pause`` each maker's quoting for
``pause_for``, or let it quote for ``pause_for`` only the side that reduces its position (``reduce``),
again while the book is still beyond a limit when that ends.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from quotewise.errors import ConfigError
from quotewise.model.instrument import Instrument
from quotewise.parsing import format_duration, parse_duration
from quotewise.portfolio.risk import COV_WINDOW, MINUTE_S, parametric_var

# a word of at most 21 characters: "book-limit:NAME", the audit's actor for its halts, fits 32
BOOK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$"
BOOK_NAME = re.compile(BOOK_NAME_PATTERN)
LIMITS = ("max_loss", "max_gross", "max_net", "var_1m")
ACTIONS = ("halt", "pause", "reduce")


def check_book_name(name: str) -> str:
    if not BOOK_NAME.match(name):
        raise ConfigError(f"book name {name!r}: letters, digits, . _ - (at most 21, a letter or digit first)")
    return name


def book_limits(values: dict[str, Any]) -> dict[str, Any]:
    """Limits as stored: each of :data:`LIMITS` a number >= 0 or None, ``flatten``, the ``action`` and
    its ``pause_for`` (canonical text; None with halt); anything else is refused by name."""
    unknown = set(values) - {*LIMITS, "flatten", "action", "pause_for"}
    if unknown:
        known = ", ".join((*LIMITS, "flatten", "action", "pause_for"))
        raise ConfigError(f"unknown book limit {', '.join(sorted(unknown))}: {known}")
    out: dict[str, Any] = {"flatten": bool(values.get("flatten", False))}
    out["action"], out["pause_for"] = _action(values)
    for name in LIMITS:
        value = values.get(name)
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name}: a number, got {value!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name}: must be >= 0, got {value!r}")
        out[name] = value
    if out["flatten"] and out["action"] != "halt":
        raise ConfigError(f"flatten: closes the positions of a halt, not of a {out['action']}")
    if all(out[name] is None for name in LIMITS):
        raise ConfigError(f"give at least one limit: {', '.join('--' + n.replace('_', '-') for n in LIMITS)}")
    return out


def _action(values: dict[str, Any]) -> tuple[str, str | None]:
    """(action, pause_for as canonical duration text or None for a halt), checked."""
    action = values.get("action") or "halt"
    if action not in ACTIONS:
        raise ConfigError(f"action: one of {', '.join(ACTIONS)}, got {action!r}")
    given = values.get("pause_for")
    if action == "halt":
        if given is not None:
            raise ConfigError("pause_for: how long a pause or reduce lasts; a halt lasts until resumed")
        return action, None
    ns = parse_duration(given if given is not None else "1m", "pause_for")
    if ns <= 0:
        raise ConfigError(f"pause_for: must be a positive duration, got {given!r}")
    return action, format_duration(ns)


@dataclass(frozen=True)
class MakerFigures:
    """What a book needs of one maker: its live state, as ``mm status`` shows it."""

    maker_id: str
    market: str
    status: str
    halted: str | None
    instrument: Instrument
    position_lots: int  # signed, in lots
    mid_ticks: float | None  # the book's mid; None when one side is empty or unknown
    pnl: float | None  # settlement currency


def maker_line(m: MakerFigures) -> dict[str, Any]:
    """One maker's row in the book, its P&L and exposure in the quote currency (None: unpriced)."""
    inst = m.instrument
    mid = m.mid_ticks
    exposure = 0.0 if mid is None or m.position_lots == 0 else inst.quote_notional(mid, m.position_lots)
    if inst.contract == "quanto":
        exposure = math.nan
    pnl = m.pnl
    if pnl is not None and inst.contract != "linear":
        pnl = inst.to_quote(pnl, mid) if mid is not None else math.nan
    priced = math.isfinite(exposure) and (pnl is None or math.isfinite(pnl))
    return {
        "id": m.maker_id,
        "market": m.market,
        "status": m.status,
        "halted": m.halted,
        "position": inst.qty(m.position_lots),
        "pnl": pnl if priced else None,
        "pnl_settle": m.pnl,
        "settle_currency": inst.settle_currency,
        "exposure": exposure if priced else None,
        "share": None,
    }


def book_totals(
    name: str, makers: list[MakerFigures], limits: dict[str, Any] | None = None, var_1m: float | None = None
) -> dict:
    """The book's makers and totals (see the module docstring): P&L, net and gross exposure in the
    quote currency, each maker's share of the gross, its 1-minute VaR (``var_1m``, None while not
    known), and which limits are breached now."""
    lines = [maker_line(m) for m in makers]
    priced = [line for line in lines if line["exposure"] is not None]
    net = math.fsum(line["exposure"] for line in priced)
    gross = math.fsum(abs(line["exposure"]) for line in priced)
    for line in priced:
        line["share"] = abs(line["exposure"]) / gross if gross > 0 else 0.0
    totals = {
        "pnl": math.fsum(line["pnl"] or 0.0 for line in priced),
        "net_exposure": net,
        "gross_exposure": gross,
        "var_1m": var_1m,
    }
    currencies = sorted({m.instrument.quote_currency for m in makers})
    return {
        "book": name,
        "currency": currencies[0] if len(currencies) == 1 else None,
        "makers": lines,
        "unpriced": [line["id"] for line in lines if line["exposure"] is None],
        "totals": totals,
        "limits": limits,
        "breaches": breaches(totals, limits),
    }


def breaches(totals: dict[str, float], limits: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each limit the totals are beyond now: ``{limit, value, threshold}`` (strictly beyond)."""
    if not limits:
        return []
    checks = {
        "max_loss": -totals["pnl"],
        "max_gross": totals["gross_exposure"],
        "max_net": abs(totals["net_exposure"]),
        "var_1m": totals.get("var_1m"),
    }
    return [
        {"limit": name, "value": value, "threshold": limits[name]}
        for name, value in checks.items()
        if limits.get(name) is not None and value is not None and value > limits[name]
    ]


class PnlHistory:
    """A book's P&L sampled once a second of the engine's clock, its last ``COV_WINDOW`` changes: the
    rolling 99% parametric 1-minute VaR the portfolio backtest holds ``var_1m`` to
    (:func:`quotewise.portfolio.risk.parametric_var`: z x sigma x sqrt(60 s / 1 s))."""

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=COV_WINDOW + 1)
        self.last_ns: int | None = None

    def add(self, now_ns: int, pnl: float) -> None:
        if self.last_ns is None or now_ns - self.last_ns >= 1_000_000_000:
            self.samples.append(pnl)
            self.last_ns = now_ns

    def var_1m(self) -> float | None:
        """None until two changes are known (as the backtest's rolling VaR)."""
        if len(self.samples) < 3:
            return None
        return parametric_var(np.diff(np.asarray(self.samples)), MINUTE_S, 1.0)
