"""A portfolio backtest: each quoting instrument through the ordinary backtest (its own folder), then
the taker hedge over their fills, then the book: P&L attribution, exposure and risk (docs/portfolio.md).

Book currency: the instruments' quote currency. An inverse instrument's P&L (in its coin) is converted
at its final mid for the totals and at its mid at each time for the curves, so every part of the
attribution is scaled by the same factor and the identity still holds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quotewise.backtest.source import DataSource
from quotewise.book.orderbook import replay_mids
from quotewise.errors import ConfigError, DataError
from quotewise.model.instrument import Instrument
from quotewise.portfolio.config import InstrumentSpec, PortfolioSpec
from quotewise.portfolio.hedge import (
    BOOK_PAD_TICKS,
    BookClock,
    HedgeResult,
    MakingLeg,
    rolling_beta,
    run_hedge,
    walk_book,
)
from quotewise.portfolio.risk import Exposure, first_breach, limit_series, portfolio_risk
from quotewise.settings import LISTING_FIELDS

GRID_NS = 1_000_000_000  # the book's curves and risk are sampled every second
BETA_WINDOW = 300  # seconds of 1-second returns in the rolling beta
BETA_MIN_OBS = 30
HEDGE = "hedge"
MAX_LIMIT_WINDOWS = 20  # pause/reduce windows at most: each one runs the making legs again


@dataclass
class Leg:
    name: str
    spec: InstrumentSpec
    source: DataSource
    summary: dict[str, Any] | None = None
    fills: pd.DataFrame | None = None
    equity: pd.DataFrame | None = None
    flatten: dict[str, Any] | None = None  # the halt's closing trade (``_flatten_leg``)

    @property
    def instrument(self) -> Instrument:
        return self.source.instrument


def _load(name: str, spec: InstrumentSpec) -> DataSource:
    import quotewise.api as qw

    listing = {k: v for k, v in spec.settings.items() if k in LISTING_FIELDS}
    if spec.role == "hedge":
        other = sorted((set(spec.settings) - set(LISTING_FIELDS)) | ({"strategy"} & spec.model_fields_set))
        if other:
            raise ConfigError(
                f"portfolio instruments.{name}: a hedge-only instrument does not quote; {other} do not apply"
            )
    else:
        qw.check_settings(spec.strategy, spec.settings, lambda s: f"instruments.{name}.{s}")
    try:
        return qw.load(spec.data, events=spec.events, seed=spec.seed, format=spec.format, **listing)
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"portfolio instruments.{name}: {exc}") from None


def cut_at(source: DataSource, t: int) -> DataSource:
    """``source``'s events up to exchange time ``t``: the backtest is causal, so a run on them is the
    full run up to ``t`` and nothing after."""

    def chunks() -> Any:
        for chunk in source.chunks():
            kept = chunk[chunk["exch_ts"] <= t]
            if len(kept):
                yield kept

    return replace(source, name=f"{source.name}[..{t}]", chunks=chunks)


def _run_leg(
    leg: Leg, out: Path, quiet: bool, halt_ns: int | None = None, extra: dict[str, str] | None = None
) -> None:
    import quotewise.api as qw

    run = {k: v for k, v in leg.spec.settings.items() if k not in LISTING_FIELDS}
    for key, windows in (extra or {}).items():  # the book's windows beside the leg's own
        run[key] = f"{run[key]},{windows}" if run.get(key) else windows
    source = leg.source if halt_ns is None else cut_at(leg.source, halt_ns)
    result = qw.backtest(source, leg.spec.strategy, out=out / leg.name, report=True, **run)
    leg.summary = result.summary
    leg.fills = pd.read_parquet(out / leg.name / "fills.parquet")
    leg.equity = pd.read_parquet(out / leg.name / "equity.parquet")


def _grid(legs: list[Leg], hedge_events: np.ndarray | None) -> np.ndarray:
    starts, ends = [], []
    for leg in legs:
        if leg.equity is not None and len(leg.equity):
            starts.append(int(leg.equity["ts"].iloc[0]))
            ends.append(int(leg.equity["ts"].iloc[-1]))
    if hedge_events is not None and len(hedge_events):
        starts.append(int(hedge_events["exch_ts"][0]))
        ends.append(int(hedge_events["exch_ts"][-1]))
    if not starts:
        return np.zeros(1, np.int64)
    start, end = min(starts), max(ends)
    return np.arange(start, end + GRID_NS, GRID_NS, dtype=np.int64)


def _as_of(ts: np.ndarray, values: np.ndarray, grid: np.ndarray, before: float = math.nan) -> np.ndarray:
    """The last value at or before each grid time (``before`` ahead of the first)."""
    idx = np.searchsorted(ts, grid, side="right") - 1
    out = np.where(idx >= 0, values[np.maximum(idx, 0)] if len(values) else before, before)
    return out.astype(float)


def _hedge_mid_grid(events: np.ndarray, source: DataSource, grid: np.ndarray) -> np.ndarray:
    """The hedge book's mid at each grid time, from an exact replay of its events."""
    lo, hi = max(source.price_lo - BOOK_PAD_TICKS, 0), source.price_hi + BOOK_PAD_TICKS
    mid = replay_mids(events, lo, hi, source.instrument.tick_size, grid)
    return pd.Series(mid).ffill().to_numpy()


