"""Persistent state of the live engine: SQLAlchemy Core over any database URL (SQLite by default).

Every method commits before it returns, so whatever the engine acts on is already on disk: a fill
is stored before the decision that depends on it. SQLite runs in WAL mode with
``synchronous=NORMAL``: a committed row survives the process being killed.

Two groups of tables: ours (``makers``, ``configs``, ``orders``, ``fills``, ``positions``,
``risk_events``, ``audit``, ``books``) and the paper venue's own (``paper_state``, ``paper_fills``): what "the
exchange" knows, kept apart from our records so that recovery can compare the two.

The schema is versioned (``schema_version``, one row): opening a database of an older version runs
:data:`MIGRATIONS` in order, each in one transaction, so live state survives an upgrade; a newer
database than the code knows is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from quotewise.errors import ConfigError
from quotewise.live.venue import VenueFill
from quotewise.model.instrument import Instrument

TERMINAL = ("filled", "cancelled", "rejected", "closed")
ORDER_COLUMNS = ("maker_id", "order_id", "side", "price", "size", "left", "status", "ts")
ORDER_STATUS = ORDER_COLUMNS.index("status")

metadata = MetaData()

makers = Table(
    "makers",
    metadata,
    Column("maker_id", String(32), primary_key=True),
    Column("venue", String(32), nullable=False),
    Column("market", String(64), nullable=False),
    Column("data_path", Text, nullable=False),
    Column("speed", Float, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("instrument", JSON, nullable=False),  # Instrument.model_dump(): units for a maker not running
    Column("traceback", Text, nullable=False, default=""),  # of the exception a failed maker raised
    Column("book", String(32)),  # the book it belongs to (mm start --book); null: none
)
configs = Table(
    "configs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("maker_id", String(32), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("risk", JSON),
    Column("sim", JSON, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("ts", BigInteger, nullable=False),
    UniqueConstraint("maker_id", "version"),
)
orders = Table(
    "orders",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("maker_id", String(32), nullable=False),
    Column("order_id", BigInteger, nullable=False),
    Column("side", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("left", BigInteger, nullable=False),
    Column("status", String(24), nullable=False),
    Column("ts", BigInteger, nullable=False),
)
# One row per order, appended in time order, with no index but its row id: the store remembers the
# row of each open order (loaded with one scan at start). Any index over the orders (by maker and
# order id, or even one of the open orders only) made each write cost 4-13 us instead of ~1-2 at
# 1,000 makers and a million rows.
OPEN_ORDERS = text("status NOT IN ({})".format(", ".join(f"'{t}'" for t in TERMINAL)))


fills = Table(
    "fills",
    metadata,
    Column("maker_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("order_id", BigInteger, nullable=False),
    Column("exch_ts", BigInteger, nullable=False),
    Column("side", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("fee", Float, nullable=False),
    Column("maker", Boolean, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("cash", Float, nullable=False),
    # the venue's id of the trade (the paper venue's: its seq), so a fill is stored once per venue trade
    Column("venue_trade_id", String(64), nullable=False),
    Column("mid", Float),  # the book's mid (ticks) as the maker saw it at the fill; null: not known
    UniqueConstraint("maker_id", "venue_trade_id", name="fills_venue_trade"),
)
positions = Table(
    "positions",
    metadata,
    Column("maker_id", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("cash", Float, nullable=False),
    Column("fees", Float, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("fills", BigInteger, nullable=False),
)
risk_events = Table(
    "risk_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("maker_id", String(32), nullable=False, index=True),
    Column("ts", BigInteger, nullable=False),
    Column("rule", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("value", Float),
    Column("limit", Float),
    Column("detail", Text, nullable=False),
)
audit_log = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("actor", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("maker_id", String(32)),
    Column("details", JSON, nullable=False),
)
paper_state = Table(
    "paper_state",
    metadata,
    Column("maker_id", String(32), primary_key=True),
    Column("state", LargeBinary, nullable=False),
    Column("ts", BigInteger, nullable=False),
)
paper_fills = Table(
    "paper_fills",
    metadata,
    Column("maker_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("order_id", BigInteger, nullable=False),
    Column("exch_ts", BigInteger, nullable=False),
    Column("side", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("left", BigInteger, nullable=False),
    Column("fee", Float, nullable=False),
    Column("maker", Boolean, nullable=False),
)
api_keys = Table(  # a new table needs no migration: create_all adds it to an older database
    "api_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("role", String(8), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the key, never the key
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)
books = Table(  # a book's limits (mm book limits); a book without limits has no row
    "books",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("limits", JSON, nullable=False),  # {max_loss, max_gross, max_net, flatten}
    Column("updated_at", BigInteger, nullable=False),
)
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))


def _add_maker_instruments(conn: Connection) -> None:
    """1 -> 2: makers keep their instrument. A maker stored before has ``{}``, read as the default
    linear instrument named by its market (:func:`_instrument`)."""
    conn.exec_driver_sql("ALTER TABLE makers ADD COLUMN instrument JSON NOT NULL DEFAULT '{}'")


def _add_maker_tracebacks(conn: Connection) -> None:
    """2 -> 3: a failed maker keeps its exception's traceback; one stored before has none (``''``)."""
    conn.exec_driver_sql("ALTER TABLE makers ADD COLUMN traceback TEXT NOT NULL DEFAULT ''")


