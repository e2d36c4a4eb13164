"""The backtest loop: events -> book -> strategy -> order manager -> simulated venue -> fills -> P&L.

The compiled engine runs the market between decision points; Python wakes only to deliver venue
responses and to ask the strategy for its quotes, so a plain-Python strategy stays fast.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from quotewise.backtest.outputs import (
    FILL_SCHEMA,
    ORDER_SCHEMA,
    CompiledLog,
    OutputSink,
    equity_table,
    rows_table,
)
from quotewise.backtest.settlement import settlement
from quotewise.backtest.source import DataSource, data_paths, from_path
from quotewise.book import window
from quotewise.book.view import MAX_VIEW_EVENTS, MarketView
from quotewise.errors import ConfigError, DataError, QuotewiseError, RunError
from quotewise.execution.core import DecisionCore
from quotewise.execution.order_manager import OrderManager
from quotewise.model.events import price_level
from quotewise.model.instrument import Instrument
from quotewise.model.response import Response
from quotewise.quoting.base import Strategy, resolve_size
from quotewise.quoting.kernel import compiled_quoting
from quotewise.risk import ACTIONS, MarketState, RiskConfig, events_table
from quotewise.sim.exchange import CompiledRecord, SimConfig, SimExchange

# Extra ticks either side of the data's price range, so quotes just outside it still have a level.
PRICE_PAD_TICKS = 1_000


@dataclass
class BacktestResult:
    """The summary, and the output tables when the run kept them in memory (no ``out_dir``); with an
    ``out_dir`` they were streamed to its Parquet files as the run went and are None here."""

    summary: dict[str, Any]
    fills: pa.Table | None
    orders: pa.Table | None
    equity: pa.Table | None
    risk_events: pa.Table
    out_dir: Path | None = None


# equity samples: ts, position lots, cash, best bid, best ask, our bid, our ask (ticks; -1 = none)
SAMPLE_DTYPES = (np.int64, np.int64, np.float64, np.int64, np.int64, np.int64, np.int64)


class _Recorder:
    """The Python path's outputs: rows collected as plain tuples, handed to the sink per chunk."""

    def __init__(self, inst: Instrument, sink: OutputSink) -> None:
        self.inst = inst
        self.sink = sink
        self.fills: list[tuple] = []
        self.equity: list[tuple] = []
        self.n_fills = 0
        self.max_abs_pos = 0
        self.last_mid = math.nan

    def fill(self, r: Response) -> None:
        tick, lot = self.inst.tick_size, self.inst.lot_size
        self.fills.append(
            (
                r.exch_ts,
                r.deliver_ts,
                r.order_id,
                r.side,
                r.price * tick,
                r.qty * lot,
                r.fee,
                "maker" if r.maker else "taker",
                r.position * lot,
                r.cash,
                r.mid2 * tick / 2 if r.mid2 >= 0 else math.nan,
            )
        )
        self.n_fills += 1
        self.max_abs_pos = max(self.max_abs_pos, abs(r.position))

    def sample(self, ex: SimExchange, om: OrderManager) -> None:
        """One equity row: the exchange's position and cash, the touch and our best quotes (-1: none)."""
        bb, ba = ex.best_bid(), ex.best_ask()
        qb, qa = om.best_working(1), om.best_working(-1)
        self.equity.append(
            (ex.now, ex.position_lots, ex.cash, *(-1 if v is None else v for v in (bb, ba, qb, qa)))
        )

    def flush(self, om: OrderManager) -> None:
        inst = self.inst
        self.sink.add("fills", rows_table(self.fills, FILL_SCHEMA))
        orders = [
            (
                e.ts,
                e.order_id,
                e.side,
                e.price * inst.tick_size,
                e.size * inst.lot_size,
                e.filled * inst.lot_size,
                e.status,
                e.reason,
            )
            for e in om.log
        ]
        self.sink.add("orders", rows_table(orders, ORDER_SCHEMA))
        columns = list(zip(*self.equity, strict=True)) if self.equity else [() for _ in SAMPLE_DTYPES]
        self.add_equity([np.array(col, dtype=dt) for col, dt in zip(columns, SAMPLE_DTYPES, strict=True)])
        self.fills.clear()
        self.equity.clear()
        om.log.clear()

    def add_equity(self, samples: list[np.ndarray]) -> None:
        table, self.last_mid = equity_table(samples, self.inst, self.last_mid)
        self.sink.add("equity", table)


def _flush_compiled(rec: CompiledRecord, log: CompiledLog, recorder: _Recorder) -> None:
    """Hand one batch of the compiled path's rows to the sink (equity shares the recorder's mark)."""
    recorder.sink.add("fills", log.fills_table(rec))
    recorder.sink.add("orders", log.orders_table(rec))
    recorder.add_equity(CompiledLog.equity_samples(rec))


