"""Engine workers: the makers spread over processes, one event loop each, when one loop cannot keep up.

``mm engine start --workers N`` runs :class:`ShardedEngine`: the engine process keeps the API, the
dashboard's stream, the metrics and the store's reads, and starts N worker processes. Each worker
is a :class:`~quotewise.live.engine.LiveEngine` of its own on the same database (its makers, their
venues, the order flusher, the book checks), driven over a pipe: the engine process calls a
worker's engine methods by name (:data:`WORKER_CALLS`) and gets their answers or errors back.

A maker lives in one worker from its start (the one with the fewest makers, or the one holding its
book's makers: a book's limits are checked in one loop over all of its makers) to the end of the
engine. On a restart the running makers are dealt out again the same way. The workers insert order
rows with ids in lanes of their own (:class:`~quotewise.live.store.Store` ``row_lane``), so one
database takes them all. A worker that dies leaves its makers ``running`` in the store: the next
engine start resumes them; until then, calls about them fail with a line naming the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quotewise.errors import ConfigError, QuotewiseError
from quotewise.live import MAX_WORKERS
from quotewise.live.engine import LiveEngine, MakerSpec, new_maker_id
from quotewise.live.store import Store, in_memory
from quotewise.logs import kv

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector

RESTARTS = 3  # a worker that exits is started again, at most this many times ...
RESTART_WINDOW_S = 60.0  # ... within this long (then it stays down: something is wrong with it)
CALL_WAIT_S = 30.0  # a worker answers a read within this, however busy its loop
READY_WAIT_S = 120.0  # a new worker answers within this (its imports, its store opened)
# the worker engine's methods the engine process may call (everything else is refused by name)
WORKER_CALLS = frozenset(
    {
        "start",
        "start_maker",
        "stop_maker",
        "halt",
        "resume_quoting",
        "configure",
        "statuses",
        "performances",
        "book",
        "take_book_limits",
        "live_states",
        "snapshots",
        "health",
        "metric_families",
        "shutdown",
    }
)

logger = logging.getLogger(__name__)


class WorkerGone(QuotewiseError):
    """A worker process has exited: its makers resume at the next engine start."""


def check_workers(workers: int, url: str) -> None:
    """Workers need a database (``url``) more than one process can open."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(
            f"--workers {workers}: give 1 to {MAX_WORKERS} (one per core is the most that helps)"
        )
    if workers > 1 and in_memory(url):
        raise ConfigError(
            "--workers: an in-memory database lives in one process; give --db a file or a database URL"
        )


# -- the worker process ---------------------------------------------------------------------------------
def worker_main(
    conn: Connection, url: str, lane: tuple[int, int], keep_warm_s: float | None, log: str
) -> None:
    """A worker process: its engine on the shared database, answering the engine process's calls
    until it says ``shutdown`` or goes away (then every maker here cancels its orders and stops as
    at an engine shutdown: they stay running in the store, resumed at the next start)."""
    from quotewise import logs

    # Ctrl-C in a terminal reaches the whole process group: the engine process alone handles it, and
    # shuts the workers down in order (their makers cancel first)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log:
        logs.configure(Path(log))
    asyncio.run(_serve(conn, url, lane, keep_warm_s))


def answer(call_id: int, ok: bool, value: Any) -> bytes:
    """A call's answer as the engine process reads it: ``(call_id, ok, value)`` pickled. An answer or
    an error that cannot cross (an exception whose class is not rebuilt from its arguments) crosses
    as a :class:`QuotewiseError` with its text: the engine process's reader must never fail on one."""
    try:
        message = pickle.dumps((call_id, ok, value))
        if not ok:
            pickle.loads(message)
    except Exception:
        message = pickle.dumps((call_id, False, QuotewiseError(f"{type(value).__name__}: {value}")))
    return message


