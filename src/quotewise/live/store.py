"""Persistent state of the live engine: SQLAlchemy Core over any database URL (SQLite by default).

Every method commits before it returns, so whatever the engine acts on is already on disk: a fill
is stored before the decision that depends on it. SQLite runs in WAL mode with
``synchronous=NORMAL``: a committed row survives the process being killed.

Two groups of tables: ours (``makers``, ``configs``, ``orders``, ``fills``, ``positions``,
``risk_events``, ``audit``) and the paper venue's own (``paper_state``, ``paper_fills``): what "the
exchange" knows, kept apart from our records so that recovery can compare the two.
"""

from __future__ import annotations

import time
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
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from quotewise.errors import ConfigError
from quotewise.live.venue import VenueFill

TERMINAL = ("filled", "cancelled", "rejected", "closed")
ORDER_COLUMNS = ("maker_id", "order_id", "side", "price", "size", "left", "status", "ts")

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
    Column("maker_id", String(32), primary_key=True),
    Column("order_id", BigInteger, primary_key=True),
    Column("side", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("left", BigInteger, nullable=False),
    Column("status", String(24), nullable=False),
    Column("ts", BigInteger, nullable=False),
)
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


@dataclass(frozen=True)
class PositionRecord:
    position: int
    cash: float
    fees: float
    last_seq: int
    fills: int


def default_db_url() -> str:
    """SQLite under the user's data directory (``QUOTEWISE_HOME`` moves it, for tests)."""
    from quotewise.live.paths import data_dir

    return f"sqlite:///{data_dir() / 'quotewise.db'}"


def db_url(path_or_url: str) -> str:
    """A database URL from what the user typed: a URL as it is, a plain path as a SQLite file."""
    if "://" in path_or_url:
        return path_or_url
    return f"sqlite:///{Path(path_or_url).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Store:
    """All reads and writes of the live engine's state."""

    def __init__(self, url: str) -> None:
        self.url = url
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
            metadata.create_all(self.engine)
        except OperationalError as exc:
            raise ConfigError(f"cannot open database {url!r}: {exc.orig}") from exc
        compiled = self._order_upsert().compile(dialect=self.engine.dialect)
        if compiled.positional and tuple(compiled.positiontup) != ORDER_COLUMNS:
            raise ConfigError(f"unexpected parameter order in the order upsert: {compiled.positiontup}")
        self._upsert_sql = str(compiled)
        self._upsert_positional = compiled.positional

    def close(self) -> None:
        self.engine.dispose()

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
        actor: str = "engine",
    ) -> None:
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

    def set_status(self, maker_id: str, status: str, reason: str = "") -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(makers).where(makers.c.maker_id == maker_id).values(status=status, reason=reason)
            )

    def maker(self, maker_id: str) -> MakerRecord | None:
        found = self.makers(maker_id=maker_id)
        return found[0] if found else None

    def makers(self, status: str | None = None, maker_id: str | None = None) -> list[MakerRecord]:
        query = select(makers).order_by(makers.c.created_at)
        if status is not None:
            query = query.where(makers.c.status == status)
        if maker_id is not None:
            query = query.where(makers.c.maker_id == maker_id)
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(query).all():
                config = conn.execute(
                    select(configs)
                    .where(configs.c.maker_id == row.maker_id)
                    .order_by(configs.c.version.desc())
                ).first()
                assert config is not None, f"maker {row.maker_id} has no config"
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
                        params=dict(config.params),
                        risk=dict(config.risk) if config.risk is not None else None,
                        sim=dict(config.sim),
                        config_version=config.version,
                    )
                )
        return out

    # -- orders -------------------------------------------------------------------------------------
    def queue_orders(self, maker_id: str, rows: list[OrderRecord]) -> None:
        """Order states to write at the next :meth:`flush_orders` (the engine flushes every 100 ms and
        at every stop). Order rows may lag by that much: recovery checks our open orders against the
        venue's, not against these rows; fills never wait (:meth:`record_fill`)."""
        for r in rows:
            self._order_queue[(maker_id, r.order_id)] = r

    def flush_orders(self) -> int:
        """Write every queued order state, all makers in one transaction; returns how many."""
        queued, self._order_queue = self._order_queue, {}
        self._write_orders([(maker_id, *r) for (maker_id, _), r in queued.items()])
        return len(queued)

    def upsert_orders(self, maker_id: str, rows: list[OrderRecord]) -> None:
        """Write the latest state of each order now (one transaction)."""
        self._write_orders([(maker_id, *r) for r in rows])

    def _write_orders(self, rows: list[tuple]) -> None:
        """One statement for the whole batch, handed to the driver as it is: at tens of thousands of
        order states a second, building SQLAlchemy's parameters per row would cost the event loop
        three times what the database does."""
        if not rows:
            return
        if not self._upsert_positional:
            rows = [dict(zip(ORDER_COLUMNS, row, strict=True)) for row in rows]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._upsert_sql, rows)

    def _order_upsert(self) -> Any:
        """INSERT ... ON CONFLICT DO UPDATE for SQLite and PostgreSQL (both speak it)."""
        name = self.engine.dialect.name
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        elif name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            raise ConfigError(f"database {name!r} is not supported; use SQLite or PostgreSQL")
        stmt = dialect_insert(orders)
        changing = ("side", "price", "size", "left", "status", "ts")
        return stmt.on_conflict_do_update(
            index_elements=["maker_id", "order_id"], set_={c: stmt.excluded[c] for c in changing}
        )

    def orders(self, maker_id: str, open_only: bool = False) -> list[OrderRecord]:
        query = select(orders).where(orders.c.maker_id == maker_id).order_by(orders.c.order_id)
        if open_only:
            query = query.where(orders.c.status.not_in(TERMINAL))
        with self.engine.connect() as conn:
            return [
                OrderRecord(r.order_id, r.side, r.price, r.size, r.left, r.status, r.ts)
                for r in conn.execute(query).all()
            ]

    # -- fills and positions ---------------------------------------------------------------------------
    def record_fill(self, maker_id: str, fill: VenueFill, position: int, cash: float, fees: float) -> bool:
        """The fill and the position it leaves, in one transaction; False (nothing written) when this
        fill's sequence number is already stored. Fills are recorded in sequence order."""
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
                    r.seq, r.order_id, r.exch_ts, r.side, r.price, r.qty, r.fee, r.maker, r.position, r.cash
                )
                for r in conn.execute(query).all()
            ]

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
