"""The live engine: many market makers in one asyncio event loop, their state in the store.

Each maker runs as its own task beside its venue's task (a built-in strategy mostly takes its turns
in the venue's callback, the task keeping its timers). A maker that raises is marked ``failed``
(its orders cancelled, the error stored) and the others go on. Every operator action is written to
the audit table with who asked. ``start()`` resumes every maker the store says was running: after
a crash, the venue is rebuilt, the fills it made since the last one stored are applied, and our
open orders are checked against the venue's before quoting resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live.lane import Lane
from quotewise.live.maker import Maker, keep_warm
from quotewise.live.paper import PaperVenue
from quotewise.live.store import MakerRecord, OrderRecord, Store
from quotewise.parsing import parse_duration
from quotewise.quoting.base import Strategy
from quotewise.quoting.loader import make_strategy
from quotewise.risk import RiskConfig
from quotewise.sim.exchange import SimConfig

STOP_WAIT_S = 2.0
FLUSH_EVERY_S = 0.1  # order states are written in one transaction this often (fills: at once)


def freeze_long_lived() -> None:
    """Put everything alive now (makers, books, their venues) out of the cyclic collector's reach:
    with 1,000 makers a full collection walked all of them and held the event loop for up to ~0.4 s
    (tick_to_quote read delay p99 374 ms; 12-16 ms frozen). Called whenever a maker starts; the objects
    are still freed by reference counting, and a stopped maker stays in the engine anyway."""
    gc.freeze()


class UnknownMaker(QuotewiseError):
    """No maker with this id."""


class MakerSpec(BaseModel):
    """What ``mm start`` asks for."""

    model_config = ConfigDict(extra="forbid")

    venue: Literal["paper"] = "paper"
    market: str = Field(min_length=1)
    data: str = Field(min_length=1, description="file to replay, or 'synthetic[:N]'")
    speed: float = Field(1.0, gt=0, description="replay speed, times real time")
    strategy: str = "symmetric"
    params: dict[str, Any] = Field(default_factory=dict)
    risk: dict[str, Any] | None = None
    latency_entry: str = "1ms"
    latency_response: str = "1ms"


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
    )


def build_strategy(name: str, params: dict[str, Any]) -> Strategy:
    """The strategy with these params; a bad value is a ConfigError naming the parameter."""
    try:
        return make_strategy(name, params)
    except ValidationError as exc:
        raise ConfigError(f"invalid strategy parameters: {_problems(exc)}") from None


def build_risk(risk: dict[str, Any] | None) -> RiskConfig | None:
    if not risk:
        return None
    values = dict(risk)
    for name in ("max_loss_window", "stale_after", "pause_for"):
        if isinstance(values.get(name), str):
            values[name] = parse_duration(values[name], name)
    try:
        return RiskConfig(**values)
    except ValidationError as exc:
        raise ConfigError(f"invalid risk limits: {_problems(exc)}") from None


class LiveEngine:
    """Owns the makers; the HTTP server and the tests drive it through these methods."""

    def __init__(
        self, store: Store, clock: Callable[[], int] = time.time_ns, keep_warm_s: float | None = None
    ) -> None:
        """``keep_warm_s``: idle makers rehearse their decision this often (:func:`keep_warm`)."""
        self.store = store
        self.clock = clock
        self.keep_warm_s = keep_warm_s
        self.makers: dict[str, Maker] = {}
        self._tasks: dict[str, list[asyncio.Task]] = {}
        self._flusher: asyncio.Task | None = None
        self._warmer: asyncio.Task | None = None
        self.lane = Lane()  # book updates of built-in strategies, applied together
        self.started_at = time.time()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> list[str]:
        """Resume every maker the store has as running (after a restart or a crash)."""
        resumed = []
        open_orders = self.store.open_orders()
        for rec in self.store.makers(status="running"):
            try:
                report = self._launch(rec, open_orders.get(rec.maker_id, []))
            except QuotewiseError as exc:
                self.store.set_status(rec.maker_id, "failed", f"could not resume: {exc}")
                self.store.audit("engine", "resume_failed", rec.maker_id, {"error": str(exc)})
                continue
            self.store.audit("engine", "resume", rec.maker_id, report)
            resumed.append(rec.maker_id)
        return resumed

    async def start_maker(self, spec: MakerSpec, actor: str = "api") -> str:
        """Validate everything first (a bad request changes nothing), then store and start it."""
        strategy = build_strategy(spec.strategy, spec.params)
        risk = build_risk(spec.risk)
        sim = self._sim(spec.latency_entry, spec.latency_response)
        maker_id = "mm-" + secrets.token_hex(3)
        # reading the data (and compiling the simulator the first time) takes seconds: off the loop,
        # so the running makers keep quoting meanwhile
        venue = await asyncio.to_thread(
            PaperVenue, maker_id, spec.data, self.store, spec.speed, sim=sim, clock=self.clock
        )
        params = strategy.params.model_dump()
        self.store.add_maker(
            maker_id,
            spec.venue,
            spec.market,
            spec.data,
            spec.speed,
            spec.strategy,
            params,
            risk.model_dump() if risk is not None else None,
            {"entry_latency_ns": sim.entry_latency_ns, "response_latency_ns": sim.response_latency_ns},
            actor=actor,
        )
        self.store.audit(actor, "start", maker_id, spec.model_dump())
        self._run(maker_id, Maker(maker_id, venue, self.store, strategy, risk, self.lane), venue)
        return maker_id

    async def stop_maker(self, maker_id: str, actor: str = "api", reason: str = "operator stop") -> dict:
        maker = self._maker(maker_id)
        left = await maker.cancel_all(reason, STOP_WAIT_S)
        maker.end("stopped")
        await self._end_tasks(maker_id)
        maker.venue.close()
        self.store.set_status(maker_id, "stopped", reason)
        self.store.audit(actor, "stop", maker_id, {"orders_left": left})
        return self.status(maker_id)

    async def shutdown(self, cancel_orders: bool = True, actor: str = "engine") -> None:
        """Graceful exit: every maker cancels its orders (bounded wait), then the tasks end. Makers
        stay ``running`` in the store, so the next start resumes them."""
        live = [m for m in self.makers.values() if m.state == "running"]
        if cancel_orders:
            await asyncio.gather(*(m.cancel_all("engine shutdown", STOP_WAIT_S) for m in live))
        for maker_id in list(self._tasks):
            await self._end_tasks(maker_id)
        for m in live:
            m.venue.close()
        for task in (self._flusher, self._warmer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._flusher = self._warmer = None
        self.store.flush_orders()
        self.store.audit(actor, "shutdown", None, {"makers": [m.maker_id for m in live]})

    # -- observation and control -------------------------------------------------------------------
    def list_makers(self) -> list[dict[str, Any]]:
        return [self._summary(rec) for rec in self.store.makers()]

    def status(self, maker_id: str) -> dict[str, Any]:
        rec = self.store.maker(maker_id)
        if rec is None:
            raise UnknownMaker(f"no maker {maker_id!r} (mm list shows them)")
        out = self._summary(rec)
        maker = self.makers.get(maker_id)
        if maker is not None:
            out.update(maker.status())
        else:
            pos = self.store.position(maker_id)
            if pos is not None:  # not running here: what the store holds (position in lots)
                out.update(
                    {"position_lots": pos.position, "cash": pos.cash, "fees": pos.fees, "fills": pos.fills}
                )
        out["config"] = {"version": rec.config_version, "params": rec.params, "risk": rec.risk}
        return out

    async def configure(self, maker_id: str, changes: dict[str, Any], actor: str = "api") -> dict[str, Any]:
        """Change strategy parameters and/or risk limits; effective at the maker's next decision."""
        rec = self.store.maker(maker_id)
        if rec is None:
            raise UnknownMaker(f"no maker {maker_id!r} (mm list shows them)")
        if not changes:
            return {"version": rec.config_version, "params": rec.params, "risk": rec.risk}
        risk_fields = set(RiskConfig.model_fields)
        risk_changes = {k: v for k, v in changes.items() if k in risk_fields}
        param_changes = {k: v for k, v in changes.items() if k not in risk_fields}
        strategy = build_strategy(rec.strategy, {**rec.params, **param_changes})
        risk_values = {**(rec.risk or {}), **risk_changes}
        risk = build_risk({k: v for k, v in risk_values.items() if v is not None})
        params = strategy.params.model_dump()
        risk_dump = risk.model_dump() if risk is not None else None
        version = self.store.add_config(maker_id, params, risk_dump, actor)
        self.store.audit(actor, "config", maker_id, {"changes": changes, "version": version})
        maker = self.makers.get(maker_id)
        if maker is not None:
            maker.reconfigure(strategy, risk)
        return {"version": version, "params": params, "risk": risk_dump}

    # -- internals ---------------------------------------------------------------------------------
    def _maker(self, maker_id: str) -> Maker:
        maker = self.makers.get(maker_id)
        if maker is None or maker.state != "running":
            rec = self.store.maker(maker_id)
            if rec is None:
                raise UnknownMaker(f"no maker {maker_id!r} (mm list shows them)")
            raise ConfigError(f"maker {maker_id} is not running (status {rec.status})")
        return maker

    @staticmethod
    def _sim(entry: str, response: str) -> SimConfig:
        return SimConfig(
            entry_latency_ns=parse_duration(entry, "latency_entry"),
            response_latency_ns=parse_duration(response, "latency_response"),
        )

    def _launch(self, rec: MakerRecord, open_orders: list[OrderRecord]) -> dict[str, int]:
        """Rebuild a maker the store has as running, with its open orders as the store last knew them."""
        strategy = build_strategy(rec.strategy, rec.params)
        risk = build_risk(rec.risk)
        sim = SimConfig(
            entry_latency_ns=rec.sim.get("entry_latency_ns", 1_000_000),
            response_latency_ns=rec.sim.get("response_latency_ns", 1_000_000),
        )
        venue = PaperVenue(
            rec.maker_id, rec.data_path, self.store, rec.speed, sim=sim, clock=self.clock, resume=True
        )
        maker = Maker(rec.maker_id, venue, self.store, strategy, risk, self.lane)
        report = maker.resume_from(self.store.position(rec.maker_id), open_orders)
        self._run(rec.maker_id, maker, venue)
        return report

    async def _flush_orders(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            self.store.flush_orders()

    def _run(self, maker_id: str, maker: Maker, venue: Any) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_orders(), name="order-flusher")
        if self._warmer is None and self.keep_warm_s:
            running = self.makers.values
            self._warmer = asyncio.create_task(keep_warm(running, self.keep_warm_s), name="keep-warm")
        self.makers[maker_id] = maker
        maker.on_failure = self._fail
        venue_task = asyncio.create_task(venue.run(), name=f"{maker_id}-venue")
        maker_task = asyncio.create_task(maker.run(), name=f"{maker_id}-maker")
        venue_task.add_done_callback(lambda t: self._venue_done(maker_id, t))
        maker_task.add_done_callback(lambda t: self._maker_done(maker_id, t))
        self._tasks[maker_id] = [venue_task, maker_task]
        freeze_long_lived()

    def _venue_done(self, maker_id: str, task: asyncio.Task) -> None:
        maker = self.makers.get(maker_id)
        if task.cancelled() or maker is None or maker.state != "running":
            return
        exc = task.exception()
        if exc is not None:
            self._fail(maker, f"venue: {exc!r}")
            return
        maker.end("finished")
        self.store.set_status(maker_id, "finished", "the data has ended")
        self.store.audit("engine", "finished", maker_id, {"fills": maker.fills})

    def _maker_done(self, maker_id: str, task: asyncio.Task) -> None:
        maker = self.makers.get(maker_id)
        if task.cancelled() or maker is None:
            return
        exc = task.exception()
        if exc is not None:
            self._fail(maker, repr(exc))

    def _fail(self, maker: Maker, error: str) -> None:
        """A maker broke: its orders are cancelled, the error is stored, the others go on."""
        maker.end("failed", error)
        with contextlib.suppress(Exception):
            maker.om.cancel_all("maker failed")
            maker.persist_orders()
            self.store.flush_orders()
        for task in self._tasks.get(maker.maker_id, []):
            task.cancel()
        self.store.set_status(maker.maker_id, "failed", error)
        self.store.audit("engine", "failed", maker.maker_id, {"error": error})

    async def _end_tasks(self, maker_id: str) -> None:
        tasks = self._tasks.pop(maker_id, [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _summary(self, rec: MakerRecord) -> dict[str, Any]:
        maker = self.makers.get(rec.maker_id)
        status = rec.status
        if maker is not None and maker.state != "running" and status == "running":
            status = maker.state
        return {
            "id": rec.maker_id,
            "venue": rec.venue,
            "market": rec.market,
            "data": rec.data_path,
            "speed": rec.speed,
            "strategy": rec.strategy,
            "status": status,
            "reason": rec.reason,
            "fills": maker.fills if maker is not None else self._stored_fills(rec.maker_id),
        }

    def _stored_fills(self, maker_id: str) -> int:
        pos = self.store.position(maker_id)
        return pos.fills if pos is not None else 0
