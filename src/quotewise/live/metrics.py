"""Prometheus metrics of the live engine, read from its makers' own counters when scraped.

Nothing here runs on the hot path: a scrape walks the engine's makers and reads what they already
keep (the ledger, the order manager's counters, the risk engine's flags, the decision counters), in
the event loop's thread, between two turns. See docs/metrics.md for every metric.

Latency: each maker counts its decisions in fixed tick-to-quote buckets (one bisect per decision,
:data:`quotewise.live.maker.LATENCY_BUCKETS_S`), exposed as a histogram; the time decisions took to
compute is a summary beside it (``_count`` and ``_sum``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from quotewise.live.maker import LATENCY_BUCKETS_S

if TYPE_CHECKING:
    from quotewise.live.engine import LiveEngine
    from quotewise.live.maker import Maker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LABELS = ("maker", "venue", "market")
MAKER_STATES = ("running", "stopping", "finishing", "finished", "stopped", "failed")

# quotewise_maker_risk_state
RISK_OK = 0
RISK_REDUCE_ONLY = 1  # near the position limit: only the side that reduces it quotes
RISK_PAUSED = 2  # nothing quoted until it clears by itself: a pause after a loss, or stale market data
RISK_HALTED = 3  # nothing quoted until an operator resumes it (a risk halt, or an operator's)


def risk_state(guard: Any, operator_halt: bool = False) -> int:
    """A maker's risk state as one number, the worst that holds: its risk engine's (RISK_OK without
    one), or RISK_HALTED while an operator has halted it."""
    if operator_halt:
        return RISK_HALTED
    if guard is None:
        return RISK_OK
    if guard.halted:
        return RISK_HALTED
    if guard.paused_until is not None or guard.stale:
        return RISK_PAUSED
    if guard.reduce_only:
        return RISK_REDUCE_ONLY
    return RISK_OK


def latency_buckets(counts: list[int]) -> list[tuple[str, int]]:
    """A maker's per-bucket counts (:data:`~quotewise.live.maker.LATENCY_BUCKETS_S`, +Inf last) as
    Prometheus's cumulative ``(upper bound, count)`` pairs."""
    bounds = [repr(b) for b in LATENCY_BUCKETS_S] + ["+Inf"]
    return list(zip(bounds, itertools.accumulate(counts), strict=True))


