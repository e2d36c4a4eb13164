"""The live engine: many market makers in one asyncio event loop, their state in the store.

A maker's venue is the paper venue (a file replayed through our simulator), our simulator on an
exchange's live streams, or a real exchange through ccxt (:mod:`quotewise.live.venues`).

Each maker runs as its own task beside its venue's task (a built-in strategy mostly takes its turns
in the venue's callback, the task keeping its timers). A maker that raises is marked ``failed``
(its orders cancelled, the error stored) and the others go on. Every operator action is written to
the audit table with who asked. ``start()`` resumes every maker the store says was running: after
a crash, the venue is rebuilt, the fills it made since the last one stored are applied, and our
open orders are checked against the venue's before quoting resumes. A maker whose data ends stops
deciding (``finishing``) while the venue answers its orders, and is ``finished`` with none open.
Makers may belong to a book (:mod:`quotewise.live.books`): every :data:`BOOK_CHECK_S` the engine
checks each book's limits and halts every maker of a book beyond one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import re
import secrets
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live.books import (
    BOOK_NAME_PATTERN,
    MakerFigures,
    PnlHistory,
    book_limits,
    book_totals,
    breaches,
    check_book_name,
)
from quotewise.live.lane import Lane
from quotewise.live.loopload import LoopLoad
from quotewise.live.maker import Maker
from quotewise.live.paper import PaperVenue
from quotewise.live.paths import data_dir
from quotewise.live.scheduler import Scheduler
from quotewise.live.store import FillRecord, MakerRecord, OrderRecord, Store
from quotewise.live.stream import snapshot
from quotewise.live.venues import is_exchange, live_market
from quotewise.live.venues.endpoint import endpoint_origins
from quotewise.live.venues.prediction import MARKET_HELP, credential_names, is_prediction_venue
from quotewise.logs import kv
from quotewise.model.instrument import Instrument
from quotewise.parsing import parse_duration, time_windows
from quotewise.quoting.base import Strategy, resolve_size
from quotewise.quoting.loader import make_strategy
from quotewise.risk.config import risk_config
from quotewise.risk.engine import RiskEvent
from quotewise.settings import DEFAULT_STRATEGY, VenueSettings, split_settings

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

STOP_WAIT_S = 2.0
HALT, UNHALT = "halt", "resume_quoting"  # the audit's actions for an operator's halt and its end
FLUSH_EVERY_S = 0.1  # order states are written in one transaction this often (fills: at once)
BOOK_CHECK_S = 0.1  # books' limits are checked this often (from the makers' live state)
UNNAMED = ("", "UNKNOWN")  # the symbol readers give an instrument when the data does not name it
SEPARATORS = re.compile(r"[\s/_:-]")
MAKER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"  # a maker's id: a word of at most 32 characters

logger = logging.getLogger(__name__)


def freeze_long_lived() -> None:
    """Put everything alive now (makers, books, their venues) out of the cyclic collector's reach:
    with 1,000 makers a full collection walked all of them and held the event loop for up to ~0.4 s
    (tick_to_quote read delay p99 374 ms; 12-16 ms frozen). Called whenever a maker starts; the objects
    are still freed by reference counting, and a stopped maker stays in the engine anyway."""
    gc.freeze()


def new_maker_id() -> str:
    """A maker's id when its start names none: mm-<6 hex digits>."""
    return "mm-" + secrets.token_hex(3)


class UnknownMaker(QuotewiseError):
    """No maker with this id."""


class UnknownBook(UnknownMaker):
    """No maker belongs to this book and it has no limits."""