def _leg_mids(leg: Leg) -> tuple[np.ndarray, np.ndarray]:
    """The leg's equity samples that have a mid: their times and mids."""
    eq = leg.equity
    assert eq is not None
    valid = eq["mid"].notna().to_numpy()
    return eq["ts"].to_numpy()[valid], eq["mid"].to_numpy(dtype=float)[valid]


def _leg_mid_grid(leg: Leg, grid: np.ndarray) -> np.ndarray:
    return _as_of(*_leg_mids(leg), grid)


def _leg_mid_at(leg: Leg) -> Any:
    """The leg's mid at any time: the last equity sample's at or before it."""
    ts, mid = _leg_mids(leg)
    return lambda t: float(_as_of(ts, mid, np.array([t]))[0])


def _to_book(inst: Instrument, amount: np.ndarray | float, mid: np.ndarray | float) -> np.ndarray | float:
    """Settlement currency to the book's (quote) currency: coins x mid for inverse contracts."""
    return amount * mid if inst.inverse else amount


def _quote_exposure(inst: Instrument, position: np.ndarray, mid: np.ndarray) -> np.ndarray:
    """Signed exposure in the quote currency: position x base units per unit x mid."""
    return position * inst.contract_size if inst.inverse else position * inst.contract_size * mid


def _hedge_ratio(spec: PortfolioSpec, leg: Leg, hedge_mid: np.ndarray, grid: np.ndarray) -> Any:
    ratio = spec.hedge.ratio if spec.hedge is not None else 1.0
    if leg.name == (spec.hedge.instrument if spec.hedge else None) or ratio == "contract":
        return lambda t: 1.0
    if ratio == "beta":
        return rolling_beta(_leg_mid_grid(leg, grid), hedge_mid, grid, BETA_WINDOW, BETA_MIN_OBS)
    value = float(ratio)
    return lambda t: value


def hedge_attribution(fills: pd.DataFrame, inst: Instrument, final_mid: float) -> tuple[float, float]:
    """(hedging, fees) of the hedge trades: ``sum s q (v(M) - v(p))`` marked at the hedge's final
    mid M, and ``-sum fee``; their sum is the hedge's cash + H v(M)."""
    if not len(fills):
        return 0.0, 0.0
    signed = fills["side"].to_numpy(dtype=float) * fills["size"].to_numpy(dtype=float)
    price = fills["price"].to_numpy(dtype=float)
    hedging = math.fsum(signed * (inst.unit_value(final_mid) - inst.unit_value(price)))
    return hedging, 0.0 - math.fsum(fills["fee"].to_numpy(dtype=float))