def _use_model(ex: SimExchange, directory: str, source: DataSource, config: SimConfig) -> None:
    """The model's predictions on the run's decision grid, for the compiled rule to lean by
    (:mod:`quotewise.intelligence.signal`): sampled on the strategy's clock less its feed latency, by a
    replay on the exchange's own (still empty) book."""
    from quotewise.intelligence.signal import grid_predictions

    start = _sample_origin(source, config)
    if start is not None:
        # a wide book is windowed, in the feature pass as in the run: each replays on a book of its own
        book = None if window.is_wide(ex.xbook.st) else ex.xbook
        ex.use_signal(*grid_predictions(directory, source, start, config.interval_ns, book=book))


def _use_lead(ex: SimExchange, lead: str, halflife_ns: int, source: DataSource, config: SimConfig) -> None:
    """The lead's fair value on the run's decision grid, for the compiled rule to centre on
    (:mod:`quotewise.signals.lead`), sampled on the strategy's clock less its feed latency."""
    from quotewise.signals.lead import lead_fair_value

    start = _sample_origin(source, config)
    if start is None:
        return
    try:
        lead_source = from_path(data_paths(lead))
    except (ConfigError, DataError) as exc:
        raise type(exc)(f"lead={lead}: {exc}") from None
    fair = lead_fair_value(
        lead_source,
        lead_source.instrument.tick_size,
        source,
        source.instrument.tick_size,
        start,
        config.interval_ns,
        halflife_ns,
    )
    ex.use_signal(*fair)


def _sample_origin(source: DataSource, config: SimConfig) -> int | None:
    """Where a signal's samples start: the first decision time on the strategy's clock less its feed
    latency, on the data's local clock (None: no data)."""
    first = next((chunk for chunk in source.chunks() if len(chunk)), None)
    if first is None:
        return None
    origin = config.decision_origin_ns
    return int(first["local_ts"][0]) if origin is None else origin - config.feed_latency_ns


def _start_price(source: DataSource) -> float | None:
    """The price level of the data's first chunk, in ticks (see :func:`price_level`)."""
    first = next((chunk for chunk in source.chunks() if len(chunk)), None)
    return None if first is None else price_level(first)


def summary_units(inst: Instrument) -> dict[str, str]:
    """The unit of each figure in summary.json: money in the settlement currency (the coin for inverse
    contracts), its ``_quote`` twins in the quote currency, sizes in the instrument's size unit."""
    settle, quote, size = inst.settle_currency, inst.quote_currency, inst.size_currency
    units = dict.fromkeys(("total_pnl", "fees", "cash", "traded_notional"), settle)
    units.update(dict.fromkeys(("total_pnl_quote", "traded_notional_quote"), quote))
    units.update(dict.fromkeys(("traded_volume", "final_position", "max_abs_position"), size))
    units["final_mid"] = f"{quote} per {inst.base or 'unit'}"
    return units


def _in_quote(inst: Instrument, amount: float, mark: float) -> float | None:
    """A settlement-currency amount in the quote currency at the final mark (None where there is no
    rate: quanto, or no mark)."""
    if inst.contract == "linear":
        return amount
    if math.isnan(mark) or inst.contract == "quanto":
        return None
    return amount * mark


def _quote_volume(inst: Instrument, ex: SimExchange) -> float | None:
    """Traded value in the quote currency: the settlement notional for linear contracts, size x
    contract size for inverse ones (each contract is worth its size in USD), none for quanto."""
    if inst.inverse:
        return ex.volume_lots * inst.lot_size * inst.contract_size
    return ex.notional if inst.contract == "linear" else None


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).isoformat()