class EngineCollector(Collector):
    """Every metric of ``engine`` (a :class:`~quotewise.live.engine.LiveEngine`), built at each
    :meth:`collect`. Call it on the engine's event loop (an ``async`` route), never from another
    thread: the makers change between the loop's turns, not during one."""

    def __init__(self, engine: LiveEngine) -> None:
        self.engine = engine
        self._labels: dict[str, tuple[list[str], str]] = {}  # maker id -> ([maker, venue, market], strategy)

    def describe(self) -> list[Metric]:
        return []  # the families are built from the engine when scraped: nothing to check at register

    def _maker_labels(self, maker: Maker) -> tuple[list[str], str]:
        """([maker, venue, market], strategy) as ``mm list`` shows them: the store's record, read once
        a maker (none of them changes while it lives)."""
        known = self._labels.get(maker.maker_id)
        if known is None:
            rec = self.engine.store.maker(maker.maker_id)
            venue = rec.venue if rec is not None else type(maker.venue).__name__
            market = rec.market if rec is not None else maker.inst.symbol
            strategy = rec.strategy if rec is not None else type(maker.strategy).__name__
            known = self._labels[maker.maker_id] = ([maker.maker_id, venue, market], strategy)
        return known

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        makers = list(engine.makers.values())

        uptime = GaugeMetricFamily("quotewise_engine_uptime_seconds", "Seconds since the engine started.")
        uptime.add_metric([], max(time.time() - engine.started_at, 0.0))
        yield uptime
        load = engine.load  # NaN until the first sample, a second after the first maker starts
        busy = GaugeMetricFamily(
            "quotewise_engine_loop_busy_ratio",
            "Share of the last 10 s the engine's event loop computed (near 1: no headroom left).",
        )
        busy.add_metric([], load.busy if load.busy is not None else math.nan)
        yield busy
        lag = GaugeMetricFamily(
            "quotewise_engine_loop_lag_seconds",
            "The latest a 1 s timer of the event loop woke in the last 10 s.",
        )
        lag.add_metric([], load.lag_s if load.lag_s is not None else math.nan)
        yield lag
        running = GaugeMetricFamily(
            "quotewise_engine_makers_running", "Makers of this engine quoting now (state running)."
        )
        running.add_metric([], sum(m.state == "running" for m in makers))
        yield running
        by_state = GaugeMetricFamily(
            "quotewise_engine_makers",
            "Makers this engine process has run, by state.",
            labels=["state"],
        )
        counts = dict.fromkeys(MAKER_STATES, 0)
        for m in makers:
            counts[m.state] = counts.get(m.state, 0) + 1
        for state, n in counts.items():
            by_state.add_metric([state], n)
        yield by_state

        info = GaugeMetricFamily(
            "quotewise_maker_info",
            "Always 1: the maker's strategy, state, P&L currency and whether a risk engine checks it.",
            labels=[*LABELS, "strategy", "state", "currency", "risk"],
        )
        decisions = CounterMetricFamily(
            "quotewise_maker_decisions", "Decisions the maker took (quotes decided).", labels=LABELS
        )
        decision_time = SummaryMetricFamily(
            "quotewise_maker_decision_seconds",
            "Time the maker's decisions took to compute (strategy or compiled rule; not the wait for a "
            "turn nor the send): _count decisions, _sum seconds.",
            labels=LABELS,
        )
        tick_to_quote = HistogramMetricFamily(
            "quotewise_maker_tick_to_quote_seconds",
            "From a decision's start (a built-in deciding in the venue's callback: the update's arrival) "
            "to its orders sent, per decision.",
            labels=LABELS,
        )
        placed = CounterMetricFamily(
            "quotewise_maker_orders_placed", "Orders the maker sent to its venue.", labels=LABELS
        )
        cancels = CounterMetricFamily(
            "quotewise_maker_cancels", "Cancels the maker sent to its venue.", labels=LABELS
        )
        rejects = CounterMetricFamily("quotewise_maker_rejects", "Orders the venue rejected.", labels=LABELS)
        fills = CounterMetricFamily(
            "quotewise_maker_fills",
            "Fills booked (the stored count: it carries over a restart).",
            labels=LABELS,
        )
        open_orders = GaugeMetricFamily(
            "quotewise_maker_open_orders", "Orders the maker has open or in flight now.", labels=LABELS
        )
        position = GaugeMetricFamily(
            "quotewise_maker_position", "Position, instrument units (negative: short).", labels=LABELS
        )
        pnl = GaugeMetricFamily(
            "quotewise_maker_pnl",
            "P&L, realised and unrealised: cash plus the position marked at the mid (cash alone without "
            "one), settlement currency (see quotewise_maker_info).",
            labels=LABELS,
        )
        fees = GaugeMetricFamily(
            "quotewise_maker_fees",
            "Fees paid (negative: rebates earned), settlement currency.",
            labels=LABELS,
        )
        risk = GaugeMetricFamily(
            "quotewise_maker_risk_state",
            "Risk state: 0 ok (or no risk engine), 1 reduce-only, 2 paused (a loss pause or stale data), "
            "3 halted (by the risk engine or an operator).",
            labels=LABELS,
        )
        stale = GaugeMetricFamily(
            "quotewise_maker_risk_stale",
            "1 while the risk engine finds the market data stale.",
            labels=LABELS,
        )
        operator = GaugeMetricFamily(
            "quotewise_maker_operator_halt", "1 while an operator has halted the maker.", labels=LABELS
        )
        actions = CounterMetricFamily(
            "quotewise_maker_risk_actions",
            "Actions the maker's current risk engine took, by action (from zero at each config change).",
            labels=[*LABELS, "action"],
        )

        for m in makers:
            labels, strategy = self._maker_labels(m)
            inst, ledger, om, guard = m.inst, m.ledger, m.om, m.guard
            risk_on = "on" if guard is not None else "off"
            info.add_metric([*labels, strategy, m.state, inst.settle_currency, risk_on], 1)
            decisions.add_metric(labels, m.decisions)
            decision_time.add_metric(labels, count_value=m.decisions, sum_value=m.decision_seconds)
            tick_to_quote.add_metric(labels, latency_buckets(m.latency_buckets), m.latency_seconds)
            placed.add_metric(labels, om.orders_placed)
            cancels.add_metric(labels, om.cancels_sent)
            rejects.add_metric(labels, om.rejects)
            fills.add_metric(labels, ledger.fills)
            open_orders.add_metric(labels, len(om.orders))
            position.add_metric(labels, inst.qty(ledger.position))
            pnl.add_metric(labels, ledger.pnl(inst, m.book.mid))
            fees.add_metric(labels, ledger.fees)
            halted = getattr(m, "halt", None) is not None  # an operator's halt (makers that have one)
            risk.add_metric(labels, risk_state(guard, halted))
            operator.add_metric(labels, int(halted))
            stale.add_metric(labels, int(bool(guard is not None and guard.stale)))
            if guard is not None:
                for action, n in guard.counts().items():
                    actions.add_metric([*labels, action], n)

        yield from (
            info,
            decisions,
            decision_time,
            tick_to_quote,
            placed,
            cancels,
            rejects,
            fills,
            open_orders,
        )
        yield from (position, pnl, fees, risk, stale, operator, actions)