class MakerSpec(VenueSettings):
    """What ``mm start`` asks for: the venue and market, the strategy with its params, the risk
    limits, and the paper venue's settings (those of ``mm backtest``'s simulated venue, by the same
    names). ``venue`` is ``paper`` (a data file replayed through our simulator) or a ccxt exchange id
    (``binanceusdm``: real orders, with ``market`` a ccxt symbol such as ``BTC/USDT:USDT``)."""

    venue: str = Field("paper", min_length=1, description="paper, or a ccxt exchange id")
    market: str | None = Field(
        None, min_length=1, description="the data's symbol, or the exchange's (default: the data's)"
    )
    data: str | None = Field(None, min_length=1, description="file to replay, or 'synthetic[:N]'")
    endpoint: str | None = Field(
        None,
        description="send every REST and websocket request of the exchange to this origin (an emulator, "
        "a proxy); 'testnet': the exchange's testnet",
    )
    credentials: dict[str, str] | None = Field(
        None,
        exclude=True,  # never stored, audited or shown: used to connect, then dropped
        repr=False,
        description="{api_key, secret} for an exchange; Polymarket adds passphrase and private_key, Kalshi "
        "is {api_key, private_key} (default: the engine's environment or keys file)",
    )
    neg_risk: bool = Field(
        False,
        description="Polymarket: the market is one outcome of a negative-risk event (orders signed for it)",
    )
    speed: float = Field(1.0, gt=0, description="replay speed, times real time")
    strategy: str = DEFAULT_STRATEGY
    name: str | None = Field(
        None, pattern=MAKER_NAME, description="the maker's id (default: mm-<6 hex digits>)"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    risk: dict[str, Any] | None = None
    book: str | None = Field(
        None, pattern=BOOK_NAME_PATTERN, description="the book the maker belongs to (its totals and limits)"
    )

    @field_validator("endpoint")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is not None and value != "testnet":
            try:
                endpoint_origins(value)  # anything but http(s)://HOST:PORT is refused by name
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _credential_names(self) -> MakerSpec:
        names = credential_names(self.venue)
        if self.credentials is not None and (
            set(self.credentials) != names or not all(self.credentials.values())
        ):
            # never echo the values back
            raise ValueError(f"{self.venue} credentials are {{{', '.join(sorted(names))}}}, all given")
        return self

    @model_validator(mode="after")
    def _venue_and_market(self) -> MakerSpec:
        if self.venue == "paper":
            if self.data is None and live_market(self.market) is None:
                raise ValueError(
                    "the paper venue replays a file (--data FILE, or synthetic) or trades an exchange's "
                    "live market (EXCHANGE:SYMBOL, e.g. binanceusdm:BTC/USDT:USDT)"
                )
            if self.endpoint is not None and self.data is not None:
                raise ValueError("--endpoint is for an exchange's live market, not a replayed file")
            return self
        if self.neg_risk and self.venue != "polymarket":
            raise ValueError(
                "--neg-risk is a Polymarket market's kind (one outcome of a negative-risk event)"
            )
        if is_prediction_venue(self.venue):
            if self.market is None:
                raise ValueError(f"{self.venue} needs a market: {MARKET_HELP[self.venue]}")
        elif not is_exchange(self.venue):
            raise ValueError(
                f"unknown venue {self.venue!r}: paper, polymarket, kalshi, or a ccxt exchange id such as "
                "binanceusdm"
            )
        if self.market is None:
            raise ValueError(f"{self.venue} needs a market: its ccxt symbol, e.g. BTC/USDT:USDT")
        if self.data is not None:
            raise ValueError(f"--data is for the paper venue; {self.venue} trades its live market")
        return self

    @classmethod
    def from_flags(cls, values: dict[str, Any]) -> MakerSpec:
        """A spec from ``mm start``'s arguments by name, flat (``venue``, ``market``, ``data``,
        ``speed``, and every flag with ``-`` as ``_``: ``spread``, ``max_pos``, ``latency_entry``):
        strategy settings, risk limits and venue settings are told apart by name, as on the CLI."""
        own = {k: v for k, v in values.items() if k in cls.model_fields and k not in ("params", "risk")}
        params, risk, venue = split_settings({k: v for k, v in values.items() if k not in cls.model_fields})
        return cls(**own, **venue, params=params, risk=risk or None)

    def venue_settings(self) -> VenueSettings:
        return VenueSettings(**self.model_dump(include=set(VenueSettings.model_fields)))


def live_strategy(name: str, params: dict[str, Any]) -> Strategy:
    """The strategy a maker runs; a ``model`` only the backtest's compiled rule reads is refused (live
    it would be ignored)."""
    strategy = make_strategy(name, params)
    if getattr(strategy.params, "model", None) is not None and not strategy.reads_model:
        raise ConfigError(
            f"model=: the {name} rule leans on a model in the backtest only (mm backtest); live, use "
            "strategy adaptive"
        )
    if getattr(strategy.params, "lead", None) is not None:
        raise ConfigError(f"lead=: the {name} rule centres on a lead's fair value in the backtest only")
    return strategy


def _bare(market: str) -> str:
    return SEPARATORS.sub("", market).upper()


def market_name(asked: str | None, symbol: str, data: str) -> str:
    """The market a maker trades: the one asked for, which must be the data's symbol up to case and
    separators (BTC/USDT is BTCUSDT), else the data's symbol; data that names no symbol takes any
    name. Quoting one market on another's data would report prices of the wrong market."""
    if asked is None:
        if symbol in UNNAMED:
            raise ConfigError(f"{data} does not name its market: give one (mm start paper MARKET --data ...)")
        return symbol
    if symbol not in UNNAMED and _bare(asked) != _bare(symbol):
        raise ConfigError(f"market {asked} does not match the data: {data} holds {symbol}")
    return asked


def fill_row(fill: FillRecord, inst: Instrument) -> dict[str, Any]:
    """One stored fill as the API shows it: price and size on the instrument's grid, ``time`` in ns
    on the venue's clock, ``position`` after the fill in instrument units, ``cash`` after it."""
    return {
        "seq": fill.seq,
        "order_id": fill.order_id,
        "time": fill.exch_ts,
        "side": "buy" if fill.side == 1 else "sell",
        "price": inst.px(fill.price),
        "size": inst.qty(fill.qty),
        "fee": fill.fee,
        "liquidity": "maker" if fill.maker else "taker",
        "trade_id": fill.venue_trade_id,
        "position": inst.qty(fill.position),
        "cash": fill.cash,
    }


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
        self._book_watch: asyncio.Task | None = None
        self.load = LoopLoad()  # how busy the event loop is (sampled while makers run)
        self._load_watch: asyncio.Task | None = None
        self.book_of: dict[str, str] = {}  # maker id -> its book, for the makers started or resumed here
        self.book_limits: dict[str, dict[str, Any]] = store.book_limits()
        self._book_window_end: dict[str, int] = {}  # maker id -> end of its book's pause/reduce (its clock)
        self._book_pnl: dict[str, PnlHistory] = {}  # books with limits: P&L each second, for var_1m
        self.scheduler = Scheduler(lane=Lane())  # when each maker takes its turn (inline, soon, the lane)
        self.started_at = time.time()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, only: list[str] | None = None) -> list[str]:
        """Resume every maker the store has as running (after a restart or a crash); ``only``: those
        of them named there (an engine worker's share)."""
        resumed = []
        open_orders = self.store.open_orders()
        for rec in self.store.makers(status="running"):
            if only is not None and rec.maker_id not in only:
                continue
            try:
                report = await self._launch(rec, open_orders.get(rec.maker_id, []))
            except QuotewiseError as exc:
                self.store.set_status(rec.maker_id, "failed", f"could not resume: {exc}")
                self.store.audit("engine", "resume_failed", rec.maker_id, {"error": str(exc)})
                logger.error("maker could not resume", extra=kv(maker=rec.maker_id, error=exc))
                continue
            self.store.audit("engine", "resume", rec.maker_id, report)
            logger.info("maker resumed", extra=kv(maker=rec.maker_id, **report))
            resumed.append(rec.maker_id)
        logger.info("engine started", extra=kv(resumed=len(resumed)))
        return resumed

    async def start_maker(self, spec: MakerSpec, actor: str = "api") -> str:
        """Validate everything first (a bad request changes nothing), then store and start it."""
        strategy = live_strategy(spec.strategy, spec.params)
        risk = risk_config(spec.risk)
        settings = spec.venue_settings()
        maker_id = spec.name or new_maker_id()
        if self.store.maker(maker_id) is not None:
            raise ConfigError(f"there is a maker named {maker_id} already (mm list shows them)")
        venue = await self._open_venue(
            maker_id,
            spec.venue,
            spec.market,
            spec.data,
            spec.endpoint,
            spec.speed,
            settings,
            spec.credentials,
            neg_risk=spec.neg_risk,
        )
        market = (
            spec.market if spec.data is None else market_name(spec.market, venue.instrument.symbol, spec.data)
        )
        resolve_size(strategy, venue.instrument, venue.start_price)
        if spec.book is not None:
            try:
                self._check_book_currency(spec.book, venue.instrument)
            except ConfigError:
                await self._close_venue(venue)
                raise
        params = strategy.params.model_dump(mode="json")
        self.store.add_maker(
            maker_id,
            spec.venue,
            market,
            spec.data or spec.endpoint or "",
            spec.speed,
            spec.strategy,
            params,
            risk.model_dump(mode="json") if risk is not None else None,
            settings.model_dump(mode="json"),
            venue.instrument.model_dump(),
            actor=actor,
            book=spec.book,
        )
        if spec.book is not None:
            self.book_of[maker_id] = spec.book
        self.store.audit(actor, "start", maker_id, {**spec.model_dump(mode="json"), "market": market})
        logger.info(
            "maker started",
            extra=kv(maker=maker_id, market=market, strategy=spec.strategy, data=spec.data, actor=actor),
        )
        self._run(maker_id, Maker(maker_id, venue, self.store, strategy, risk, self.scheduler), venue)
        return maker_id

    async def stop_maker(self, maker_id: str, actor: str = "api", reason: str = "operator stop") -> dict:
        maker = self._maker(maker_id)
        left = await maker.cancel_all(reason, self._stop_wait(maker))
        await self._last_look(maker)
        maker.end("stopped")
        await self._end_tasks(maker_id)
        await self._close_venue(maker.venue)
        self.store.set_status(maker_id, "stopped", reason)
        self.store.audit(actor, "stop", maker_id, {"orders_left": left})
        logger.info("maker stopped", extra=kv(maker=maker_id, actor=actor, reason=reason, orders_left=left))
        return self.status(maker_id)

    async def shutdown(self, cancel_orders: bool = True, actor: str = "engine") -> None:
        """Graceful exit: every maker cancels its orders (bounded wait), then the tasks end. Makers
        stay ``running`` in the store, so the next start resumes them."""
        live = [m for m in self.makers.values() if m.state == "running"]
        if cancel_orders:
            await asyncio.gather(*(m.cancel_all("engine shutdown", self._stop_wait(m)) for m in live))
            await asyncio.gather(*(self._last_look(m) for m in live))
        for maker_id in list(self._tasks):
            await self._end_tasks(maker_id)
        for m in live:
            await self._close_venue(m.venue)
        for name in ("_flusher", "_book_watch", "_load_watch"):
            task = getattr(self, name)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                setattr(self, name, None)
        await self.scheduler.close()
        self.store.flush_orders()
        self.store.audit(actor, "shutdown", None, {"makers": [m.maker_id for m in live]})
        logger.info("engine stopped", extra=kv(makers=len(live)))

    async def halt(self, maker_id: str, flatten: bool = False, actor: str = "api") -> dict[str, Any]:
        """An operator's kill switch for one maker: orders cancelled, quoting stopped until resumed
        (also across an engine restart); ``flatten`` also closes the position with marketable orders
        inside the risk limits (each in the audit)."""
        maker = self._maker(maker_id)
        maker.stop_quoting(flatten, actor)
        position = maker.inst.qty(maker.ledger.position)
        self.store.audit(actor, HALT, maker_id, {"flatten": flatten, "position": position})
        logger.info("maker halted", extra=kv(maker=maker_id, actor=actor, flatten=flatten, position=position))
        return self.status(maker_id)

    async def resume_quoting(self, maker_id: str, actor: str = "api") -> dict[str, Any]:
        maker = self._maker(maker_id)
        if maker.halt is None:
            raise ConfigError(f"{maker_id} is not halted")
        maker.resume()
        self.store.audit(actor, UNHALT, maker_id, {})
        logger.info("maker resumed quoting", extra=kv(maker=maker_id, actor=actor))
        return self.status(maker_id)

    def _halted_in_store(self, maker_id: str) -> bool:
        """Whether the maker's last halt was not followed by a resume (it stays halted on restart)."""
        marks = [r["action"] for r in self.store.audit_rows(maker_id) if r["action"] in (HALT, UNHALT)]
        return bool(marks) and marks[-1] == HALT

    # -- books ---------------------------------------------------------------------------------------
    def books(self) -> list[dict[str, Any]]:
        """Every book (one a maker belongs to, or with limits): its makers and limits."""
        members: dict[str, list[str]] = {}
        for rec in self.store.makers():
            if rec.book is not None:
                members.setdefault(rec.book, []).append(rec.maker_id)
        return [
            {"book": name, "makers": members.get(name, []), "limits": self.book_limits.get(name)}
            for name in self.store.book_names()
        ]

    def book(self, name: str) -> dict[str, Any]:
        """A book's makers and totals (:func:`~quotewise.live.books.book_totals`) from their live state:
        the figures ``status()`` shows of each; a maker not running here counts its stored position
        with no mid (no exposure, no P&L)."""
        records = self.store.makers(book=name)
        if not records and name not in self.book_limits:
            raise UnknownBook(f"no book {name!r} (mm book list shows them)")
        history = self._book_pnl.get(name)
        var_1m = history.var_1m() if history is not None else None
        return book_totals(name, [self._figures(rec) for rec in records], self.book_limits.get(name), var_1m)

    async def set_book_limits(self, name: str, values: dict[str, Any], actor: str = "api") -> dict[str, Any]:
        """A book's limits (replacing its last), checked from the next turn of :meth:`check_books`; a
        book may get limits before its first maker starts."""
        limits = book_limits(values)
        check_book_name(name)
        self.store.set_book_limits(name, limits)
        self.book_limits[name] = limits
        self.store.audit(actor, "book_limits", None, {"book": name, **limits})
        logger.info("book limits set", extra=kv(book=name, actor=actor, **limits))
        return self.book(name)

    def take_book_limits(self, name: str, limits: dict[str, Any]) -> None:
        """A book's limits set (and stored) elsewhere: an engine worker's share of ``set_book_limits``."""
        self.book_limits[name] = limits

    async def check_books(self) -> list[str]:
        """Each book with limits, from its makers' live state: beyond a limit, every running maker of the
        book not halted yet is halted (the operator's halt, actor ``book-limit:NAME``), flattening when
        the limits say so, or, with action pause | reduce, paused (quotes only the side that reduces its
        position) for pause_for on its own clock. A maker resumed, or whose window ended, while its book
        is still beyond a limit is acted on again here. Returns the makers acted on."""
        acted = []
        for name, limits in self.book_limits.items():
            members = [m for mid, m in self.makers.items() if self.book_of.get(mid) == name]
            if not members:
                continue
            totals = book_totals(name, [self._live_figures(m) for m in members])["totals"]
            history = self._book_pnl.setdefault(name, PnlHistory())
            history.add(time.time_ns(), totals["pnl"])
            breached = breaches({**totals, "var_1m": history.var_1m()}, limits)
            if not breached:
                continue
            action = limits.get("action") or "halt"
            for maker in members:
                if maker.state != "running" or maker.halt is not None:
                    continue
                if action == "halt":
                    await self._book_halt(maker, name, breached[0], bool(limits.get("flatten")))
                elif not await self._book_window(maker, name, breached[0], action, limits["pause_for"]):
                    continue
                acted.append(maker.maker_id)
        return acted

    async def _book_window(
        self, maker: Maker, book: str, breach: dict[str, Any], action: str, pause_for: str
    ) -> bool:
        """One maker paused (or reduce-only) by its book's limit from now for ``pause_for``: a scheduled
        window added to its risk limits (past windows dropped), as ``mm config`` would, with a risk alert
        and an audit row. False while its last such window is still on."""
        now = maker.venue.now
        if self._book_window_end.get(maker.maker_id, -1) > now:
            return False
        length = parse_duration(pause_for, "pause_for")
        self._book_window_end[maker.maker_id] = now + length
        key = "pause_windows" if action == "pause" else "reduce_windows"
        old = (self._record(maker.maker_id).risk or {}).get(key)
        kept = [f"{s}/{e - s}ns" for s, e in time_windows(old) if e > now] if old else []
        limit, value, threshold = breach["limit"], breach["value"], breach["threshold"]
        actor = f"book-limit:{book}"
        detail = (
            f"book {book}: {limit} {value:.6g} > {threshold:.6g} (quote currency); {action} for {pause_for}"
        )
        kind = "pause" if action == "pause" else "reduce_only"
        self.store.add_risk_events(
            maker.maker_id, [RiskEvent(now, f"book_{limit}", kind, value, threshold, detail)]
        )
        self.store.audit(actor, "book_limit", maker.maker_id, {"book": book, **breach, "action": action})
        logger.warning(
            "book limit breached", extra=kv(book=book, maker=maker.maker_id, action=action, **breach)
        )
        await self.configure(maker.maker_id, {key: ",".join([*kept, f"{now}/{pause_for}"])}, actor=actor)
        return True

    async def _book_halt(self, maker: Maker, book: str, breach: dict[str, Any], flatten: bool) -> None:
        """One maker halted by its book's limit: a risk alert and an audit row naming the limit, its value
        and threshold, then the operator's halt."""
        limit, value, threshold = breach["limit"], breach["value"], breach["threshold"]
        actor = f"book-limit:{book}"
        detail = f"book {book}: {limit} {value:.6g} > {threshold:.6g} (quote currency); its makers halted"
        event = RiskEvent(maker.venue.now, f"book_{limit}", "halt", value, threshold, detail)
        self.store.add_risk_events(maker.maker_id, [event])
        self.store.audit(actor, "book_limit", maker.maker_id, {"book": book, **breach, "flatten": flatten})
        logger.warning("book limit breached", extra=kv(book=book, maker=maker.maker_id, **breach))
        await self.halt(maker.maker_id, flatten, actor=actor)

    @staticmethod
    def _live_figures(maker: Maker, market: str = "", status: str | None = None) -> MakerFigures:
        """A running (or stopped here) maker's figures, as its ``status()`` computes them."""
        ledger, mid, inst = maker.ledger, maker.book.mid, maker.inst
        halted = None if maker.halt is None else ("flattening" if maker.halt.flatten else "halted")
        return MakerFigures(
            maker.maker_id,
            market or inst.symbol,
            status or maker.state,
            halted,
            inst,
            ledger.position,
            mid,
            ledger.pnl(inst, mid),
        )

    def _figures(self, rec: MakerRecord) -> MakerFigures:
        maker = self.makers.get(rec.maker_id)
        status = self._summary(rec, self._live_state(rec.maker_id))["status"]
        if maker is not None:
            return self._live_figures(maker, rec.market, status)
        pos = self.store.position(rec.maker_id)
        held = pos.position if pos is not None else 0
        return MakerFigures(rec.maker_id, rec.market, status, None, rec.instrument, held, None, None)

    def _check_book_currency(self, book: str, inst: Instrument) -> None:
        """A book holds one quote currency: its totals are sums."""
        for rec in self.store.makers(book=book):
            held = rec.instrument.quote_currency
            if held != inst.quote_currency:
                raise ConfigError(
                    f"book {book} is in {held} ({rec.maker_id}); this market is quoted in "
                    f"{inst.quote_currency}: a book holds one quote currency"
                )

    async def _watch_books(self) -> None:
        while True:
            await asyncio.sleep(BOOK_CHECK_S)
            if not self.book_limits:
                continue
            try:
                await self.check_books()
            except Exception:  # a bug here must not end the checks of every other book
                logger.exception("book limit check failed")

    # -- observation and control -------------------------------------------------------------------
    def list_makers(self) -> list[dict[str, Any]]:
        live = self.live_states()
        return [self._summary(rec, live.get(rec.maker_id)) for rec in self.store.makers()]

    def live_states(self) -> dict[str, tuple[str, int]]:
        """Each maker run here: (its state, its fills)."""
        return {maker_id: (m.state, m.fills) for maker_id, m in self.makers.items()}

    def _live_state(self, maker_id: str) -> tuple[str, int] | None:
        maker = self.makers.get(maker_id)
        return None if maker is None else (maker.state, maker.fills)

    def snapshots(self, wanted: dict[str, bool]) -> dict[str, dict[str, Any]]:
        """The dashboard's view of each maker named (:func:`~quotewise.live.stream.snapshot`; True: with
        its book), skipping one half torn down (the next push has it)."""
        out = {}
        for maker_id, with_book in wanted.items():
            maker = self.makers.get(maker_id)
            if maker is None:
                continue
            try:
                out[maker_id] = snapshot(maker, with_book)
            except Exception:
                logger.debug("no snapshot of %s", maker_id, exc_info=True)
        return out

    def health(self) -> dict[str, Any]:
        """``/health``'s figures of the makers: how many run here, how busy their event loop is."""
        return {"makers": len(self.makers), **self.load.figures()}

    def metric_collector(self) -> Collector:
        """What ``/metrics`` reads (:mod:`quotewise.live.metrics`)."""
        from quotewise.live.metrics import EngineCollector

        return EngineCollector(self)

    def status(self, maker_id: str) -> dict[str, Any]:
        return self._status(self._record(maker_id))

    def _status(self, rec: MakerRecord) -> dict[str, Any]:
        maker_id = rec.maker_id
        out = self._summary(rec, self._live_state(maker_id))
        maker = self.makers.get(maker_id)
        if maker is not None:
            out.update(maker.status())
        else:
            pos = self.store.position(maker_id)
            if pos is not None:  # not running here: what the store holds, in the stored instrument's units
                position = rec.instrument.qty(pos.position)
                out.update({"position": position, "cash": pos.cash, "fees": pos.fees, "fills": pos.fills})
        out["config"] = {"version": rec.config_version, "params": rec.params, "risk": rec.risk}
        out["traceback"] = rec.traceback or None  # of a failed maker's exception, when it had one
        return out

    def statuses(self, maker_ids: list[str]) -> list[dict[str, Any]]:
        """:meth:`status` of each maker named, in that order (one call for a whole list: with
        workers, one question to each), the store's records read once."""
        records = {rec.maker_id: rec for rec in self.store.makers()}
        return [self._status(records.get(m) or self._record(m)) for m in maker_ids]

    def performances(self, maker_ids: list[str]) -> list[dict[str, Any]]:
        """:meth:`performance` of each maker named, in that order."""
        return [self._performance(maker_id) for maker_id in maker_ids]

    def performance(self, maker_id: str) -> dict[str, Any]:
        """A maker's results from its stored fills: P&L split into spread capture (each fill against
        the book's mid it was booked at), inventory (the rest) and fees; fills, volume, and for a
        maker running here its orders, cancels, rejects and fill rate (fills per order placed)."""
        return self._performance(maker_id)

    def _performance(self, maker_id: str) -> dict[str, Any]:
        """:meth:`performance` here, never routed elsewhere (an engine with workers answers through
        this for the makers no worker runs)."""
        rec = self._record(maker_id)
        inst = rec.instrument
        fills = self.store.fills(maker_id)
        status = self._status(rec)
        pnl = status.get("pnl")
        fees = math.fsum(f.fee for f in fills)
        spread = math.fsum(
            f.side * (inst.value(f.mid, f.qty) - inst.value(f.price, f.qty))
            for f in fills
            if f.mid is not None
        )
        maker = self.makers.get(maker_id)
        om = maker.om if maker is not None else None
        return {
            "id": maker_id,
            "market": rec.market,
            "status": status["status"],
            "currency": inst.settle_currency,
            "pnl": pnl,
            "spread_capture": spread,
            "inventory": None if pnl is None else pnl - spread + fees,
            "fees": -fees,
            "fills": len(fills),
            "fills_without_mid": sum(f.mid is None for f in fills),
            "volume": inst.qty(sum(f.qty for f in fills)),
            "position": status.get("position"),
            "orders_placed": om.orders_placed if om is not None else None,
            "cancels": om.cancels_sent if om is not None else None,
            "rejects": om.rejects if om is not None else None,
            "fill_rate": len(fills) / om.orders_placed if om is not None and om.orders_placed else None,
        }

    def risk_alerts(self, maker_id: str | None = None, since_ns: int = 0) -> list[dict[str, Any]]:
        """The risk engine's decisions (trims, rejects, pauses, halts, reduce-only), newest first."""
        ids = [maker_id] if maker_id is not None else [rec.maker_id for rec in self.store.makers()]
        rows = [r for one in ids for r in self.store.risk_events(one) if r["ts"] >= since_ns]
        for r in rows:  # a check with no number to show (no fair value yet) stored NaN: JSON has null
            r.update({k: None for k in ("value", "limit") if r[k] is not None and not math.isfinite(r[k])})
        return sorted(rows, key=lambda r: (-r["ts"], -r["id"]))

    def fills(self, maker_id: str) -> list[dict[str, Any]]:
        """A maker's fills (:func:`fill_row`), running here or not: its instrument is in the store."""
        inst = self._record(maker_id).instrument
        return [fill_row(f, inst) for f in self.store.fills(maker_id)]

    async def configure(self, maker_id: str, changes: dict[str, Any], actor: str = "api") -> dict[str, Any]:
        """Change strategy parameters and/or risk limits; effective at the maker's next decision."""
        rec = self._record(maker_id)
        if not changes:
            return {"version": rec.config_version, "params": rec.params, "risk": rec.risk}
        param_changes, risk_changes, venue_changes = split_settings(changes, keep_none=True)
        if venue_changes:
            raise ConfigError(
                f"{', '.join(sorted(venue_changes))}: the venue's settings stay as the maker started "
                "(stop it and start another)"
            )
        strategy = live_strategy(rec.strategy, {**rec.params, **param_changes})
        maker = self.makers.get(maker_id)
        inst = maker.inst if maker is not None else rec.instrument
        resolve_size(strategy, inst, maker.book.mid if maker is not None else None)
        risk = risk_config({**(rec.risk or {}), **risk_changes})
        params = strategy.params.model_dump(mode="json")
        risk_dump = risk.model_dump(mode="json") if risk is not None else None
        version = self.store.add_config(maker_id, params, risk_dump, actor)
        self.store.audit(actor, "config", maker_id, {"changes": changes, "version": version})
        if maker is not None:
            maker.reconfigure(strategy, risk)
        return {"version": version, "params": params, "risk": risk_dump}

    # -- internals ---------------------------------------------------------------------------------
    def _record(self, maker_id: str) -> MakerRecord:
        rec = self.store.maker(maker_id)
        if rec is None:
            raise UnknownMaker(f"no maker {maker_id!r} (mm list shows them)")
        return rec

    def _maker(self, maker_id: str) -> Maker:
        maker = self.makers.get(maker_id)
        if maker is None or maker.state != "running":
            raise ConfigError(f"maker {maker_id} is not running (status {self._record(maker_id).status})")
        return maker

    async def _open_venue(
        self,
        maker_id: str,
        venue: str,
        market: str | None,
        data: str | None,
        endpoint: str | None,
        speed: float,
        settings: VenueSettings,
        credentials: dict[str, str] | None = None,
        resume: bool = False,
        neg_risk: bool = False,
    ) -> Any:
        """The venue a maker trades on: the paper venue on a data file, or a real exchange (keys from
        the environment or the keys file, every request to ``endpoint`` when given), connected and
        reconciled with what the store holds."""
        if venue == "paper" and data is None:
            return await self._live_paper(maker_id, market or "", endpoint, settings, resume)
        if venue == "paper":
            # reading the data (and compiling the simulator the first time) takes seconds: off the
            # loop, so the running makers keep quoting meanwhile
            return await asyncio.to_thread(
                PaperVenue,
                maker_id,
                data,
                self.store,
                speed,
                settings=settings,
                clock=self.clock,
                resume=resume,
            )
        from quotewise.live.venues.ccxt_venue import CcxtVenue

        rec = self.store.maker(maker_id)  # None for a new maker
        trade_ids, last_fill_ns = self.store.fill_marks(maker_id)
        position = self.store.position(maker_id)
        since_ns = last_fill_ns or (rec.created_at if rec is not None else time.time_ns())
        exchange = self._exchange(maker_id, venue, market or "", credentials, endpoint)
        live = CcxtVenue(
            maker_id,
            exchange,
            market or "",
            trade_ids=trade_ids,
            last_seq=position.last_seq if position is not None else 0,
            next_order_id=self.store.last_order_id(maker_id) + 1,
            since_ms=since_ns // 1_000_000,
        )
        await self._connect(live, exchange)
        if neg_risk:
            from quotewise.live.venues.prediction import check_neg_risk

            await check_neg_risk(live, exchange)
        return live

    def _exchange(
        self,
        maker_id: str,
        venue: str,
        market: str,
        credentials: dict[str, str] | None,
        endpoint: str | None,
    ) -> Any:
        """The exchange's client, ccxt's or a prediction market's shaped like it, with its keys (the
        request's, else the engine's environment or keys file)."""
        if is_prediction_venue(venue):
            from quotewise.live.venues.prediction import env_credentials, open_prediction_exchange

            keys = credentials or env_credentials(venue)
            state = data_dir() / "venues"
            return open_prediction_exchange(venue, maker_id, keys, endpoint, state, market)
        from quotewise.live.venues.ccxt_venue import open_exchange
        from quotewise.live.venues.keys import Keys, load_keys

        keys = Keys(**credentials, source="the request") if credentials else load_keys(venue)
        return open_exchange(venue, keys, endpoint)

    async def _live_paper(
        self, maker_id: str, market: str, endpoint: str | None, settings: VenueSettings, resume: bool
    ) -> Any:
        """Our simulator on an exchange's live streams (no keys: the market is only read)."""
        from quotewise.live.venues.ccxt_venue import open_exchange
        from quotewise.live.venues.live_paper import LivePaperVenue

        exchange_id, symbol = live_market(market) or ("", "")
        exchange = open_exchange(exchange_id, None, endpoint)
        venue = LivePaperVenue(maker_id, exchange, symbol, self.store, settings, resume=resume)
        await self._connect(venue, exchange)
        return venue

    async def _connect(self, venue: Any, exchange: Any) -> None:
        """``venue.connect()``; on failure the exchange's connections are closed and a ccxt error
        becomes one line naming the exchange."""
        try:
            await venue.connect()
        except Exception as exc:
            await exchange.close()
            if isinstance(exc, QuotewiseError):
                raise
            raise ConfigError(f"{exchange.id}: {exc!r}") from exc

    @staticmethod
    def _stop_wait(maker: Maker) -> float:
        """How long a stop waits for cancels confirmed: a real venue's may pass backoffs, reconnects."""
        return float(getattr(maker.venue, "stop_wait_s", STOP_WAIT_S))

    async def _last_look(self, maker: Maker) -> None:
        """A real venue's fills the stream had not brought by the stop, stored before the venue closes."""
        catch_up = getattr(maker.venue, "catch_up", None)
        if catch_up is None:
            return
        await catch_up()
        await asyncio.sleep(0)  # what it found reaches the maker on the next turn of the loop
        maker.process_inputs()
        maker.persist_orders()

    async def _close_venue(self, venue: Any) -> None:
        """A venue's last words (the paper venue saves; an exchange's connections close)."""
        closing = getattr(venue, "aclose", None)
        if closing is not None:
            await closing()
        else:
            venue.close()

    async def _launch(self, rec: MakerRecord, open_orders: list[OrderRecord]) -> dict[str, int]:
        """Rebuild a maker the store has as running, with its open orders as the store last knew them."""
        strategy = live_strategy(rec.strategy, rec.params)
        risk = risk_config(rec.risk)
        settings = VenueSettings(**rec.sim)
        on_file = rec.venue == "paper" and live_market(rec.market) is None
        data = rec.data_path if on_file else None
        endpoint = None if on_file else rec.data_path or None
        venue = await self._open_venue(
            rec.maker_id, rec.venue, rec.market, data, endpoint, rec.speed, settings, resume=True
        )
        maker = Maker(rec.maker_id, venue, self.store, strategy, risk, self.scheduler)
        if rec.book is not None:
            self.book_of[rec.maker_id] = rec.book
        report = maker.resume_from(self.store.position(rec.maker_id), open_orders)
        if self._halted_in_store(rec.maker_id):  # an operator's halt outlives the engine
            maker.stop_quoting(False, "engine")
        self._run(rec.maker_id, maker, venue)
        return report

    async def _flush_orders(self) -> None:
        """Every ``FLUSH_EVERY_S``, queued order states to the store's writer. A write the database
        refused is logged and its states go with the next one (a locked or full database may recover;
        the makers keep trading meanwhile)."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                self.store.flush_orders_behind()
            except Exception as exc:
                logger.error(
                    "order states not written", extra=kv(error=repr(exc), queued=self.store.queued_orders)
                )

    def _run(self, maker_id: str, maker: Maker, venue: Any) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_orders(), name="order-flusher")
        if self._book_watch is None:
            self._book_watch = asyncio.create_task(self._watch_books(), name="book-limits")
        if self._load_watch is None:
            self._load_watch = asyncio.create_task(self.load.run(), name="loop-load")
        if self.keep_warm_s:
            self.scheduler.keep_warm(self.makers.values, self.keep_warm_s)
        self.makers[maker_id] = maker
        maker.on_failure = self._fail
        venue.on_end = lambda: maker.end("finishing")  # no more turns: the venue answers our orders
        venue_task = asyncio.create_task(venue.run(), name=f"{maker_id}-venue")
        maker_task = asyncio.create_task(maker.run(), name=f"{maker_id}-maker")
        venue_task.add_done_callback(lambda t: self._venue_done(maker_id, t))
        maker_task.add_done_callback(lambda t: self._maker_done(maker_id, t))
        self._tasks[maker_id] = [venue_task, maker_task]
        freeze_long_lived()

    def _venue_done(self, maker_id: str, task: asyncio.Task) -> None:
        """The venue's replay ended: every order answered by then, the maker finishes with none open."""
        maker = self.makers.get(maker_id)
        if task.cancelled() or maker is None or maker.state not in ("running", "finishing"):
            return
        exc = task.exception()
        if exc is not None:
            self._fail(maker, f"venue: {exc!r}", exc)
            return
        try:
            maker.finish()
        except Exception as exc:  # the strategy's on_fill raised on the last fills
            self._fail(maker, repr(exc), exc)
            return
        self.store.flush_orders()
        self.store.set_status(maker_id, "finished", "the data has ended")
        self.store.audit("engine", "finished", maker_id, {"fills": maker.fills})
        logger.info("maker finished", extra=kv(maker=maker_id, fills=maker.fills))

    def _maker_done(self, maker_id: str, task: asyncio.Task) -> None:
        maker = self.makers.get(maker_id)
        if task.cancelled() or maker is None:
            return
        exc = task.exception()
        if exc is not None:
            self._fail(maker, repr(exc), exc)

    def _fail(self, maker: Maker, error: str, exc: BaseException | None = None) -> None:
        """A maker broke: its orders are cancelled, the error is stored, the others go on. With the
        exception, its traceback is stored and logged too: ``error`` (its repr) does not say where."""
        trace = "".join(traceback.format_exception(exc)) if exc is not None else ""
        logger.error("maker failed", exc_info=exc, extra=kv(maker=maker.maker_id, error=error))
        maker.end("failed", error)
        with contextlib.suppress(Exception):
            maker.om.cancel_all("maker failed")
            maker.persist_orders()
            self.store.flush_orders()
        for task in self._tasks.get(maker.maker_id, []):
            task.cancel()
        self.store.set_status(maker.maker_id, "failed", error, trace)
        self.store.audit("engine", "failed", maker.maker_id, {"error": error})

    async def _end_tasks(self, maker_id: str) -> None:
        tasks = self._tasks.pop(maker_id, [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _summary(self, rec: MakerRecord, live: tuple[str, int] | None) -> dict[str, Any]:
        """``live``: (state, fills) of a maker run by this engine, else None (the store's figures)."""
        status = rec.status
        if live is not None and live[0] != "running" and status == "running":
            status = live[0]
        return {
            "id": rec.maker_id,
            "venue": rec.venue,
            "market": rec.market,
            "data": rec.data_path,
            "speed": rec.speed,
            "strategy": rec.strategy,
            "status": status,
            "reason": rec.reason,
            "fills": live[1] if live is not None else self._stored_fills(rec.maker_id),
            "book": rec.book,
        }

    def _stored_fills(self, maker_id: str) -> int:
        pos = self.store.position(maker_id)
        return pos.fills if pos is not None else 0
