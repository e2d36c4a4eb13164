"""The live engine's store: every write committed, fills never stored twice."""

from __future__ import annotations

import sqlite3

import pytest

from quotewise.errors import ConfigError
from quotewise.live.store import OrderRecord, Store, db_url
from quotewise.live.venue import VenueFill
from quotewise.model.instrument import Instrument
from quotewise.risk import RiskEvent

BTC = Instrument(symbol="BTCUSDT", venue="binance", tick_size=0.1, lot_size=0.001, price_band=(0.95, 1.05))


@pytest.fixture
def store(tmp_path):
    s = Store(db_url(str(tmp_path / "state.db")))
    s.add_maker(
        "mm-1", "paper", "BTCUSDT", "synthetic", 2.0, "symmetric", {"spread": "1tick"}, None, {"q": 1},
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


def test_a_makers_table_without_the_instrument_is_refused_by_name(tmp_path):
    path = tmp_path / "before-instruments.db"
    Store(db_url(str(path))).close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE makers DROP COLUMN instrument")
    with pytest.raises(ConfigError, match=r"makers table from an earlier Quotewise \(no instrument column\)"):
        Store(db_url(str(path)))