def run_backtest(
    source: DataSource,
    strategy: Strategy,
    config: SimConfig,
    out_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    report: bool = True,
    risk: RiskConfig | None = None,
    compiled: bool | None = None,
    resolve: str | None = None,
) -> BacktestResult:
    """Replay ``source`` through the simulated venue with ``strategy`` quoting; outputs go to ``out_dir``.

    With ``risk`` the risk engine stands between the strategy and the order manager: it filters
    every decision and is woken inside data gaps by the venue's timer (docs/risk.md).

    ``compiled``: a built-in strategy whose settings the engine implements decides inside the
    compiled loop (no Python per decision); None picks it whenever possible (never with ``risk``,
    which runs in Python), False forces the Python path, True fails if it is not possible.

    ``resolve`` (``yes``, ``no`` or a file saying which) settles the final position at 1 or 0 per
    share; without it the data's own resolution is used when it has one (:mod:`.settlement`).
    """
    settled = settlement(resolve, source.report)  # a bad --resolve is refused before the run
    if settled is not None and not source.instrument.binary:
        raise ConfigError(
            f"--resolve settles a binary-outcome market (prices from 0 to 1); {source.instrument.symbol} "
            "is not one (its instrument has no max_price of 1 or less)"
        )
    if config.queue == "fifo" and not source.l3:
        raise ConfigError("the fifo queue model needs order-level (L3) data; use risk-averse or prob")
    inst = source.instrument
    resolve_size(strategy, inst, _start_price(source) if inst.min_notional > 0 else None)
    lo = max(source.price_lo - PRICE_PAD_TICKS, 0)
    ex = SimExchange(inst, lo, source.price_hi + PRICE_PAD_TICKS, config, seen_limit=MAX_VIEW_EVENTS)
    try:
        core = DecisionCore(inst, ex, strategy, risk)  # starts the strategy
    except QuotewiseError:
        raise
    except Exception as exc:
        raise RunError(exc, f"strategy {strategy.name!r}") from exc
    om = core.om
    sink = OutputSink(Path(out_dir) if out_dir is not None else None)
    rec = _Recorder(inst, sink)
    log = CompiledLog(inst)
    kernel = compiled_quoting(strategy) if compiled is not False and risk is None else None
    if compiled and kernel is None:
        reason = "risk limits run in Python" if risk is not None else "its settings need the Python path"
        raise ConfigError(f"strategy {strategy.name!r} cannot run compiled here: {reason}")
    if kernel is not None:
        ex.use_compiled_quoting(kernel)
    model = getattr(strategy.params, "model", None)
    if model is not None and kernel is None and not strategy.reads_model:
        raise ConfigError(
            f"model={model}: the model leans the compiled {strategy.name} rule, and this run takes the "
            "Python path (risk limits, or settings the rule does not implement); use strategy adaptive there"
        )
    lead = getattr(strategy.params, "lead", None)
    if lead is not None and kernel is None:
        raise ConfigError(
            f"lead={lead}: the lead's fair value centres the compiled {strategy.name} rule, and this run "
            "takes the Python path (risk limits, or settings the rule does not implement)"
        )
    first_ts: int | None = None
    wall0 = time.perf_counter()
    if model is not None and kernel is not None:
        _use_model(ex, model, source, config)
    if lead is not None:  # compiled: refused above otherwise
        _use_lead(ex, lead, strategy.params.lead_halflife, source, config)

    def view(events: np.ndarray | None = None) -> MarketView:
        bb, ba = ex.best_bid(), ex.best_ask()
        bid_size, ask_size = ex.touch_sizes()
        return MarketView(
            time=ex.now,
            instrument=inst,
            best_bid=bb,
            best_ask=ba,
            bid_size=bid_size,
            ask_size=ask_size,
            position=core.ledger.position,
            book=ex.book,
            events=events,
        )

    def market() -> MarketState:
        bb, ba = ex.best_bid(), ex.best_ask()
        fair = (bb + ba) / 2 if bb is not None and ba is not None else None
        return MarketState(ex.now, fair, ex.last_event_local if ex.events_processed else None)

    def deliver(responses: list[Response]) -> None:
        seen: MarketView | None = None  # the market is the same for every response of one batch

        def now_seen() -> MarketView:
            nonlocal seen
            seen = view() if seen is None else dataclasses.replace(seen, position=core.ledger.position)
            return seen

        for r in responses:
            if r.kind == "fill":
                rec.fill(r)
            core.on_response(r, view=now_seen)

    try:
        wakes = 0
        for chunk in itertools.chain(source.chunks(), [None]):  # None: the data has ended
            if chunk is None:
                ex.end()
            elif len(chunk) == 0:
                continue
            else:
                if first_ts is None:
                    first_ts = int(chunk["exch_ts"][0])
                ex.feed(chunk, last=False)
            while True:
                woke = ex.advance()
                deliver(ex.responses())
                if not woke:
                    break
                if ex.decision_due:
                    core.decide(view(ex.take_seen()), market() if core.guard is not None else None)
                    rec.sample(ex, om)
                    ex.schedule_next_decision()
                elif core.guard is not None:
                    core.watch(market())
                if core.guard is not None:
                    ex.set_timer(core.next_wake(ex.now))
                wakes += 1
                if progress is not None and wakes % 2048 == 0:
                    progress(ex.events_processed)
            if kernel is not None:
                _flush_compiled(ex.take_compiled(), log, rec)
            else:
                rec.flush(om)
            if progress is not None:
                progress(ex.events_processed)
        if kernel is not None:
            final = ex.finish_compiled()
            _flush_compiled(final, log, rec)
            final_quotes = (final.quote_bid, final.quote_ask)
            n_fills, max_abs_lots = log.fills, log.max_abs_pos_lots
            placed, cancels, rejects = log.placed, log.cancels, log.rejects
        else:
            # fills the exchange made that had not reached us when the data ended still happened
            for r in ex.pending_responses():
                if r.kind == "fill":
                    rec.fill(r)
                core.on_response(r)
            final_quotes = tuple(-1 if q is None else q for q in (om.best_working(1), om.best_working(-1)))
            rec.flush(om)
            n_fills, max_abs_lots = rec.n_fills, rec.max_abs_pos
            placed, cancels, rejects = om.orders_placed, om.cancels_sent, om.rejects
        bb, ba = ex.best_bid(), ex.best_ask()
        last = (
            ex.now,
            ex.position_lots,
            ex.cash,
            -1 if bb is None else bb,
            -1 if ba is None else ba,
            *final_quotes,
        )
        rec.add_equity([np.array([v], dtype=dt) for v, dt in zip(last, SAMPLE_DTYPES, strict=True)])
        tables = sink.close()
    except Exception as exc:
        if kernel is None:
            rec.flush(om)  # the rows of the chunk in progress
        sink.close()  # what was recorded so far stays readable
        if isinstance(exc, QuotewiseError):
            raise
        raise RunError(exc, f"strategy {strategy.name!r}", log_dir=sink.out_dir) from exc
    wall = time.perf_counter() - wall0

    final_mid = rec.last_mid
    pos_units = ex.position_lots * inst.lot_size
    total_pnl = ex.cash + pos_units * inst.unit_value(final_mid) if not math.isnan(final_mid) else ex.cash
    settled_at = None
    if settled is not None:  # the position pays its outcome instead of being marked at the last mid
        settled_at = {
            "price": settled.price,
            "pnl": ex.cash + pos_units * inst.unit_value(settled.price) - total_pnl,
            "source": settled.source,
        }
        total_pnl += settled_at["pnl"]
    events = ex.events_processed
    summary: dict[str, Any] = {
        "strategy": strategy.name,
        "params": strategy.params.model_dump(),
        "data": source.name,
        "instrument": inst.model_dump(),
        "sim": {
            "entry_latency_ns": config.entry_latency_ns,
            "response_latency_ns": config.response_latency_ns,
            "feed_latency_ns": config.feed_latency_ns,
            "queue": config.queue,
            "interval_ns": config.interval_ns,
        },
        "total_pnl": total_pnl,
        "total_pnl_quote": _in_quote(inst, total_pnl, final_mid),
        "fees": ex.fees,
        "fills": n_fills,
        "traded_volume": ex.volume_lots * inst.lot_size,
        "traded_notional": ex.notional,
        "traded_notional_quote": _quote_volume(inst, ex),
        "final_position": pos_units,
        "max_abs_position": max_abs_lots * inst.lot_size,
        "final_mid": final_mid,
        "settlement": settled_at,
        "cash": ex.cash,
        "orders_placed": placed,
        "cancels": cancels,
        "rejects": rejects,
        "events": events,
        "wall_seconds": wall,
        "events_per_second": events / wall if wall > 0 else 0.0,
        "start": _iso(first_ts),
        "end": _iso(ex.last_event_exchange) if events else None,
        "book": ex.book_counters(),
        "compiled": kernel is not None,
        "data_report": source.report,
        "risk": {
            "config": risk.model_dump() if risk is not None else None,
            "actions": core.guard.counts() if core.guard is not None else dict.fromkeys(ACTIONS, 0),
        },
        "units": summary_units(inst),
    }
    result = BacktestResult(
        summary=summary,
        fills=tables["fills"],
        orders=tables["orders"],
        equity=tables["equity"],
        risk_events=events_table(core.guard.events if core.guard is not None else []),
    )
    if out_dir is not None:
        result.out_dir = write_outputs(result, Path(out_dir), report=report)
    return result


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def write_outputs(result: BacktestResult, out_dir: Path, report: bool = True) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.summary.items()}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    for name in ("fills", "orders", "equity"):  # already streamed there when the run had an out_dir
        table = getattr(result, name)
        if table is not None:
            pq.write_table(table, out_dir / f"{name}.parquet")
    pq.write_table(result.risk_events, out_dir / "risk_events.parquet")
    from quotewise.analytics.analyze import summarize_run

    result.summary.update(
        {k: v for k, v in summarize_run(out_dir).items() if k in ("attribution", "metrics")}
    )
    if report:
        from quotewise.analytics.report import write_report

        write_report(out_dir)
    return out_dir
