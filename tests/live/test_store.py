"""The live engine's store: every write committed, fills never stored twice."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from quotewise.errors import ConfigError
from quotewise.live.store import SCHEMA_VERSION, OrderRecord, Store, db_url
from quotewise.live.venue import VenueFill
from quotewise.model.instrument import Instrument
from quotewise.risk import RiskEvent

BTC = Instrument(symbol="BTCUSDT", venue="binance", tick_size=0.1, lot_size=0.001, price_band=(0.95, 1.05))


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "state.db")))
    s.add_maker(
        "mm-1",
        "paper",
        "BTCUSDT",
        "synthetic",
        2.0,
        "symmetric",
        {"spread": "1tick"},
        None,
        {"q": 1},
        BTC.model_dump(),
    )
    yield s
    s.close()


def fill(seq: int, qty: int = 1) -> VenueFill:
    return VenueFill(
        seq, order_id=7, exch_ts=1000 + seq, side=1, price=100, qty=qty, left=0, fee=-0.01, maker=True
    )


def test_maker_and_config_versions_round_trip(store):
    rec = store.maker("mm-1")
    assert rec is not None and rec.status == "running" and rec.config_version == 1
    assert rec.params == {"spread": "1tick"} and rec.sim == {"q": 1} and rec.speed == 2.0
    assert rec.instrument == BTC  # the units of a maker that is not running, from the store alone
    assert store.add_config("mm-1", {"spread": "3ticks"}, {"max_pos": 1.0}, actor="cli") == 2
    rec = store.maker("mm-1")
    assert rec.params == {"spread": "3ticks"} and rec.risk == {"max_pos": 1.0} and rec.config_version == 2
    store.set_status("mm-1", "stopped", "operator")
    assert store.makers(status="running") == [] and store.maker("mm-1").reason == "operator"
    assert store.maker("nope") is None


def test_a_fill_is_stored_once_with_the_position_it_leaves(store):
    assert store.record_fill("mm-1", fill(1), position=1, cash=-1.0, fees=-0.01)
    assert not store.record_fill("mm-1", fill(1), position=2, cash=-2.0, fees=-0.02)  # the same seq again
    assert store.record_fill("mm-1", fill(2), position=2, cash=-2.0, fees=-0.02)
    pos = store.position("mm-1")
    assert (pos.position, pos.cash, pos.last_seq, pos.fills) == (2, -2.0, 2, 2)
    assert [f.seq for f in store.fills("mm-1")] == [1, 2]


def test_orders_upserted_and_open_ones_listed(store):
    store.upsert_orders(
        "mm-1", [OrderRecord(1, 1, 99, 2, 2, "submitted", 5), OrderRecord(2, -1, 101, 2, 2, "working", 5)]
    )
    store.upsert_orders("mm-1", [OrderRecord(1, 1, 99, 2, 0, "filled", 9)])
    assert [(o.order_id, o.status) for o in store.orders("mm-1")] == [(1, "filled"), (2, "working")]
    assert [o.order_id for o in store.orders("mm-1", open_only=True)] == [2]


def test_a_second_store_on_the_same_file_sees_committed_rows(store, tmp_path):
    store.record_fill("mm-1", fill(1), 1, -1.0, -0.01)
    store.audit("cli", "start", "mm-1", {"spread": "1tick"})
    store.add_risk_events("mm-1", [RiskEvent(5, "max_pos", "trim", 2.0, 1.0, "bid 2 -> 1")])
    store.save_paper_state("mm-1", b"state", [fill(1), fill(2)])
    other = Store(db_url(str(tmp_path / "state.db")))
    assert [f.seq for f in other.fills("mm-1")] == [1]
    assert other.audit_rows("mm-1")[0]["action"] == "start"
    assert other.risk_events("mm-1")[0]["rule"] == "max_pos"
    assert other.load_paper_state("mm-1") == b"state"
    assert [f.seq for f in other.paper_fills_since("mm-1", 1)] == [2]
    other.close()


def test_bad_database_url_is_a_clear_error():
    with pytest.raises(ConfigError, match="nosuchdb"):
        Store("nosuchdb://x")


def test_queued_order_states_of_every_maker_are_written_in_one_flush(store):
    store.queue_orders("mm-1", [OrderRecord(1, 1, 99, 2, 2, "submitted", 5)])
    store.queue_orders("mm-2", [OrderRecord(1, -1, 101, 3, 3, "submitted", 5)])
    store.queue_orders("mm-1", [OrderRecord(1, 1, 99, 2, 2, "working", 6)])  # the latest state wins
    assert store.flush_orders() == 2
    assert [(o.order_id, o.status, o.ts) for o in store.orders("mm-1")] == [(1, "working", 6)]
    assert [(o.side, o.price, o.left) for o in store.orders("mm-2")] == [(-1, 101, 3)]
    assert store.flush_orders() == 0


def test_order_states_written_behind_the_loop_stay_in_order_and_a_failed_write_loses_none(store, tmp_path):
    store.queue_orders("mm-1", [OrderRecord(1, 1, 99, 2, 2, "submitted", 5)])
    assert store.flush_orders_behind() == 1  # to the writer thread
    store.queue_orders("mm-1", [OrderRecord(1, 1, 99, 2, 0, "filled", 9)])
    assert store.flush_orders() == 1  # after the writer's batch: the newer state stays
    assert [(o.order_id, o.status, o.ts) for o in store.orders("mm-1")] == [(1, "filled", 9)]

    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON orders WHEN NEW.status = 'doomed' "
        "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
    )
    db.commit()
    store.queue_orders("mm-1", [OrderRecord(2, -1, 101, 1, 1, "doomed", 10)])
    store.queue_orders("mm-1", [OrderRecord(3, -1, 102, 1, 1, "doomed", 10)])
    assert store.flush_orders_behind() == 2
    store.queue_orders("mm-1", [OrderRecord(3, -1, 102, 1, 1, "working", 11)])  # newer than the batch
    with pytest.raises(Exception, match="the disk is full"):
        store.flush_orders()
    db.execute("DROP TRIGGER refuse")
    db.commit()
    db.close()
    assert store.flush_orders() == 2  # the failed batch's states are back, the newer one kept
    assert [(o.order_id, o.status) for o in store.orders("mm-1")] == [
        (1, "filled"),
        (2, "doomed"),
        (3, "working"),
    ]


def test_an_in_memory_store_writes_order_states_in_the_loop():
    store = Store("sqlite://")
    store.queue_orders("mm-1", [OrderRecord(1, 1, 99, 2, 2, "submitted", 5)])
    assert store.flush_orders_behind() == 1
    assert [o.status for o in store.orders("mm-1")] == ["submitted"]
    store.close()


def test_a_restarted_store_updates_the_open_orders_it_finds_and_lists_them_per_maker(store, tmp_path):
    store.upsert_orders(
        "mm-1", [OrderRecord(1, 1, 99, 2, 2, "working", 5), OrderRecord(2, -1, 101, 2, 2, "working", 5)]
    )
    store.upsert_orders("mm-2", [OrderRecord(1, 1, 50, 1, 1, "cancelled", 5)])
    store.close()
    again = Store(db_url(str(tmp_path / "state.db")))
    assert again.open_orders() == {
        "mm-1": [OrderRecord(1, 1, 99, 2, 2, "working", 5), OrderRecord(2, -1, 101, 2, 2, "working", 5)]
    }
    again.upsert_orders("mm-1", [OrderRecord(1, 1, 99, 2, 0, "filled", 9)])  # the same row, not a second
    assert [(o.order_id, o.status) for o in again.orders("mm-1")] == [(1, "filled"), (2, "working")]
    again.close()


def test_a_database_from_an_earlier_schema_is_refused_by_name(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE orders (maker_id TEXT, order_id INTEGER, PRIMARY KEY (maker_id, order_id))"
        )
    with pytest.raises(ConfigError, match="earlier Quotewise"):
        Store(db_url(str(path)))


# the column of ``makers`` each schema version added
ADDED = {2: "instrument", 3: "traceback"}
CURRENT = set(ADDED.values())
FILL_COLUMNS = {5: "venue_trade_id"}  # and of ``fills``


def _schema(path) -> tuple[int, set[str]]:
    """The stored schema version, and which of the columns migrations add ``makers`` has."""
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("SELECT version FROM schema_version").fetchone()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(makers)")}
    return version, columns & CURRENT


def _older(path, version: int) -> None:
    """Take the database at ``path`` back to the layout of ``version``: the later columns dropped."""
    with sqlite3.connect(path) as conn:
        for added, column in ADDED.items():
            if added > version:
                conn.execute(f"ALTER TABLE makers DROP COLUMN {column}")
        if version < 5:  # the venue's trade ids, and the unique index over them
            conn.execute("DROP INDEX IF EXISTS fills_venue_trade")
            table = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'fills'").fetchone()[0]
            if "UNIQUE (maker_id, venue_trade_id)" in table or "fills_venue_trade" in table:
                _rebuild_fills_without_trade_ids(conn)
            else:
                conn.execute("ALTER TABLE fills DROP COLUMN venue_trade_id")
        conn.execute("UPDATE schema_version SET version = ?", (version,))


def _rebuild_fills_without_trade_ids(conn) -> None:
    """SQLite cannot drop a column a table constraint names: the fills table as version 4 made it."""
    columns = "maker_id, seq, order_id, exch_ts, side, price, qty, fee, maker, position, cash"
    conn.execute(f"CREATE TABLE fills_v4 AS SELECT {columns} FROM fills")
    conn.execute("DROP TABLE fills")
    conn.execute(
        "CREATE TABLE fills (maker_id VARCHAR(32) NOT NULL, seq BIGINT NOT NULL, order_id BIGINT NOT NULL, "
        "exch_ts BIGINT NOT NULL, side INTEGER NOT NULL, price BIGINT NOT NULL, qty BIGINT NOT NULL, "
        "fee FLOAT NOT NULL, maker BOOLEAN NOT NULL, position BIGINT NOT NULL, cash FLOAT NOT NULL, "
        "PRIMARY KEY (maker_id, seq))"
    )
    conn.execute(f"INSERT INTO fills ({columns}) SELECT {columns} FROM fills_v4")
    conn.execute("DROP TABLE fills_v4")


def test_a_database_of_version_4_gets_venue_trade_ids_and_one_fill_per_trade(store, tmp_path):
    path = tmp_path / "state.db"
    store.record_fill("mm-1", fill(1, qty=3), position=3, cash=-300.0, fees=-0.01)
    store.record_fill("mm-1", fill(2, qty=1), position=4, cash=-400.0, fees=-0.02)
    store.close()
    _older(path, 4)
    with sqlite3.connect(path) as conn:
        assert "venue_trade_id" not in {row[1] for row in conn.execute("PRAGMA table_info(fills)")}
    again = Store(db_url(str(path)))
    assert [f.venue_trade_id for f in again.fills("mm-1")] == ["1", "2"]  # the paper venue's: its seq
    assert again.fill_marks("mm-1")[0] == {"1", "2"}
    repeat = dataclasses.replace(fill(3), trade_id="2")  # a new seq, a trade already stored
    assert not again.record_fill("mm-1", repeat, position=5, cash=-500.0, fees=-0.03)
    assert again.record_fill("mm-1", dataclasses.replace(fill(3), trade_id="T-9"), 5, -500.0, -0.03)
    assert [f.venue_trade_id for f in again.fills("mm-1")] == ["1", "2", "T-9"]
    again.close()


def _version_1(path, stamped: bool) -> None:
    """A database of schema version 1 (before ``makers.instrument``) holding a stopped maker with a fill;
    ``stamped``: with its version stored, else from before versioning (no ``schema_version`` table)."""
    store = Store(db_url(str(path)))
    params = {"spread": "2ticks"}
    store.add_maker("mm-old", "paper", "BTCUSDT", "synthetic", 1.0, "skew", params, None, {}, {})
    store.record_fill("mm-old", fill(1, qty=3), position=3, cash=-300.0, fees=-0.01)
    store.set_status("mm-old", "stopped", "operator")
    store.close()
    _older(path, 1)
    with sqlite3.connect(path) as conn:
        if not stamped:
            conn.execute("DROP TABLE schema_version")


@pytest.mark.parametrize("stamped", [True, False], ids=["version-1", "before-versioning"])
def test_a_database_of_schema_version_1_is_migrated_with_its_rows(tmp_path, stamped):
    from quotewise.live.engine import LiveEngine

    path = tmp_path / "before-instruments.db"
    _version_1(path, stamped)
    store = Store(db_url(str(path)))
    assert _schema(path) == (SCHEMA_VERSION, CURRENT)
    rec = store.maker("mm-old")
    assert (rec.status, rec.reason, rec.config_version) == ("stopped", "operator", 1)
    assert rec.params == {"spread": "2ticks"}
    assert rec.instrument == Instrument(symbol="BTCUSDT")  # none stored: the default linear instrument
    assert [f.qty for f in store.fills("mm-old")] == [3] and store.position("mm-old").position == 3
    engine = LiveEngine(store)  # what the API shows of a maker that is not running reads it
    assert engine.status("mm-old")["position"] == 3.0
    assert [row["size"] for row in engine.fills("mm-old")] == [3.0]
    store.add_maker("mm-new", "paper", "BTCUSDT", "synthetic", 1.0, "skew", {}, None, {}, BTC.model_dump())
    store.close()
    again = Store(db_url(str(path)))  # opened again: nothing left to migrate, both makers as stored
    assert again.maker("mm-new").instrument == BTC and again.maker("mm-old").instrument.symbol == "BTCUSDT"
    again.close()
    assert _schema(path) == (SCHEMA_VERSION, CURRENT)


def test_a_database_of_version_2_is_migrated_and_a_failed_maker_keeps_its_error(store, tmp_path):
    path = tmp_path / "state.db"
    store.set_status("mm-1", "failed", "RuntimeError('boom')")
    store.close()
    _older(path, 2)
    assert _schema(path) == (2, {"instrument"})
    again = Store(db_url(str(path)))
    assert _schema(path) == (SCHEMA_VERSION, CURRENT)
    rec = again.maker("mm-1")  # failed before tracebacks were kept: the error, no traceback
    assert (rec.status, rec.reason, rec.traceback) == ("failed", "RuntimeError('boom')", "")
    assert rec.instrument == BTC
    again.close()


def test_a_failed_makers_traceback_is_stored_with_its_status(store):
    trace = 'Traceback (most recent call last):\n  File "s.py", line 3, in quotes\nRuntimeError: boom\n'
    store.set_status("mm-1", "failed", "RuntimeError('boom')", trace)
    rec = store.maker("mm-1")
    assert (rec.status, rec.reason, rec.traceback) == ("failed", "RuntimeError('boom')", trace)


def test_a_failed_migration_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    from quotewise.live import store as store_module

    path = tmp_path / "before-instruments.db"
    _version_1(path, stamped=True)

    add_instruments = store_module.MIGRATIONS[0]

    def fails_halfway(conn):
        add_instruments(conn)
        raise RuntimeError("disk gone")

    monkeypatch.setattr(store_module, "MIGRATIONS", [fails_halfway])
    with pytest.raises(RuntimeError, match="disk gone"):
        Store(db_url(str(path)))
    assert _schema(path) == (1, set())  # the column was not added on its own
    monkeypatch.undo()
    Store(db_url(str(path))).close()
    assert _schema(path) == (SCHEMA_VERSION, CURRENT)


def test_a_database_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "future.db"
    Store(db_url(str(path))).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(ConfigError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than") as refused:
        Store(db_url(str(path)))
    assert "\n" not in str(refused.value)


def test_a_new_database_starts_at_the_current_version(tmp_path):
    path = tmp_path / "new.db"
    Store(db_url(str(path))).close()
    Store(db_url(str(path))).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_database_of_version_3_keeps_what_its_bare_numbers_meant(tmp_path):
    """Version 3 read a bare distance as a price and a bare duration as nanoseconds; since version 4
    they are ticks and milliseconds, so the migration writes the old unit out."""
    from quotewise.quoting.loader import make_strategy
    from quotewise.risk.config import RiskConfig
    from quotewise.settings import VenueSettings

    path = tmp_path / "v3.db"
    store = Store(db_url(str(path)))
    params = {"spread": 0.03, "threshold": "2ticks", "interval": "5000", "vol_window": "30s", "skew": 0.5}
    risk = {"max_pos": 1.0, "pause_for": 30_000_000_000, "stale_after": None}
    sim = {"entry_latency_ns": 2_000_000, "response_latency_ns": 1_000_000}
    btc = BTC.model_dump()
    store.add_maker("mm-v3", "paper", "BTCUSDT", "synthetic", 1.0, "skew", params, risk, sim, btc)
    store.close()
    _older(path, 3)
    rec = Store(db_url(str(path))).maker("mm-v3")
    assert rec.params == {
        "spread": "0.03px",
        "threshold": "2ticks",
        "interval": "5000ns",
        "vol_window": "30s",
        "skew": 0.5,
    }
    assert rec.risk == {"max_pos": 1.0, "pause_for": "30000000000ns", "stale_after": None}
    assert rec.sim == {"latency_entry": "2000000ns", "latency_response": "1000000ns"}
    strategy = make_strategy("skew", rec.params)
    strategy.on_start(BTC)  # 0.03 in price is 0.3 ticks of 0.1, as before
    assert strategy.params.spread.resolve(BTC.tick_size) == (pytest.approx(0.3), 0.0)
    assert strategy.interval_ns == 5000 and RiskConfig(**rec.risk).pause_for == 30 * 10**9
    assert VenueSettings(**rec.sim).latency_entry == 2_000_000