def _exposure_stats(result: HedgeResult, band: float) -> dict[str, Any]:
    net = result.exposure["net"].abs()
    after = result.exposure["net_after_hedge"].abs()
    orders = result.orders
    return {
        "band": band,
        "decisions": len(result.exposure),
        "max_abs_net": float(net.max()) if len(net) else 0.0,
        "max_outside_band": float(max(net.max() - band, 0.0)) if len(net) else 0.0,
        "max_abs_net_after_hedge": float(after.max()) if len(after) else 0.0,
        "times_outside_band": int((net > band).sum()),
        "hedge_orders": len(orders),
        "hedge_fills": len(result.fills),
        "hedge_volume": float(orders["filled"].sum()) if len(orders) else 0.0,
        "unfilled": float((orders["size"] - orders["filled"]).sum()) if len(orders) else 0.0,
        "median_order_size": float(orders["size"].median()) if len(orders) else 0.0,
        "passive_fills": int((result.fills["liquidity"] == "maker").sum()),
        "taker_fills": int((result.fills["liquidity"] == "taker").sum()),
    } | {"max_outside_band_in_orders": _in_orders(net, band, orders)}


def _in_orders(net: pd.Series, band: float, orders: pd.DataFrame) -> float:
    """The worst excursion outside the band in hedge orders (of the median size)."""
    if not len(orders) or not len(net):
        return 0.0
    return float(max(net.max() - band, 0.0) / orders["size"].median())


def run_portfolio(spec: PortfolioSpec, out: Path, quiet: bool = True) -> dict[str, Any]:
    """Run every instrument, the hedge, and write the book's files under ``out``; returns summary.json.
    With ``limits.action: halt`` and a breach, the book is run again stopped at the first breach."""
    legs = [Leg(name, s, _load(name, s)) for name, s in spec.instruments.items()]
    making = [leg for leg in legs if leg.spec.role == "make"]
    for leg in making:  # lead: another instrument of the book names its data
        lead = leg.spec.params.get("lead")
        if isinstance(lead, str) and lead in spec.instruments:
            leg.spec.params["lead"] = spec.instruments[lead].data
    for leg in making:
        _run_leg(leg, out, quiet)
    hedge_leg = next((leg for leg in legs if spec.hedge and leg.name == spec.hedge.instrument), None)
    hedge_events = np.concatenate(list(hedge_leg.source.chunks())) if hedge_leg is not None else None
    grid = _grid(making, hedge_events)
    hedge_mid = (
        _hedge_mid_grid(hedge_events, hedge_leg.source, grid)
        if hedge_leg is not None and hedge_events is not None
        else None
    )
    run = BookRun(spec, making, hedge_leg, grid, hedge_mid, out, quiet)
    result, book, summary = run.book()
    halted = _breach(spec, book) if spec.limits.action == "halt" else None
    windows: list[dict[str, Any]] = []
    if spec.limits.action in ("pause", "reduce"):
        rerun = run.windowed(book)
        if rerun[3]:
            result, book, summary, windows = rerun
    if halted is not None:
        at = halted["at"]
        for leg in making:
            _run_leg(leg, out, quiet, halt_ns=at)
            _flatten_leg(leg, at)
        if hedge_mid is not None:
            run.hedge_mid = np.where(
                grid > at, hedge_mid[np.searchsorted(grid, at, side="right") - 1], hedge_mid
            )
        result, book, summary = run.book(at)
    summary["halted"] = halted
    summary["limit_windows"] = windows
    summary = _clean(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default), encoding="utf-8")
    from quotewise.portfolio.report import write_portfolio_report

    write_portfolio_report(out, summary, book, result.exposure if result is not None else None)
    return summary