# What version 3 stored with a bare number, and what the number meant then: distances were a price,
# durations nanoseconds (since version 4 a bare distance is ticks and a bare duration milliseconds).
_V3_DISTANCES = ("spread", "min_spread", "max_spread", "threshold", "level_spacing", "markout_pause")
_V3_DURATIONS = (
    "interval",
    "vol_window",
    "flow_window",
    "markout_horizon",
    "markout_pause_for",
    "fit_window",
    "horizon",
    "max_loss_window",
    "stale_after",
    "pause_for",
)


def _with_unit(value: Any, unit: str) -> Any:
    """A bare number (or numeric text) as text with the unit it was read in; anything else as is."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        float(value)
    except ValueError:
        return value
    return f"{value}{unit}"


def _v3_settings(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        unit = "px" if key in _V3_DISTANCES else "ns" if key in _V3_DURATIONS else ""
        out[key] = _with_unit(value, unit) if unit else value
    return out


def _settings_with_units(conn: Connection) -> None:
    """3 -> 4: settings keep their meaning as bare numbers change theirs. A bare distance was a price
    and becomes ``"0.03px"``; a bare duration was nanoseconds and becomes ``"30000ns"``; the venue's
    latencies, stored in ns, become the settings ``latency_entry`` and ``latency_response``."""
    names = {"entry_latency_ns": "latency_entry", "response_latency_ns": "latency_response"}
    for row in conn.execute(select(configs.c.id, configs.c.params, configs.c.risk, configs.c.sim)).all():
        sim = {names.get(k, k): f"{v}ns" if k in names else v for k, v in (row.sim or {}).items()}
        conn.execute(
            update(configs)
            .where(configs.c.id == row.id)
            .values(
                params=_v3_settings(row.params or {}),
                risk=None if row.risk is None else _v3_settings(row.risk),
                sim=sim,
            )
        )


def _add_venue_trade_ids(conn: Connection) -> None:
    """4 -> 5: every fill keeps the venue's trade id, one fill per trade; the paper venue's fills
    stored before are named by their sequence number, as the paper venue names them since."""
    conn.exec_driver_sql("ALTER TABLE fills ADD COLUMN venue_trade_id VARCHAR(64) NOT NULL DEFAULT ''")
    conn.exec_driver_sql("UPDATE fills SET venue_trade_id = CAST(seq AS VARCHAR(64))")
    conn.exec_driver_sql("CREATE UNIQUE INDEX fills_venue_trade ON fills (maker_id, venue_trade_id)")


def _add_fill_mids(conn: Connection) -> None:
    """5 -> 6: every fill keeps the book's mid it was booked at (spread capture); older ones have none."""
    conn.exec_driver_sql("ALTER TABLE fills ADD COLUMN mid FLOAT")


def _add_maker_books(conn: Connection) -> None:
    """6 -> 7: a maker may belong to a book; one stored before belongs to none (null). A column
    already there (a database rolled back by hand, keeping it) is kept."""
    if "book" not in {c["name"] for c in inspect(conn).get_columns("makers")}:
        conn.exec_driver_sql("ALTER TABLE makers ADD COLUMN book VARCHAR(32)")