async def _serve(conn: Connection, url: str, lane: tuple[int, int], keep_warm_s: float | None) -> None:
    store = Store(url, row_lane=lane)
    engine = LiveEngine(store, keep_warm_s=keep_warm_s)
    collector = engine.metric_collector()
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    tasks: set[asyncio.Task] = set()

    def reply(call_id: int, ok: bool, value: Any) -> None:
        with contextlib.suppress(OSError):
            conn.send_bytes(answer(call_id, ok, value))

    async def run(call_id: int, method: str, args: tuple, kwargs: dict) -> None:
        try:
            if method == "metric_families":
                value: Any = list(collector.collect())
            elif method == "start_maker":
                value = await engine.start_maker(MakerSpec(**args[0]), **kwargs)
            else:
                value = getattr(engine, method)(*args, **kwargs)
                if asyncio.iscoroutine(value):
                    value = await value
        except Exception as exc:
            reply(call_id, False, exc)
        else:
            reply(call_id, True, value)
        if method == "shutdown":
            ended.set()

    def take(message: tuple) -> None:
        call_id, method, args, kwargs = message
        if method not in WORKER_CALLS:
            reply(call_id, False, QuotewiseError(f"an engine worker has no call {method!r}"))
            return
        task = loop.create_task(run(call_id, method, args, kwargs))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def read() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            loop.call_soon_threadsafe(take, message)
        loop.call_soon_threadsafe(ended.set)

    threading.Thread(target=read, name="worker-calls", daemon=True).start()
    await ended.wait()
    if engine.makers and any(m.state == "running" for m in engine.makers.values()):
        logger.error("the engine process went away: this worker's makers stop", extra=kv(pid=os.getpid()))
        await engine.shutdown(cancel_orders=True, actor="engine")
    store.close()


def _settle(future: Future, ok: bool, value: Any) -> None:
    """An answer into its future, unless the caller gave up on it (a timeout cancelled it)."""
    with contextlib.suppress(InvalidStateError):
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