def _limits(spec: PortfolioSpec) -> dict[str, float | None]:
    return spec.limits.model_dump(exclude={"action", "pause_for"})


def _book_series(book: pd.DataFrame) -> tuple[pd.DataFrame, Exposure]:
    """The book frame's P&L columns and exposures by instrument, indexed by grid time."""
    pnl_cols = book[[c for c in book.columns if c.startswith("pnl:") and c != "pnl:total"]]
    pnl_cols.index = book["ts"].to_numpy()
    exposure = Exposure(
        book[[c for c in book.columns if c.startswith("exposure:")]].set_axis(book["ts"].to_numpy())
    )
    exposure.frame.columns = [c.split(":", 1)[1] for c in exposure.frame.columns]
    pnl_cols.columns = [c.split(":", 1)[1] for c in pnl_cols.columns]
    return pnl_cols, exposure


def _breach(spec: PortfolioSpec, book: pd.DataFrame, after: int | None = None) -> dict[str, Any] | None:
    """The one place that finds where a book limit acts: the first grid time at or after ``after``
    at which the book is beyond a limit."""
    return first_breach(limit_series(*_book_series(book), GRID_NS / 1e9), _limits(spec), after)


@dataclass
class BookRun:
    """What every pass over the book reuses (the first, each pause or reduce, a halt): the spec, the
    legs, the 1-second grid and the hedge's mid on it, where the files go."""

    spec: PortfolioSpec
    making: list[Leg]
    hedge_leg: Leg | None
    grid: np.ndarray
    hedge_mid: np.ndarray | None
    out: Path
    quiet: bool

    def book(self, halt_ns: int | None = None) -> tuple[HedgeResult | None, pd.DataFrame, dict[str, Any]]:
        """The hedge over the making legs' fills, the book on the grid and the summary (unwritten)."""
        spec, grid, hedge_mid = self.spec, self.grid, self.hedge_mid
        result: HedgeResult | None = None
        if spec.hedge is not None and self.hedge_leg is not None and hedge_mid is not None:
            legs_in = [
                MakingLeg(
                    leg.name,
                    leg.instrument,
                    leg.fills,  # type: ignore[arg-type]
                    _hedge_ratio(spec, leg, hedge_mid, grid),
                    _leg_mid_at(leg),
                )
                for leg in self.making
            ]
            h = spec.hedge
            result = run_hedge(
                legs_in,
                self.hedge_leg.source,
                h.band,
                h.latency_ns,
                h.ratio == "contract",
                mode=h.mode,
                timeout_ns=h.timeout_ns,
                halt_ns=halt_ns,
                check_ns=h.check_ns,
                end_ns=int(grid[-1]),
            )
            _write_hedge(result, self.out / HEDGE)
        book = _book_frame(self.making, self.hedge_leg, result, grid, hedge_mid)
        book.to_parquet(self.out / "book.parquet")
        return result, book, _summary(spec, self.making, self.hedge_leg, result, book)

    def windowed(self, book: pd.DataFrame) -> tuple[Any, pd.DataFrame, dict[str, Any], list[dict[str, Any]]]:
        """``limits.action: pause | reduce``: from each breach, every making leg pauses (or quotes only
        the side that reduces its position) for ``pause_for``; the legs run again with those windows
        until the book is inside its limits at the end of each (or after MAX_LIMIT_WINDOWS)."""
        spec = self.spec
        length = spec.limits.pause_for_ns
        key = "pause_windows" if spec.limits.action == "pause" else "reduce_windows"
        windows: list[dict[str, Any]] = []
        result = summary = None
        while len(windows) < MAX_LIMIT_WINDOWS:
            found = _breach(spec, book, windows[-1]["end"] if windows else None)
            if found is None:
                break
            windows.append(
                {"action": spec.limits.action, "start": found["at"], "end": found["at"] + length} | found
            )
            text = ",".join(f"{w['start']}/{length}ns" for w in windows)
            for leg in self.making:
                _run_leg(leg, self.out, self.quiet, extra={key: text})
            result, book, summary = self.book()
        if windows and len(windows) == MAX_LIMIT_WINDOWS and _breach(spec, book, windows[-1]["end"]):
            windows[-1]["capped"] = True  # still beyond a limit after the last window allowed
        return result, book, summary, windows