# engine-wide gauges whose merge over workers is the worst worker's, not the sum
WORST_OF_WORKERS = frozenset(
    {
        "quotewise_engine_uptime_seconds",
        "quotewise_engine_loop_busy_ratio",
        "quotewise_engine_loop_lag_seconds",
    }
)


def merge_families(shares: list[list[Metric]]) -> list[Metric]:
    """One family list from each worker's (:class:`EngineCollector` there): a maker's samples come
    from its worker alone; the engine-wide ones add up (makers by state), or are the worst worker's
    (:data:`WORST_OF_WORKERS`: the busiest loop is the one that quotes late)."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple, float]] = {}
    for families in shares:
        for family in families:
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            seen = values[family.name]
            worst = family.name in WORST_OF_WORKERS
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = seen.get(key)
                if old is None or math.isnan(old):
                    seen[key] = sample.value
                elif not math.isnan(sample.value):
                    seen[key] = max(old, sample.value) if worst else old + sample.value
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(merged.values())


class WorkersCollector(Collector):
    """The metrics of an engine whose makers run in worker processes
    (:class:`~quotewise.live.workers.ShardedEngine`): each worker's, merged (:func:`merge_families`)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        shares = self.engine.metric_families()
        yield from merge_families(list(shares.values()))
        yield from per_worker_families(shares)


# engine-wide gauges also given worker by worker (label ``worker``), under these names
PER_WORKER = {
    "quotewise_engine_loop_busy_ratio": "quotewise_engine_worker_loop_busy_ratio",
    "quotewise_engine_loop_lag_seconds": "quotewise_engine_worker_loop_lag_seconds",
}


def per_worker_families(shares: dict[int, list[Metric]]) -> list[Metric]:
    """Each worker's own loop figures (:data:`PER_WORKER`), labelled by its index: the merged ones are
    the worst worker's, these say which."""
    out: dict[str, GaugeMetricFamily] = {}
    for index, families in sorted(shares.items()):
        for family in families:
            name = PER_WORKER.get(family.name)
            if name is None:
                continue
            if name not in out:
                out[name] = GaugeMetricFamily(
                    name, f"{family.documentation} One worker's.", labels=["worker"]
                )
            for sample in family.samples:
                out[name].add_metric([str(index)], sample.value)
    return list(out.values())


def engine_registry(engine: LiveEngine) -> CollectorRegistry:
    """A registry of its own (never the process-wide one) holding ``engine``'s collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(engine.metric_collector())
    return registry


def metrics_text(engine: LiveEngine, registry: CollectorRegistry | None = None) -> bytes:
    """``engine``'s metrics in the Prometheus text format (0.0.4); call on the engine's event loop."""
    return generate_latest(registry if registry is not None else engine_registry(engine))


def add_metrics_route(app: FastAPI, engine: LiveEngine, dependencies: Sequence[Any] = ()) -> None:
    """``GET /metrics`` on ``app``: ``engine``'s metrics, behind ``dependencies`` (``Depends(...)``,
    added to the app's own). The handler is ``async`` so that the scrape runs on the engine's loop."""
    registry = engine_registry(engine)

    @app.get("/metrics", include_in_schema=False, dependencies=list(dependencies))
    async def metrics() -> Response:
        return Response(metrics_text(engine, registry), media_type=CONTENT_TYPE)
