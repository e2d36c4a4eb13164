"""The risk engine: between the quotes a strategy wants and the orders the order manager sends.

It is told the time and the market (fair value, when data last arrived), reads our account (the
decision core's ledger: position and cash from the fill reports) and acts through the order
manager; it knows nothing of the simulator, so the same object runs live. At
every wake-up :meth:`RiskEngine.update` applies the rules that stop quoting (loss, drawdown, stale
data); at every decision :meth:`RiskEngine.decide` validates, trims and throttles the wanted quotes
and hands the result to the order manager. Each decision is kept as a :class:`RiskEvent`.
The rules are stated in docs/risk.md.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from quotewise.errors import ConfigError
from quotewise.model.instrument import Instrument
from quotewise.parsing import time_windows
from quotewise.quoting.base import Quote, QuoteSet
from quotewise.risk.config import RiskConfig

ACTIONS = ("trim", "reject", "pause", "resume", "reduce_only", "halt", "stale", "fresh", "throttle")
DAY_NS = 86_400_000_000_000
RATE_WINDOW_NS = 1_000_000_000
NAN = math.nan

RISK_EVENT_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),
        ("rule", pa.string()),
        ("action", pa.string()),
        ("value", pa.float64()),
        ("limit", pa.float64()),
        ("detail", pa.string()),
    ]
)


class Account(Protocol):
    """Our position (lots) and cash (settlement currency) as the fill reports tell them."""

    position: int
    cash: float


class Order(Protocol):
    """One of our orders as the order manager knows it."""

    order_id: int
    side: int
    price: int
    size: int
    left: int
    status: str


class Orders(Protocol):
    """What the risk engine needs of the order manager (``quotewise.execution.order_manager``)."""

    orders: dict[int, Order]
    orders_placed: int
    cancels_sent: int

    def exposure(self, side: int) -> int: ...

    def diff(
        self, bids: Sequence[Quote], asks: Sequence[Quote]
    ) -> tuple[list[int], list[tuple[int, Quote]]]: ...

    def reconcile(self, bids: Sequence[Quote], asks: Sequence[Quote]) -> bool: ...

    def cancel_all(self, reason: str) -> None: ...


@dataclass(frozen=True)
class RiskEvent:
    """One risk decision: when (local ns), which rule, what it did, the value against the limit."""

    ts: int
    rule: str
    action: str
    value: float
    limit: float
    detail: str


@dataclass(frozen=True)
class MarketState:
    """What the risk engine is told about the market at a wake-up."""

    now: int  # local clock, ns
    fair: float | None  # fair value in ticks (the mid); None when a side of the book is empty
    last_event: int | None  # local time at which the latest market event became visible


def events_table(events: list[RiskEvent]) -> pa.Table:
    """The events as the ``risk_events.parquet`` table (empty, with its columns, when there are none)."""
    return pa.Table.from_pydict(
        {
            "ts": [e.ts for e in events],
            "rule": [e.rule for e in events],
            "action": [e.action for e in events],
            "value": [e.value for e in events],
            "limit": [e.limit for e in events],
            "detail": [e.detail for e in events],
        },
        schema=RISK_EVENT_SCHEMA,
    )


class RiskEngine:
    """Enforces one :class:`RiskConfig` on one instrument; keeps the log of its decisions."""

    def __init__(self, config: RiskConfig, instrument: Instrument, account: Account) -> None:
        if config.max_at_risk is not None and not instrument.binary:
            raise ConfigError(
                f"max_at_risk is the worst case of a binary market's payoff; {instrument.symbol} is not "
                "one (prices up to 1): use max_notional"
            )
        self.config = config
        self.inst = instrument
        self.account = account
        self.events: list[RiskEvent] = []
        self.fair: float | None = None  # last known fair value, ticks
        self.pnl = 0.0
        self.peak = 0.0
        self.halted = False
        self.paused_until: int | None = None
        self.pause_rule = ""
        self.stale = False
        self._last_event: int | None = None
        self.reduce_only = False
        self._day = -1
        self._day_start_pnl = 0.0
        self._window: deque[tuple[int, float]] = deque()  # (ts, pnl) with pnl decreasing: window max
        self._sent: deque[int] = deque()  # times of orders and cancels sent, for the rate limit
        self._pauses = time_windows(config.pause_windows) if config.pause_windows else []
        self._reduces = time_windows(config.reduce_windows) if config.reduce_windows else []
        self.scheduled_reduce = False

    # -- state rules, at every wake-up ------------------------------------------------------------
    @property
    def blocked(self) -> bool:
        """True while nothing may be quoted (halted, paused or stale data)."""
        return self.halted or self.paused_until is not None or self.stale

    def update(self, market: MarketState, om: Orders) -> None:
        """Apply the P&L and data rules at ``market.now``; cancel every order when quoting stops."""
        now = market.now
        if market.fair is not None:
            self.fair = market.fair
        self._last_event = market.last_event
        self._check_data(now, market.last_event, om)
        self._check_pnl(now, om)
        self._check_schedule(now, om)
        if self.paused_until is not None and now >= self.paused_until and not self.halted:
            self._record(now, self.pause_rule, "resume", self.pnl, NAN, "pause over: quoting resumes")
            self.paused_until = None
            self._window.clear()  # losses count afresh from the resume

    def _check_data(self, now: int, last_event: int | None, om: Orders) -> None:
        limit = self.config.stale_after
        if limit is None or last_event is None:
            return
        age = now - last_event
        if age >= limit and not self.stale:
            self.stale = True
            self._record(
                now, "stale_after", "stale", age / 1e9, limit / 1e9, "no market data: quotes cancelled"
            )
            self._cancel_all(om, now, "risk: stale market data")
        elif age < limit and self.stale:
            self.stale = False
            self._record(now, "stale_after", "fresh", age / 1e9, limit / 1e9, "market data flows again")

    def _check_pnl(self, now: int, om: Orders) -> None:
        cfg = self.config
        fair = self.fair
        account = self.account
        self.pnl = account.cash + (self.inst.value(fair, account.position) if fair is not None else 0.0)
        pnl = self.pnl
        self.peak = max(self.peak, pnl)
        if self.halted:
            return
        if cfg.max_drawdown is not None and self.peak - pnl >= cfg.max_drawdown:
            self.halt(now, om, "max_drawdown", self.peak - pnl, cfg.max_drawdown, f"P&L {pnl:.6g}")
            return
        if cfg.max_loss is not None and cfg.max_loss_window is None and -pnl >= cfg.max_loss:
            self.halt(now, om, "max_loss", -pnl, cfg.max_loss, f"P&L {pnl:.6g}")
            return
        day = now // DAY_NS
        if day != self._day:
            self._day, self._day_start_pnl = day, pnl
        if cfg.max_daily_loss is not None and self._day_start_pnl - pnl >= cfg.max_daily_loss:
            until = (day + 1) * DAY_NS
            if self.paused_until is None or self.paused_until < until:
                loss = self._day_start_pnl - pnl
                self._pause(
                    now, om, until, "max_daily_loss", loss, cfg.max_daily_loss, "until the next UTC day"
                )
        if cfg.max_loss is not None and cfg.max_loss_window is not None and self.paused_until is None:
            self._sample_window(now)
            loss = self._window[0][1] - pnl
            if loss >= cfg.max_loss:
                until = now + cfg.pause_for
                seconds = cfg.max_loss_window / 1e9
                self._pause(now, om, until, "max_loss", loss, cfg.max_loss, f"lost within {seconds:g}s")

    def _check_schedule(self, now: int, om: Orders) -> None:
        """Scheduled pauses (no quoting until the window ends) and reduce-only periods."""
        if self.halted:
            return
        for start, end in self._pauses:
            if start <= now < end and (self.paused_until is None or self.paused_until < end):
                self._pause(now, om, end, "pause_windows", NAN, NAN, "a scheduled pause")
        reduce = any(start <= now < end for start, end in self._reduces)
        if reduce != self.scheduled_reduce:
            self.scheduled_reduce = reduce
            if reduce:
                detail = "a scheduled reduce-only period: only the side that reduces the position quotes"
                self._record(now, "reduce_windows", "reduce_only", NAN, NAN, detail)
            else:
                self._record(now, "reduce_windows", "resume", NAN, NAN, "the reduce-only period is over")

    def _sample_window(self, now: int) -> None:
        """Add the current P&L to the rolling window; its first entry is then the window's peak."""
        window = self._window
        horizon = now - (self.config.max_loss_window or 0)
        while window and window[-1][1] <= self.pnl:
            window.pop()
        window.append((now, self.pnl))
        while window[0][0] < horizon:
            window.popleft()

    def _pause(
        self, now: int, om: Orders, until: int, rule: str, value: float, limit: float, why: str
    ) -> None:
        self.paused_until, self.pause_rule = until, rule
        self._record(now, rule, "pause", value, limit, f"{why}; paused for {(until - now) / 1e9:g}s")
        self._cancel_all(om, now, f"risk pause: {rule}")

    # -- the kill switch ----------------------------------------------------------------------------
    def halt(
        self,
        now: int,
        om: Orders,
        rule: str = "operator",
        value: float = NAN,
        limit: float = NAN,
        detail: str = "kill switch",
    ) -> None:
        """Cancel every order and place nothing more until :meth:`resume`."""
        self.halted = True
        self._record(now, rule, "halt", value, limit, detail)
        self._cancel_all(om, now, f"risk halt: {rule}")

    def resume(self, now: int) -> None:
        """An operator lifts a halt (never called in a backtest); P&L peaks and windows restart."""
        if not self.halted:
            return
        self.halted = False
        self.peak = self.pnl
        self._window.clear()
        self._record(now, "operator", "resume", self.pnl, NAN, "halt lifted by an operator")

    def next_wake(self, now: int) -> int | None:
        """The next local time at which a rule must act even if no event comes, if any."""
        times = []
        if self.config.stale_after is not None and not self.stale and self._last_event is not None:
            times.append(self._last_event + self.config.stale_after)
        if self.paused_until is not None:
            times.append(self.paused_until)
        times += [edge for window in self._pauses + self._reduces for edge in window]
        later = [t for t in times if t > now]
        return min(later) if later else None

    # -- decisions ----------------------------------------------------------------------------------
    def decide(self, wanted: QuoteSet, market: MarketState, om: Orders) -> None:
        """Turn the strategy's wanted quotes into what may be sent, and reconcile the orders to it."""
        self.update(market, om)
        now = market.now
        if self.blocked:
            self._cancel_all(om, now, "risk: quoting stopped")
            return
        bids = self._validate(1, wanted.bids, now)
        asks = self._validate(-1, wanted.asks, now)
        if self.scheduled_reduce:  # flat, either side would add: neither quotes
            position = self.account.position
            bids = _at_most(bids, -position)
            asks = _at_most(asks, position)
        bids, asks = self._limit_position(bids, asks, om, now)
        if self.config.max_order_rate is not None:
            bids, asks = self._throttle(bids, asks, om, now, self.config.max_order_rate)
        before = om.orders_placed + om.cancels_sent
        om.reconcile(bids, asks)
        self._count_sent(now, om.orders_placed + om.cancels_sent - before)

    def _validate(self, side: int, quotes: list[Quote], now: int) -> list[Quote]:
        """Pre-trade checks of each order on its own; a failing one is rejected with its reason."""
        out = []
        for q in quotes:
            problem = self.problem(q)
            if problem is None:
                out.append(Quote(int(q.price), int(q.size)))
            else:
                rule, value, limit, why = problem
                self._record(now, rule, "reject", value, limit, f"{self._describe(side, q)}: {why}")
        return out

    def largest_order(self, price: int, lots: int) -> int:
        """``lots`` cut to the largest single order the limits allow at ``price`` (max_order_size,
        max_order_notional), on the venue's size step; 0 when not even the minimum fits."""
        cfg, inst = self.config, self.inst
        if cfg.max_order_size is not None:
            lots = min(lots, math.floor(cfg.max_order_size / inst.lot_size + 1e-9))
        per_lot = inst.notional(price, 1)
        if cfg.max_order_notional is not None and per_lot > 0:
            lots = min(lots, math.floor(cfg.max_order_notional / per_lot + 1e-9))
        lots -= lots % inst.order_lots
        return lots if lots >= inst.min_size_lots else 0

    def problem(self, q: Quote) -> tuple[str, float, float, str] | None:
        """Why one order fails the pre-trade checks, as (rule, value, limit, why); None if it passes."""
        cfg, inst = self.config, self.inst
        if not float(q.price).is_integer():
            return "tick", float(q.price), NAN, "price off the tick grid"
        if not float(q.size).is_integer() or not inst.on_order_step(int(q.size)):
            return "lot", float(q.size), NAN, "size not a whole number of the venue's size step"
        size = q.size * inst.lot_size
        if q.size < inst.min_size_lots:
            return "min_size", size, inst.min_size_lots * inst.lot_size, "below the minimum size"
        if cfg.max_order_size is not None and size > cfg.max_order_size * (1 + 1e-9):
            return "max_order_size", size, cfg.max_order_size, "order too large (fat finger)"
        if inst.min_notional > 0 and inst.quote_notional(q.price, q.size) < inst.min_notional * (1 - 1e-9):
            value = inst.quote_notional(q.price, q.size)
            return "min_notional", value, inst.min_notional, "below the venue's minimum order value"
        notional = inst.notional(q.price, q.size)
        if cfg.max_order_notional is not None and notional > cfg.max_order_notional * (1 + 1e-9):
            return "max_order_notional", notional, cfg.max_order_notional, "order notional too large"
        if cfg.price_band is not None:
            if self.fair is None or self.fair <= 0:
                return "price_band", NAN, cfg.price_band, "no fair value to check the price against"
            distance = abs(q.price - self.fair) / self.fair
            if distance > cfg.price_band * (1 + 1e-9):
                return "price_band", distance, cfg.price_band, "price too far from fair value"
        return None

    def _position_limit(self, direction: int) -> tuple[int, str] | None:
        """The binding limit on a position in ``direction`` (1 long, -1 short) in lots and the rule that
        sets it (None: no position limit)."""
        cfg, inst = self.config, self.inst
        limits = []
        if cfg.max_pos is not None:
            limits.append((math.floor(cfg.max_pos / inst.lot_size + 1e-9), "max_pos"))
        for rule, cap in (("max_notional", cfg.max_notional), ("max_at_risk", cfg.max_at_risk)):
            if cap is not None:
                per_lot = self._per_lot(rule, direction)
                limits.append((math.floor(cap / per_lot + 1e-9) if per_lot > 0 else 0, rule))
        return min(limits) if limits else None

    def _per_lot(self, rule: str, direction: int) -> float:
        """What one lot in ``direction`` counts toward ``rule``'s cap: its value at fair (max_notional),
        or what it loses at the worst settlement (max_at_risk: fair for a long, which may pay 0;
        1 - fair for a short, which may have to pay 1); 0 without a fair value."""
        if self.fair is None:
            return 0.0
        if rule == "max_at_risk" and direction < 0:
            return self.inst.notional(max(self.inst.to_ticks(1.0) - self.fair, 0.0), 1)
        return self.inst.notional(self.fair, 1)

    def _limit_position(
        self, bids: list[Quote], asks: list[Quote], om: Orders, now: int
    ) -> tuple[list[Quote], list[Quote]]:
        """Trim each side so that the position after every order on it fills stays inside the limit
        in that direction (the same both ways, but for max_at_risk)."""
        limits = {side: self._position_limit(side) for side in (1, -1)}
        if limits[1] is None or limits[-1] is None:
            return bids, asks
        position = self.account.position
        held, held_rule = limits[1 if position >= 0 else -1]
        reduce_only = position != 0 and abs(position) >= self.config.reduce_only_at * held
        if reduce_only != self.reduce_only:
            self._flip_reduce_only(now, reduce_only, held_rule, position, held)
        out = []
        for side, quotes in ((1, bids), (-1, asks)):
            if reduce_only and side * position > 0:
                out.append([])  # the adding side is not quoted at all
                continue
            lots, rule = limits[side]
            out.append(self._fit(side, quotes, 0 if reduce_only else lots, rule, om, now))
        return out[0], out[1]

    def _flip_reduce_only(self, now: int, on: bool, rule: str, position: int, lots: int) -> None:
        self.reduce_only = on
        direction = 1 if position >= 0 else -1
        value = self._in_rule_units(rule, abs(position), direction)
        limit = self._in_rule_units(rule, self.config.reduce_only_at * lots, direction)
        if on:
            side = "selling" if position > 0 else "buying"
            self._record(
                now, rule, "reduce_only", value, limit, f"near the limit: only the {side} side quotes"
            )
        else:
            self._record(now, rule, "resume", value, limit, "reduce-only off: both sides quote")

    def _in_rule_units(self, rule: str, lots: float, direction: int) -> float:
        """Lots as units (max_pos), as notional at fair value (max_notional) or as the loss at the worst
        settlement (max_at_risk) of a position of that many lots in ``direction``."""
        if rule in ("max_notional", "max_at_risk") and self.fair is not None:
            return lots * self._per_lot(rule, direction)
        return lots * self.inst.lot_size

    def _fit(
        self, side: int, quotes: list[Quote], bound: int, rule: str, om: Orders, now: int
    ) -> list[Quote]:
        """Keep the side's worst case, ``side * position + exposure + new orders``, at most ``bound``.

        Best price first: an order already working at the wanted price and size is kept (it is
        already counted); a new order is cut to the room left, or dropped below the minimum size;
        when the wanted size does not fit, a smaller order already working at that price is kept
        rather than replaced, so it keeps its place in the queue.
        """
        exposure = om.exposure(side)
        held = side * self.account.position + exposure
        room = bound - held
        live = [o for o in om.orders.values() if o.side == side and o.status != "pending_cancel"]
        out: list[Quote] = []
        label = "reduce_only" if bound == 0 else rule
        for q in sorted(quotes, key=lambda q: -side * q.price):
            match = next((o for o in live if o.price == q.price and o.size == q.size), None)
            if match is not None and room >= 0:
                live.remove(match)
                out.append(q)
                continue
            if q.size <= room:
                out.append(q)
                room -= q.size
                continue
            cut = room - room % self.inst.order_lots  # what fits, on the venue's size step
            worst = self._in_rule_units(rule, bound - room + q.size, side)
            limit = self._in_rule_units(rule, bound, side)
            smaller = max(
                (o for o in live if o.price == q.price and o.size < q.size and room >= 0),
                key=lambda o: o.size,
                default=None,
            )
            if smaller is not None:
                live.remove(smaller)
                out.append(Quote(q.price, smaller.size))
                why = f"kept the working {smaller.size} lots"
            elif cut >= self.inst.min_size_lots:
                out.append(Quote(q.price, cut))
                why = f"cut to {cut} lots"
                room -= cut
            else:
                why = "dropped"
            detail = f"{self._describe(side, q)}: {why} ({label})"
            self._record(now, rule, "trim", worst, limit, detail)
        return out

    def _throttle(
        self, bids: list[Quote], asks: list[Quote], om: Orders, now: int, rate: float
    ) -> tuple[list[Quote], list[Quote]]:
        """Hold back new orders beyond the rate budget; cancels always go (they only reduce risk)."""
        self._expire_sent(now)
        cancels, places = om.diff(bids, asks)
        recent = len(self._sent)
        if recent + len(cancels) + len(places) <= rate:
            return bids, asks
        budget = max(0, math.floor(rate) - recent - len(cancels))
        new_bids = [q for s, q in places if s == 1]
        new_asks = [q for s, q in places if s == -1]
        order = [q for pair in zip(new_bids, new_asks, strict=False) for q in pair]
        order += new_bids[len(new_asks) :] + new_asks[len(new_bids) :]
        held = order[budget:]
        value = float(recent + len(cancels) + len(places))
        detail = f"{len(held)} of {len(places)} new orders held back"
        self._record(now, "max_order_rate", "throttle", value, rate, detail)
        return (
            [q for q in bids if not any(q is h for h in held)],
            [q for q in asks if not any(q is h for h in held)],
        )

    # -- bookkeeping -----------------------------------------------------------------------------
    def _cancel_all(self, om: Orders, now: int, reason: str) -> None:
        before = om.cancels_sent
        om.cancel_all(reason)
        self._count_sent(now, om.cancels_sent - before)

    def _count_sent(self, now: int, n: int) -> None:
        if self.config.max_order_rate is None:
            return
        self._sent.extend([now] * n)
        self._expire_sent(now)

    def _expire_sent(self, now: int) -> None:
        while self._sent and self._sent[0] <= now - RATE_WINDOW_NS:
            self._sent.popleft()

    def _describe(self, side: int, q: Quote) -> str:
        what = "bid" if side == 1 else "ask"
        return f"{what} {q.size} lots at {self.inst.price(q.price):.10g}"

    def _record(self, ts: int, rule: str, action: str, value: float, limit: float, detail: str) -> None:
        self.events.append(RiskEvent(ts, rule, action, float(value), float(limit), detail))

    def counts(self) -> dict[str, int]:
        """How many times each action was taken."""
        out = dict.fromkeys(ACTIONS, 0)
        for e in self.events:
            out[e.action] += 1
        return out


def _at_most(quotes: list[Quote], lots: int) -> list[Quote]:
    """The quotes, best first, cut so that all of them filling trades at most ``lots`` (none when
    ``lots <= 0``): a reduce-only side never turns the position through zero."""
    out = []
    for q in quotes:
        if lots <= 0:
            break
        size = min(int(q.size), lots)
        out.append(Quote(int(q.price), size))
        lots -= size
    return out