def _flatten_leg(leg: Leg, t: int) -> None:
    """Close the leg's position at ``t`` with a market order through its own book (taker fee): the
    trade's fee goes to ``fees``, the rest of its P&L (price vs the final mid) to ``inventory``. Its
    equity gets a last row at ``t``, so the leg's P&L is flat afterwards."""
    s, inst, eq = leg.summary, leg.instrument, leg.equity
    assert s is not None and eq is not None
    lots = round(s["final_position"] / inst.lot_size)
    side = -1 if lots > 0 else 1
    clock = BookClock(leg.source)
    clock.advance(t)
    taken = walk_book(clock.book, side, abs(lots)) if lots else []
    fees = [inst.fee(price, size, maker=False) for price, size in taken]
    cash_flow = math.fsum(inst.cash_flow(side, p, q, f) for (p, q), f in zip(taken, fees, strict=True))
    closed = sum(size for _, size in taken) * inst.lot_size
    mark = inst.unit_value(s["final_mid"]) if math.isfinite(s["final_mid"]) else 0.0
    pnl = cash_flow + side * closed * mark  # what the trade adds to the leg's P&L marked at its final mid
    fee = math.fsum(fees)
    leg.flatten = {
        "ts": t,
        "size": closed,
        "unfilled": abs(lots) * inst.lot_size - closed,
        "fee": fee,
        "pnl": pnl,
        "inventory": pnl + fee,
        "fees": -fee,
    }
    position = s["final_position"] + side * closed
    last = {"ts": max(t, int(eq["ts"].iloc[-1])) if len(eq) else t, "position": position}
    last |= {"cash": s["cash"] + cash_flow, "mid": s["final_mid"], "pnl": s["total_pnl"] + pnl}
    leg.equity = pd.concat([eq, pd.DataFrame([last])], ignore_index=True)