# MIGRATIONS[n - 1] takes a database from version n to n + 1: append one with every schema change
MIGRATIONS: list[Callable[[Connection], None]] = [
    _add_maker_instruments,
    _add_maker_tracebacks,
    _settings_with_units,
    _add_venue_trade_ids,
    _add_fill_mids,
    _add_maker_books,
]
SCHEMA_VERSION = len(MIGRATIONS) + 1


@dataclass
class _OrderWrite:
    """A batch of order states on its way to the database, with what it changes in the store's
    bookkeeping once written."""

    rows: dict[tuple[str, int], OrderRecord]  # (maker id, order id) -> latest state
    inserts: list[tuple]
    updates: list[tuple]
    opened: dict[tuple[str, int], int]  # open orders -> row id
    closed: list[tuple[str, int]]
    next_row_id: int


@dataclass(frozen=True)
class MakerRecord:
    maker_id: str
    venue: str
    market: str
    data_path: str
    speed: float
    strategy: str
    status: str
    reason: str
    created_at: int
    params: dict[str, Any]
    risk: dict[str, Any] | None
    sim: dict[str, Any]
    config_version: int
    instrument: Instrument
    traceback: str  # of the exception that failed the maker; "" if none
    book: str | None = None  # the book it belongs to (mm start --book)


class OrderRecord(NamedTuple):
    """One order's latest state; the fields in the ``orders`` table's column order."""

    order_id: int
    side: int
    price: int
    size: int
    left: int
    status: str
    ts: int


@dataclass(frozen=True)
class FillRecord:
    seq: int
    order_id: int
    exch_ts: int
    side: int
    price: int
    qty: int
    fee: float
    maker: bool
    position: int
    cash: float
    venue_trade_id: str
    mid: float | None = None  # the book's mid (ticks) at the fill, when known


@dataclass(frozen=True)
class PositionRecord:
    position: int
    cash: float
    fees: float
    last_seq: int
    fills: int


def _instrument(row: Any) -> Instrument:
    """A maker's stored instrument. One stored before instruments were (``{}`` after migration 1 -> 2,
    or null) is the default linear instrument, named by the maker's market: status and fills still
    read, in the default tick and lot."""
    return Instrument.model_validate({"symbol": row.market, **(row.instrument or {})})


def _order_record(r: Any) -> OrderRecord:
    return OrderRecord(r.order_id, r.side, r.price, r.size, r.left, r.status, r.ts)


def default_db_url() -> str:
    """SQLite under the user's data directory (``QUOTEWISE_HOME`` moves it, for tests)."""
    from quotewise.live.paths import data_dir

    return f"sqlite:///{data_dir() / 'quotewise.db'}"


def db_url(path_or_url: str) -> str:
    """A database URL from what the user typed: a URL as it is, a plain path as a SQLite file."""
    if "://" in path_or_url:
        return path_or_url
    return f"sqlite:///{Path(path_or_url).expanduser().resolve()}"