# -- the engine process's side of one worker --------------------------------------------------------------
class WorkerLink:
    """One worker process and the calls in flight to it (answered on a reader thread)."""

    def __init__(self, index: int, count: int, url: str, keep_warm_s: float | None, log: str) -> None:
        self.index = index
        context = multiprocessing.get_context("spawn")  # no fork of a process holding threads and a loop
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=worker_main,
            args=(child, url, (index, count), keep_warm_s, log),
            name=f"quotewise-worker-{index}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.makers: set[str] = set()  # the makers this worker runs (or ran, since the engine started)
        self.books: set[str] = set()  # the books of those makers
        self.closing = False
        self.gone = False  # its pipe has closed: no answer will come
        self.restarting = False  # another process is taking its place
        self.on_gone: Callable[[WorkerLink], None] | None = None  # called on the reader thread
        self._ids = itertools.count()
        self._pending: dict[int, Future] = {}
        self._send = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"worker-{index}-answers", daemon=True)
        self._reader.start()

    def take(self, maker_id: str, book: str | None) -> None:
        """The maker runs here from now on (and its book's other makers will)."""
        self.makers.add(maker_id)
        if book is not None:
            self.books.add(book)

    @property
    def alive(self) -> bool:
        """Answering calls: its pipe open (a killed process may not be reaped yet) and running."""
        return not self.gone and self.process.is_alive()

    @property
    def name(self) -> str:
        return f"engine worker {self.index} (pid {self.process.pid})"

    def submit(self, method: str, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        call_id = next(self._ids)
        self._pending[call_id] = future
        try:
            if self.gone:
                raise OSError("the worker's pipe is closed")
            with self._send:
                self.conn.send((call_id, method, args, kwargs))
        except (OSError, ValueError):
            if self._pending.pop(call_id, None) is not None:
                _settle(future, False, self._gone())
        return future

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A call's answer, waited for here (reads: a worker answers them between its turns)."""
        return self.wait(self.submit(method, *args, **kwargs), method)

    def wait(self, future: Future, method: str) -> Any:
        """The answer of a call submitted earlier (several may be asked of several workers at once)."""
        try:
            return future.result(CALL_WAIT_S)
        except TimeoutError:
            raise QuotewiseError(f"{self.name} did not answer {method} within {CALL_WAIT_S:.0f} s") from None

    async def ready(self) -> None:
        """Once the worker answers (its imports done, its store open)."""
        await asyncio.wait_for(self.acall("live_states"), READY_WAIT_S)

    async def acall(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A call's answer, awaited (actions: a start opens a venue, a stop waits for its cancels)."""
        return await asyncio.wrap_future(self.submit(method, *args, **kwargs))

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, value = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                break
            future = self._pending.pop(call_id, None)
            if future is not None:
                _settle(future, ok, value)
        self.gone = True
        if not self.closing:
            logger.error("engine worker exited", extra=kv(worker=self.index, makers=len(self.makers)))
        for call_id in list(self._pending):
            future = self._pending.pop(call_id, None)
            if future is not None:
                _settle(future, False, self._gone())
        if not self.closing and self.on_gone is not None:
            self.on_gone(self)

    def _gone(self) -> WorkerGone:
        if self.restarting:
            return WorkerGone(f"{self.name} has exited: it is being restarted, its makers resume in a moment")
        return WorkerGone(
            f"{self.name} has exited: its makers resume at the next engine start (mm engine stop, start)"
        )

    async def close(self, wait_s: float = 10.0) -> None:
        self.closing = True
        await asyncio.to_thread(self.process.join, wait_s)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


# -- the engine process ---------------------------------------------------------------------------------
class ShardedEngine(LiveEngine):
    """The engine with its makers in worker processes: every method of :class:`LiveEngine`, those
    about a running maker asked of its worker, those of the store answered here."""

    def __init__(
        self,
        store: Store,
        workers: int,
        keep_warm_s: float | None = None,
        log: Path | None = None,
        restarts: int = RESTARTS,
    ) -> None:
        """``restarts``: how many times within :data:`RESTART_WINDOW_S` a worker that exits is started
        again (its running makers resumed there, as at an engine start)."""
        check_workers(workers, store.url)
        super().__init__(store, keep_warm_s=keep_warm_s)
        self.worker_count = workers
        self.log = log
        self.restarts = restarts
        self.links: list[WorkerLink] = []
        self._restart_times: dict[int, list[float]] = {}  # worker index -> monotonic times of its restarts
        self._restarting: set[asyncio.Task] = set()
        self._stopping = False

    def _new_link(self, index: int) -> WorkerLink:
        link = WorkerLink(index, self.worker_count, self.store.url, self.keep_warm_s, self._worker_log(index))
        loop = asyncio.get_running_loop()
        link.on_gone = lambda gone: loop.call_soon_threadsafe(self._worker_gone, gone)
        return link

    def _worker_gone(self, link: WorkerLink) -> None:
        """A worker exited on its own: started again unless it did so too often lately."""
        if self._stopping or self.links[link.index] is not link:  # one still starting: its start fails
            return
        now = time.monotonic()
        recent = [t for t in self._restart_times.get(link.index, []) if now - t < RESTART_WINDOW_S]
        if len(recent) >= self.restarts:
            logger.error(
                "engine worker not restarted: it exited too often",
                extra=kv(worker=link.index, restarts=len(recent), window_s=RESTART_WINDOW_S),
            )
            return
        self._restart_times[link.index] = [*recent, now]
        link.restarting = True
        task = asyncio.get_running_loop().create_task(self._restart(link))
        self._restarting.add(task)
        task.add_done_callback(self._restarting.discard)

    async def _restart(self, dead: WorkerLink) -> None:
        """A new process in the dead one's place (its row lane too), resuming its makers the store has
        as running; calls about them fail with a line saying so until it has."""
        running = {
            r.maker_id: r.book for r in self.store.makers(status="running") if r.maker_id in dead.makers
        }
        link = self._new_link(dead.index)
        try:
            await link.ready()
            for maker_id, book in running.items():
                link.take(maker_id, book)
            resumed = await link.acall("start", sorted(running))
        except Exception as exc:
            logger.error("engine worker restart failed", extra=kv(worker=dead.index, error=repr(exc)))
            dead.restarting = False
            await link.close(0.0)
            return
        self.links[dead.index] = link
        self.store.audit("engine", "worker_restart", None, {"worker": dead.index, "resumed": resumed})
        logger.warning(
            "engine worker restarted", extra=kv(worker=dead.index, pid=link.process.pid, resumed=len(resumed))
        )

    def _worker_log(self, index: int) -> str:
        """A worker's own log file beside the engine's (one writer a file: rotation stays safe)."""
        if self.log is None:
            return ""
        return str(self.log.with_name(f"{self.log.stem}.worker{index}{self.log.suffix}"))

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self, only: list[str] | None = None) -> list[str]:
        """Start the workers, then deal out the makers the store has as running and resume them there."""
        self.links = [self._new_link(i) for i in range(self.worker_count)]
        await asyncio.gather(*(link.ready() for link in self.links))
        running = [r for r in self.store.makers(status="running") if only is None or r.maker_id in only]
        for rec in running:
            self._link_for(rec.book).take(rec.maker_id, rec.book)
        shares = await asyncio.gather(
            *(link.acall("start", sorted(link.makers)) for link in self.links if link.makers)
        )
        resumed = [maker_id for share in shares for maker_id in share]
        logger.info("engine started", extra=kv(workers=self.worker_count, resumed=len(resumed)))
        return resumed

    async def shutdown(self, cancel_orders: bool = True, actor: str = "engine") -> None:
        """Every worker shuts its engine down (orders cancelled, makers left running in the store)."""
        self._stopping = True
        if self._restarting:  # a worker being restarted shuts down with the others
            await asyncio.wait(self._restarting)
        live = [link for link in self.links if link.alive]
        for link in live:
            link.closing = True  # its exit is expected from now on
        results = await asyncio.gather(
            *(link.acall("shutdown", cancel_orders, actor) for link in live), return_exceptions=True
        )
        for link, result in zip(live, results, strict=True):
            if isinstance(result, BaseException):
                logger.error(
                    "engine worker did not shut down", extra=kv(worker=link.index, error=repr(result))
                )
        await asyncio.gather(*(link.close() for link in self.links))
        self.links = []
        logger.info("engine stopped", extra=kv(workers=len(live)))

    def _link_for(self, book: str | None, running: dict[WorkerLink, int] | None = None) -> WorkerLink:
        """Where a new maker goes: its book's worker, else the live worker with the fewest makers
        ``running`` (as each worker counts them; without, the fewest given to it)."""
        holding = next((link for link in self.links if book in link.books), None)
        if holding is not None:
            return holding
        live = [link for link in self.links if link.alive] or self.links
        load = running or {}
        return min(live, key=lambda link: (load.get(link, 0), len(link.makers), link.index))

    def _owner(self, maker_id: str) -> WorkerLink | None:
        return next((link for link in self.links if maker_id in link.makers), None)

    def _running_owner(self, maker_id: str) -> WorkerLink:
        owner = self._owner(maker_id)
        if owner is None:
            self._maker(maker_id)  # raises: not running here (the store says what it is)
        return owner  # type: ignore[return-value]

    # -- actions ------------------------------------------------------------------------------------------
    async def start_maker(self, spec: MakerSpec, actor: str = "api") -> str:
        if spec.name is not None and self.store.maker(spec.name) is not None:
            raise ConfigError(f"there is a maker named {spec.name} already (mm list shows them)")
        running = {
            link: sum(state == "running" for state, _ in states.values())
            for link, states in self._each("live_states")
        }
        link = self._link_for(spec.book, running)
        # named here and taken before it starts: if its worker dies meanwhile, the restart resumes it
        # once the store has it running
        maker_id = spec.name or new_maker_id()
        payload = {**spec.model_dump(), "name": maker_id, "credentials": spec.credentials}
        link.take(maker_id, spec.book)
        try:
            return await link.acall("start_maker", payload, actor=actor)
        except WorkerGone:
            raise  # stored as running already or not: the worker's restart sees which
        except Exception:  # refused: nothing was stored
            link.makers.discard(maker_id)
            raise

    async def stop_maker(self, maker_id: str, actor: str = "api", reason: str = "operator stop") -> dict:
        return await self._running_owner(maker_id).acall("stop_maker", maker_id, actor=actor, reason=reason)

    async def halt(self, maker_id: str, flatten: bool = False, actor: str = "api") -> dict[str, Any]:
        return await self._running_owner(maker_id).acall("halt", maker_id, flatten, actor=actor)

    async def resume_quoting(self, maker_id: str, actor: str = "api") -> dict[str, Any]:
        return await self._running_owner(maker_id).acall("resume_quoting", maker_id, actor=actor)

    async def configure(self, maker_id: str, changes: dict[str, Any], actor: str = "api") -> dict[str, Any]:
        owner = self._owner(maker_id)
        if owner is None:
            return await super().configure(maker_id, changes, actor)
        return await owner.acall("configure", maker_id, changes, actor=actor)

    async def set_book_limits(self, name: str, values: dict[str, Any], actor: str = "api") -> dict[str, Any]:
        await super().set_book_limits(name, values, actor)
        limits = self.book_limits[name]
        await asyncio.gather(
            *(link.acall("take_book_limits", name, limits) for link in self.links if link.alive)
        )
        return self.book(name)

    # -- reads ------------------------------------------------------------------------------------------
    def _each(self, method: str, *args: Any) -> Iterator[tuple[WorkerLink, Any]]:
        """``method`` asked of every live worker at once; (worker, answer) as they come."""
        asked = [(link, link.submit(method, *args)) for link in self.links if link.alive]
        for link, future in asked:
            with contextlib.suppress(WorkerGone):
                yield link, link.wait(future, method)

    def live_states(self) -> dict[str, tuple[str, int]]:
        return {k: v for _, states in self._each("live_states") for k, v in states.items()}

    def snapshots(self, wanted: dict[str, bool]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for link in self.links:
            share = {k: v for k, v in wanted.items() if k in link.makers}
            if share and link.alive:
                with contextlib.suppress(WorkerGone):
                    out.update(link.call("snapshots", share))
        return out

    def status(self, maker_id: str) -> dict[str, Any]:
        return self.statuses([maker_id])[0]

    def statuses(self, maker_ids: list[str]) -> list[dict[str, Any]]:
        return self._per_worker("statuses", super().statuses, maker_ids)

    def performance(self, maker_id: str) -> dict[str, Any]:
        return self.performances([maker_id])[0]

    def performances(self, maker_ids: list[str]) -> list[dict[str, Any]]:
        return self._per_worker("performances", super().performances, maker_ids)

    def _per_worker(
        self, method: str, here: Callable[[list[str]], list[dict[str, Any]]], maker_ids: list[str]
    ) -> list[dict[str, Any]]:
        """``method`` over a list of makers: one call to each worker for its own (asked at once), the
        store's answers (``here``, one call) for the others; in the list's order."""
        asked = []
        for link in self.links:
            share = [m for m in maker_ids if m in link.makers]
            if share and link.alive:
                asked.append((share, link, link.submit(method, share)))
        answers: dict[str, dict[str, Any]] = {}
        for share, link, future in asked:
            with contextlib.suppress(WorkerGone):
                answers.update(zip(share, link.wait(future, method), strict=True))
        rest = [m for m in maker_ids if m not in answers]
        answers.update(zip(rest, here(rest) if rest else [], strict=True))
        return [answers[m] for m in maker_ids]

    def book(self, name: str) -> dict[str, Any]:
        """From the worker holding the book's makers (their live figures), else from the store."""
        holding = next((link for link in self.links if name in link.books and link.alive), None)
        return holding.call("book", name) if holding is not None else super().book(name)

    def health(self) -> dict[str, Any]:
        """The makers of every worker; the loop figures of the busiest (the one quoting latest)."""
        answers = dict(self._each("health"))
        workers = []
        for link in self.links:
            got = answers.get(link, {})
            workers.append({"index": link.index, "pid": link.process.pid, "alive": link.alive, **got})
        figures = [w for w in workers if w.get("loop_busy") is not None]
        busiest = max(figures, key=lambda w: w["loop_busy"], default={})
        return {
            "makers": sum(w.get("makers", 0) for w in workers),
            "loop_busy": busiest.get("loop_busy"),
            "loop_lag_ms": max((w["loop_lag_ms"] for w in figures), default=None),
            "loop_saturated": any(w.get("loop_saturated") for w in workers),
            "workers": workers,
        }

    def metric_families(self) -> dict[int, list[Metric]]:
        """Each live worker's metric families, by worker index."""
        return {link.index: families for link, families in self._each("metric_families")}

    def metric_collector(self) -> Collector:
        from quotewise.live.metrics import WorkersCollector

        return WorkersCollector(self)