def _write_hedge(result: HedgeResult, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result.fills.to_parquet(folder / "fills.parquet")
    result.orders.to_parquet(folder / "orders.parquet")
    result.exposure.to_parquet(folder / "exposure.parquet")


def _book_frame(
    making: list[Leg],
    hedge_leg: Leg | None,
    result: HedgeResult | None,
    grid: np.ndarray,
    hedge_mid: np.ndarray | None,
) -> pd.DataFrame:
    """P&L (book currency) and quote-currency exposure of every instrument on the 1-second grid."""
    cols: dict[str, np.ndarray] = {"ts": grid}
    for leg in making:
        eq = leg.equity
        assert eq is not None
        ts = eq["ts"].to_numpy()
        mid = _leg_mid_grid(leg, grid)
        pnl = _as_of(ts, eq["pnl"].to_numpy(dtype=float), grid, 0.0)
        cols[f"pnl:{leg.name}"] = np.nan_to_num(_to_book(leg.instrument, pnl, mid))
        position = _as_of(ts, eq["position"].to_numpy(dtype=float), grid, 0.0)
        cols[f"exposure:{leg.name}"] = np.nan_to_num(_quote_exposure(leg.instrument, position, mid))
    if result is not None and hedge_leg is not None and hedge_mid is not None:
        inst, f = hedge_leg.instrument, result.fills
        ts = f["exch_ts"].to_numpy(dtype=np.int64)
        position = _as_of(ts, f["position"].to_numpy(dtype=float), grid, 0.0)
        cash = _as_of(ts, f["cash"].to_numpy(dtype=float), grid, 0.0)
        value = np.where(position != 0, position * inst.unit_value(hedge_mid), 0.0)
        cols[f"pnl:{HEDGE}"] = np.nan_to_num(_to_book(inst, cash + value, hedge_mid))
        cols[f"exposure:{HEDGE}"] = np.nan_to_num(_quote_exposure(inst, position, hedge_mid))
    frame = pd.DataFrame(cols)
    frame["pnl:total"] = frame[[c for c in frame.columns if c.startswith("pnl:")]].sum(axis=1)
    return frame


def _summary(
    spec: PortfolioSpec,
    making: list[Leg],
    hedge_leg: Leg | None,
    result: HedgeResult | None,
    book: pd.DataFrame,
) -> dict[str, Any]:
    parts = {"spread": [], "inventory": [], "fees": [], "hedging": []}  # type: dict[str, list[float]]
    totals: list[float] = []
    instruments: dict[str, Any] = {}
    for leg in making:
        s = leg.summary
        assert s is not None
        a = s["attribution"]
        factor = (leg.instrument.inverse and s["final_mid"]) or 1.0
        parts["spread"].append(a["spread_capture"] * factor)
        parts["inventory"].append((a["inventory"] + a["settlement"]) * factor)
        parts["fees"].append(a["fees"] * factor)
        totals.append(s["total_pnl"] * factor)
        instruments[leg.name] = {k: v for k, v in s.items() if k not in ("data_report", "book")}
        if leg.flatten is not None:  # the halt's closing trade, beside the leg's own run
            parts["inventory"].append(leg.flatten["inventory"] * factor)
            parts["fees"].append(leg.flatten["fees"] * factor)
            totals.append(leg.flatten["pnl"] * factor)
            instruments[leg.name]["halt_flatten"] = leg.flatten
    hedge_summary: dict[str, Any] | None = None
    if result is not None and hedge_leg is not None and spec.hedge is not None:
        inst = hedge_leg.instrument
        hedging, fees = hedge_attribution(result.fills, inst, result.final_mid)
        factor = result.final_mid if inst.inverse else 1.0
        cash = float(result.fills["cash"].iloc[-1]) if len(result.fills) else 0.0
        pnl = cash + (result.position * inst.unit_value(result.final_mid) if result.position else 0.0)
        parts["hedging"].append(hedging * factor)
        parts["fees"].append(fees * factor)
        totals.append(pnl * factor)
        hedge_summary = {
            "instrument": spec.hedge.instrument,
            "data": hedge_leg.source.name,
            "ratio": spec.hedge.ratio,
            "mode": spec.hedge.mode,
            "latency_ns": spec.hedge.latency_ns,
            "timeout_ns": spec.hedge.timeout_ns if spec.hedge.mode == "passive" else None,
            "check_ns": spec.hedge.check_ns,
            "currency": inst.settle_currency,  # the hedge's own figures; the book's are converted
            "total_pnl": pnl,
            "hedging": hedging,
            "fees": fees,
            "final_position": result.position,
            "final_mid": result.final_mid,
            "exposure": {**_exposure_stats(result, spec.hedge.band), "units": inst.size_currency},
        }
    attribution = {k: math.fsum(v) for k, v in parts.items()}
    risk = portfolio_risk(*_book_series(book), GRID_NS / 1e9, _limits(spec))
    return {
        "kind": "portfolio",
        "currency": making[0].instrument.quote_currency,
        "total_pnl": math.fsum(totals),
        "attribution": {**attribution, "total": math.fsum(attribution.values())},
        "attribution_note": "hedging: hedge trades marked at the hedge's final mid, without fees; all "
        "fees (making and hedge) in fees; settlement of resolved markets in inventory; a halt's closing "
        "trades: the legs' in inventory (price vs final mid) and fees, the hedge's in hedging and fees",
        "instruments": instruments,
        "hedge": hedge_summary,
        "risk": risk,
        "risk_events": risk["events"],
    }


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