def in_memory(url: str) -> bool:
    """An in-memory SQLite database: it lives in one connection of one process."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


class _DriverStatement:
    """A statement compiled once for the database in use, run with plain tuples through the driver's
    executemany (a dialect with named parameters gets them as dicts)."""

    def __init__(self, engine: Engine, stmt: Any, keys: tuple[str, ...]) -> None:
        compiled = stmt.compile(dialect=engine.dialect, column_keys=list(keys))
        self.sql = str(compiled)
        self.keys = keys
        self.order: list[int] | None = None  # None: named parameters
        if compiled.positional:
            self.order = [keys.index(k) for k in compiled.positiontup]
        self.as_given = self.order == list(range(len(keys)))

    def run(self, conn: Any, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.order is None:
            params: list = [dict(zip(self.keys, row, strict=True)) for row in rows]
        elif self.as_given:
            params = rows
        else:
            params = [tuple(row[i] for i in self.order) for row in rows]
        conn.exec_driver_sql(self.sql, params)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Store:
    """All reads and writes of the live engine's state."""

    def __init__(self, url: str, row_lane: tuple[int, int] = (0, 1)) -> None:
        """``row_lane`` ``(k, n)``: the order rows this store inserts take the ids that leave ``k`` over
        ``n``, so that ``n`` engine workers (:mod:`quotewise.live.workers`) write one database without
        ever taking the same id (each knows only the ids it gave)."""
        self.url = url
        self._lane, self._lanes = row_lane
        if not 0 <= self._lane < self._lanes:
            raise ValueError(f"row lane {row_lane}: k in 0..n-1")
        self._order_queue: dict[tuple[str, int], OrderRecord] = {}
        try:
            self.engine: Engine = create_engine(url)
        except (ArgumentError, ImportError) as exc:
            raise ConfigError(f"cannot use database {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            database = self.engine.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._upgrade_schema()
        except DBAPIError as exc:
            raise ConfigError(f"cannot open database {url!r}: {exc.orig}") from exc
        self._insert_orders = _DriverStatement(self.engine, insert(orders), ("id", *ORDER_COLUMNS))
        changing = ORDER_COLUMNS[2:]
        by_id = update(orders).where(orders.c.id == bindparam("row_id"))
        self._update_orders = _DriverStatement(self.engine, by_id, (*changing, "row_id"))
        self._open_rows = self._load_open_rows()  # (maker_id, order_id) -> row id, for open orders
        with self.engine.connect() as conn:
            after = (conn.execute(select(func.max(orders.c.id))).scalar() or 0) + 1
        self._next_row_id = after + (self._lane - after) % self._lanes
        # the periodic order flush writes in this thread (flush_orders_behind); an in-memory SQLite
        # database is one connection on one thread, so there the loop writes itself
        self.in_memory = in_memory(url)
        self._writer = None if self.in_memory else ThreadPoolExecutor(1, thread_name_prefix="order-writer")
        self._writing: tuple[_OrderWrite, Future] | None = None

    def close(self) -> None:
        """Finish the writer's batch (its error is raised, after the database is released)."""
        try:
            self._settle_write()
        finally:
            if self._writer is not None:
                self._writer.shutdown()
            self.engine.dispose()

    # -- the schema and its versions ------------------------------------------------------------------
    def _upgrade_schema(self) -> None:
        """Bring the database to :data:`SCHEMA_VERSION`: the migrations it lacks, in order, then the
        tables it lacks (create_all adds tables, never alters one)."""
        version = self._schema_version()
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"database {self.url!r} has schema version {version}, newer than this Quotewise knows "
                f"({SCHEMA_VERSION}): upgrade Quotewise"
            )
        for n in range(version, SCHEMA_VERSION):
            with self._schema_transaction() as conn:
                MIGRATIONS[n - 1](conn)
                conn.execute(update(schema_version).values(version=n + 1))
        metadata.create_all(self.engine)

    def _schema_version(self) -> int:
        """The stored version; a database from before versioning (or a new one) is stamped first."""
        names = set(inspect(self.engine).get_table_names())
        if schema_version.name in names:
            with self.engine.connect() as conn:
                stored = conn.execute(select(func.max(schema_version.c.version))).scalar()
            if stored is not None:
                return stored
        version = self._unversioned(names)
        with self._schema_transaction() as conn:
            schema_version.create(conn, checkfirst=True)
            conn.execute(insert(schema_version).values(version=version))
        return version

    def _unversioned(self, names: set[str]) -> int:
        """The version of a database without one, from its columns: 1 without ``makers.instrument``, 2
        with it (the last layout before versioning), the current one when it holds none of our tables.
        An ``orders`` table without row ids predates every migration and is refused."""
        if not names & (set(metadata.tables) - {schema_version.name}):
            return SCHEMA_VERSION
        tables = inspect(self.engine)
        if "orders" in names and "id" not in {c["name"] for c in tables.get_columns("orders")}:
            raise ConfigError(
                f"database {self.url!r} has an orders table from an earlier Quotewise (no id column), "
                "too old to migrate; use a new --db"
            )
        if "makers" in names and "instrument" not in {c["name"] for c in tables.get_columns("makers")}:
            return 1
        return 2

    @contextmanager
    def _schema_transaction(self) -> Iterator[Connection]:
        """One transaction for a schema change and its version: SQLite's Python driver opens none
        before DDL (an ALTER would commit on its own), so it gets an explicit BEGIN."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN")
            yield conn

    # -- makers and configs -----------------------------------------------------------------------
    def add_maker(
        self,
        maker_id: str,
        venue: str,
        market: str,
        data_path: str,
        speed: float,
        strategy: str,
        params: dict[str, Any],
        risk: dict[str, Any] | None,
        sim: dict[str, Any],
        instrument: dict[str, Any],
        actor: str = "engine",
        book: str | None = None,
    ) -> None:
        """A new running maker, its first config and a flat position; ``instrument`` is its
        ``Instrument.model_dump()``; ``book`` the book it belongs to, if any."""
        now = time.time_ns()
        with self.engine.begin() as conn:
            conn.execute(
                insert(makers).values(
                    maker_id=maker_id,
                    venue=venue,
                    market=market,
                    data_path=data_path,
                    speed=speed,
                    strategy=strategy,
                    status="running",
                    reason="",
                    created_at=now,
                    instrument=instrument,
                    book=book,
                )
            )
            conn.execute(
                insert(configs).values(
                    maker_id=maker_id, version=1, params=params, risk=risk, sim=sim, actor=actor, ts=now
                )
            )
            conn.execute(
                insert(positions).values(
                    maker_id=maker_id, position=0, cash=0.0, fees=0.0, last_seq=0, fills=0
                )
            )

    def add_config(
        self, maker_id: str, params: dict[str, Any], risk: dict[str, Any] | None, actor: str
    ) -> int:
        """A new config version, now the current one."""
        with self.engine.begin() as conn:
            last = conn.execute(
                select(configs).where(configs.c.maker_id == maker_id).order_by(configs.c.version.desc())
            ).first()
            if last is None:
                raise ConfigError(f"no maker {maker_id!r} in the store")
            version = last.version + 1
            conn.execute(
                insert(configs).values(
                    maker_id=maker_id,
                    version=version,
                    params=params,
                    risk=risk,
                    sim=last.sim,
                    actor=actor,
                    ts=time.time_ns(),
                )
            )
        return version

    def set_status(self, maker_id: str, status: str, reason: str = "", traceback: str = "") -> None:
        """``traceback``: of the exception that failed the maker (``mm status ID --traceback``)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(makers)
                .where(makers.c.maker_id == maker_id)
                .values(status=status, reason=reason, traceback=traceback)
            )

    def maker(self, maker_id: str) -> MakerRecord | None:
        found = self.makers(maker_id=maker_id)
        return found[0] if found else None

    def makers(
        self, status: str | None = None, maker_id: str | None = None, book: str | None = None
    ) -> list[MakerRecord]:
        # each maker with its latest config in one query, not a query per maker for its config
        latest = (
            select(configs.c.maker_id, func.max(configs.c.version).label("latest"))
            .group_by(configs.c.maker_id)
            .subquery()
        )
        config = and_(configs.c.maker_id == latest.c.maker_id, configs.c.version == latest.c.latest)
        query = (
            select(
                makers,
                configs.c.params,
                configs.c.risk,
                configs.c.sim,
                configs.c.version.label("config_version"),
            )
            .outerjoin(latest, latest.c.maker_id == makers.c.maker_id)
            .outerjoin(configs, config)
            .order_by(makers.c.created_at)
        )
        if status is not None:
            query = query.where(makers.c.status == status)
        if maker_id is not None:
            query = query.where(makers.c.maker_id == maker_id)
        if book is not None:
            query = query.where(makers.c.book == book)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            assert row.config_version is not None, f"maker {row.maker_id} has no config"
            out.append(
                MakerRecord(
                    maker_id=row.maker_id,
                    venue=row.venue,
                    market=row.market,
                    data_path=row.data_path,
                    speed=row.speed,
                    strategy=row.strategy,
                    status=row.status,
                    reason=row.reason,
                    created_at=row.created_at,
                    params=dict(row.params),
                    risk=dict(row.risk) if row.risk is not None else None,
                    sim=dict(row.sim),
                    config_version=row.config_version,
                    instrument=_instrument(row),
                    traceback=row.traceback,
                    book=row.book,
                )
            )
        return out

    # -- books ------------------------------------------------------------------------------------------
    def set_book_limits(self, name: str, limits: dict[str, Any]) -> None:
        """A book's limits, replacing any it had."""
        now = time.time_ns()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(books).where(books.c.name == name).values(limits=limits, updated_at=now)
            )
            if done.rowcount == 0:
                conn.execute(insert(books).values(name=name, limits=limits, updated_at=now))

    def book_limits(self) -> dict[str, dict[str, Any]]:
        """Every book's limits, by name."""
        with self.engine.connect() as conn:
            return {r.name: dict(r.limits) for r in conn.execute(select(books)).all()}

    def book_names(self) -> list[str]:
        """Every book a maker belongs to or that has limits, sorted."""
        with self.engine.connect() as conn:
            held = conn.execute(select(makers.c.book).where(makers.c.book.is_not(None)).distinct())
            named = {r.book for r in held} | {r.name for r in conn.execute(select(books.c.name))}
        return sorted(named)

    # -- orders -------------------------------------------------------------------------------------
    def queue_orders(self, maker_id: str, rows: list[OrderRecord]) -> None:
        """Order states to write at the next :meth:`flush_orders` (the engine flushes every 100 ms and
        at every stop). Order rows may lag by that much: recovery checks our open orders against the
        venue's, not against these rows; fills never wait (:meth:`record_fill`)."""
        for r in rows:
            self._order_queue[(maker_id, r.order_id)] = r

    @property
    def queued_orders(self) -> int:
        """Order states waiting for a write (a failed write's are back here)."""
        return len(self._order_queue)

    def flush_orders(self) -> int:
        """Write every queued order state now, all makers in one transaction (after the write under
        way, if any); returns how many. A failed write puts its states back in the queue."""
        self._settle_write()
        batch = self._prepare_orders(self._take_order_queue())
        self._write_now(batch)
        return len(batch.rows)

    def flush_orders_behind(self) -> int:
        """Write every queued order state in the store's writer thread (the engine's periodic flush):
        the database's work leaves the event loop. A write still under way is left to finish; what
        is queued meanwhile goes with the next call. Returns how many states went to the writer; an
        earlier write's error is raised here, its states back in the queue."""
        if self._writing is not None:
            if not self._writing[1].done():
                return 0
            self._settle_write()
        if not self._order_queue:
            return 0
        batch = self._prepare_orders(self._take_order_queue())
        if self._writer is None:  # an in-memory database lives in one connection, on one thread
            self._write_now(batch)
        else:
            self._writing = (batch, self._writer.submit(self._commit_orders, batch))
        return len(batch.rows)

    def upsert_orders(self, maker_id: str, rows: list[OrderRecord]) -> None:
        """Write the latest state of each order now (one transaction)."""
        self._settle_write()
        self._write_now(self._prepare_orders({(maker_id, r.order_id): r for r in rows}))

    def _take_order_queue(self) -> dict[tuple[str, int], OrderRecord]:
        queued, self._order_queue = self._order_queue, {}
        return queued

    def _prepare_orders(self, states: dict[tuple[str, int], OrderRecord]) -> _OrderWrite:
        """New orders to append, open ones to update by row id: two statements for the whole batch,
        handed to the driver as they are (at tens of thousands of order states a second, building
        SQLAlchemy's parameters row by row would cost the event loop more than the database does).
        Nothing changes here until :meth:`_apply_orders`."""
        batch = _OrderWrite(states, [], [], {}, [], self._next_row_id)
        for key, record in states.items():
            row = (*key, *record[1:])
            row_id = self._open_rows.get(key)
            if row_id is None:
                row_id, batch.next_row_id = batch.next_row_id, batch.next_row_id + self._lanes
                batch.inserts.append((row_id, *row))
            else:
                batch.updates.append((*row[2:], row_id))
            if row[ORDER_STATUS] in TERMINAL:
                batch.closed.append(key)
            else:
                batch.opened[key] = row_id
        return batch

    def _write_now(self, batch: _OrderWrite) -> None:
        self._take_outcome(batch, lambda: self._commit_orders(batch))

    def _take_outcome(self, batch: _OrderWrite, written: Callable[[], object]) -> None:
        """``written()`` returns once the batch is in the database: then its bookkeeping is applied; if
        it raises, the batch's states go back to the queue and the error on."""
        try:
            written()
        except Exception:
            self._requeue_orders(batch)
            raise
        self._apply_orders(batch)

    def _commit_orders(self, batch: _OrderWrite) -> None:
        if batch.inserts or batch.updates:
            with self.engine.begin() as conn:
                self._insert_orders.run(conn, batch.inserts)
                self._update_orders.run(conn, batch.updates)

    def _apply_orders(self, batch: _OrderWrite) -> None:
        """The batch is in the database: its row ids are taken, its open orders known by row id."""
        self._next_row_id = batch.next_row_id
        self._open_rows.update(batch.opened)
        for key in batch.closed:
            self._open_rows.pop(key, None)

    def _requeue_orders(self, batch: _OrderWrite) -> None:
        """A failed write's states go back to the queue, behind any newer state of the same order."""
        for key, record in batch.rows.items():
            self._order_queue.setdefault(key, record)

    def _settle_write(self) -> None:
        """Wait for the writer's batch, if any, and take its outcome (its error is raised here)."""
        if self._writing is None:
            return
        (batch, done), self._writing = self._writing, None
        self._take_outcome(batch, done.result)

    def _load_open_rows(self) -> dict[tuple[str, int], int]:
        query = select(orders.c.id, orders.c.maker_id, orders.c.order_id).where(OPEN_ORDERS)
        with self.engine.connect() as conn:
            return {(r.maker_id, r.order_id): r.id for r in conn.execute(query)}

    def orders(self, maker_id: str, open_only: bool = False) -> list[OrderRecord]:
        """One maker's orders (a scan of the table: for tools and tests, not the engine's hot path)."""
        query = select(orders).where(orders.c.maker_id == maker_id).order_by(orders.c.order_id)
        if open_only:
            query = query.where(OPEN_ORDERS)
        with self.engine.connect() as conn:
            return [_order_record(r) for r in conn.execute(query).all()]

    def open_orders(self) -> dict[str, list[OrderRecord]]:
        """Every maker's open orders, in one scan (what a restart reconciles with the venues)."""
        query = select(orders).where(OPEN_ORDERS).order_by(orders.c.maker_id, orders.c.order_id)
        out: dict[str, list[OrderRecord]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query).all():
                out.setdefault(r.maker_id, []).append(_order_record(r))
        return out

    # -- fills and positions ---------------------------------------------------------------------------
    def record_fill(
        self,
        maker_id: str,
        fill: VenueFill,
        position: int,
        cash: float,
        fees: float,
        mid: float | None = None,
    ) -> bool:
        """The fill and the position it leaves, in one transaction; False (nothing written) when this
        fill's sequence number or its venue trade id is already stored (a fill without a trade id is
        named by its sequence number, as the paper venue names them). Fills are recorded in sequence
        order."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(fills).values(
                        maker_id=maker_id,
                        seq=fill.seq,
                        order_id=fill.order_id,
                        exch_ts=fill.exch_ts,
                        side=fill.side,
                        price=fill.price,
                        qty=fill.qty,
                        fee=fill.fee,
                        maker=fill.maker,
                        position=position,
                        cash=cash,
                        venue_trade_id=fill.trade_id or str(fill.seq),
                        mid=mid,
                    )
                )
                conn.execute(
                    update(positions)
                    .where(positions.c.maker_id == maker_id)
                    .values(
                        position=position,
                        cash=cash,
                        fees=fees,
                        last_seq=fill.seq,
                        fills=positions.c.fills + 1,
                    )
                )
        except IntegrityError:
            return False
        return True

    def position(self, maker_id: str) -> PositionRecord | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(positions).where(positions.c.maker_id == maker_id)).first()
        return None if r is None else PositionRecord(r.position, r.cash, r.fees, r.last_seq, r.fills)

    def fills(self, maker_id: str) -> list[FillRecord]:
        query = select(fills).where(fills.c.maker_id == maker_id).order_by(fills.c.seq)
        with self.engine.connect() as conn:
            return [
                FillRecord(
                    r.seq,
                    r.order_id,
                    r.exch_ts,
                    r.side,
                    r.price,
                    r.qty,
                    r.fee,
                    r.maker,
                    r.position,
                    r.cash,
                    r.venue_trade_id,
                    r.mid,
                )
                for r in conn.execute(query).all()
            ]

    def fill_marks(self, maker_id: str) -> tuple[set[str], int | None]:
        """The venue trade ids of a maker's stored fills, and the exchange time (ns) of the latest:
        what a real venue's recovery needs to fetch what came after and skip what is stored."""
        query = select(fills.c.venue_trade_id, fills.c.exch_ts).where(fills.c.maker_id == maker_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.venue_trade_id for r in rows}, max((r.exch_ts for r in rows), default=None)

    def last_order_id(self, maker_id: str) -> int:
        """The highest order id a maker has used (0 for none): new ids continue after it."""
        query = select(func.max(orders.c.order_id)).where(orders.c.maker_id == maker_id)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar() or 0

    # -- risk and audit ----------------------------------------------------------------------------------
    def add_risk_events(self, maker_id: str, events: list[Any]) -> None:
        """Risk decisions (``quotewise.risk.RiskEvent``) in one transaction."""
        if not events:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(risk_events),
                [
                    {
                        "maker_id": maker_id,
                        "ts": e.ts,
                        "rule": e.rule,
                        "action": e.action,
                        "value": e.value,
                        "limit": e.limit,
                        "detail": e.detail,
                    }
                    for e in events
                ],
            )

    def risk_events(self, maker_id: str) -> list[dict[str, Any]]:
        query = select(risk_events).where(risk_events.c.maker_id == maker_id).order_by(risk_events.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    def audit(self, actor: str, action: str, maker_id: str | None, details: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    ts=time.time_ns(), actor=actor, action=action, maker_id=maker_id, details=details
                )
            )

    def maker_owner(self, maker_id: str) -> str | None:
        """Who started the maker (the actor of its first configuration)."""
        query = select(configs.c.actor).where(configs.c.maker_id == maker_id).order_by(configs.c.version)
        with self.engine.connect() as conn:
            return conn.execute(query.limit(1)).scalar()

    # -- API keys ---------------------------------------------------------------------------------------
    def add_api_key(self, name: str, role: str) -> str:
        """A new key named ``name`` with ``role``; the key itself is returned once and stored hashed."""
        from quotewise.live.auth import check_name, check_role, key_hash, new_key

        key = new_key()
        row = {"name": check_name(name), "role": check_role(role), "key_hash": key_hash(key)}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(api_keys).values(**row, created_at=time.time_ns()))
        except IntegrityError:
            raise ConfigError(f"there is a key named {name} already (mm keys list)") from None
        return key

    def api_key_role(self, digest: str) -> tuple[str, str] | None:
        """``(name, role)`` of the live key whose hash is ``digest``; None if none (or revoked)."""
        query = select(api_keys.c.name, api_keys.c.role).where(
            api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (row.name, row.role)

    def api_keys(self) -> list[dict[str, Any]]:
        """Every key's name, role and dates (never the hash)."""
        cols = (api_keys.c.name, api_keys.c.role, api_keys.c.created_at, api_keys.c.revoked_at)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(api_keys.c.created_at))]

    def revoke_api_key(self, name: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time_ns())
            )
        if done.rowcount == 0:
            raise ConfigError(f"no live key named {name} (mm keys list)")

    def audit_rows(self, maker_id: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id)
        if maker_id is not None:
            query = query.where(audit_log.c.maker_id == maker_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query).all()]

    # -- the paper venue's own side ------------------------------------------------------------------------
    def save_paper_state(self, maker_id: str, state: bytes, new_fills: list[VenueFill]) -> None:
        """The venue's state and the fills it made since the last save, in one transaction."""
        now = time.time_ns()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(paper_state).where(paper_state.c.maker_id == maker_id).values(state=state, ts=now)
            )
            if done.rowcount == 0:
                conn.execute(insert(paper_state).values(maker_id=maker_id, state=state, ts=now))
            if new_fills:
                conn.execute(
                    insert(paper_fills),
                    [{"maker_id": maker_id, **f.__dict__} for f in new_fills],
                )

    def load_paper_state(self, maker_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(paper_state.c.state).where(paper_state.c.maker_id == maker_id)).first()
        return None if r is None else bytes(r.state)

    def paper_fills_since(self, maker_id: str, seq: int) -> list[VenueFill]:
        query = (
            select(paper_fills)
            .where(paper_fills.c.maker_id == maker_id, paper_fills.c.seq > seq)
            .order_by(paper_fills.c.seq)
        )
        with self.engine.connect() as conn:
            return [
                VenueFill(r.seq, r.order_id, r.exch_ts, r.side, r.price, r.qty, r.left, r.fee, r.maker)
                for r in conn.execute(query).all()
            ]
