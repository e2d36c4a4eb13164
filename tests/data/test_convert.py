"""Format detection, dispatch to the readers, and the summary behind `mm data info`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from quotewise.data.convert import FORMATS, detect_format, info, load_source
from quotewise.data.hftbacktest import write_hftbacktest_npz
from quotewise.data.store import write_events
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import SET, TRADE

T0 = 1_700_000_000_000_000_000  # local receive times in ns, as the captures write them
SNAPSHOT = {"lastUpdateId": 10, "E": 1_700_000_000_000, "bids": [["10.0", "1"]], "asks": [["10.5", "2"]]}
TRADE_LINE = {
    "stream": "abcusdt@trade",
    "data": {
        "e": "trade",
        "E": 1,
        "T": 1_700_000_000_500,
        "s": "ABCUSDT",
        "t": 9,
        "p": "10.5",
        "q": "1",
        "m": False,
    },
}


def _capture(path: Path, start: int) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write(f"{start} {json.dumps(SNAPSHOT)}\n{start + 1} {json.dumps(TRADE_LINE)}\n")
    return path


def test_detects_every_real_format() -> None:
    assert detect_format(shared_path("binance", "usdm", "btcusdt_20240808.gz")) == "binance"
    assert detect_format(shared_path("tardis", "bitmex_trades_XBTUSD.csv")) == "tardis"
    assert detect_format(shared_path("tardis", "binance-futures_book_snapshot_25_BTCUSDT.csv")) == "tardis"
    assert detect_format(shared_path("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")) == "lobster"
    fixture = shared_path("lobster", "AAPL_2012-06-21_10_first999")
    assert detect_format(fixture) == "lobster"
    assert detect_format(next(fixture.glob("*_message_*.csv"))) == "lobster"


def test_detects_our_files_and_hftbacktest(tmp_path: Path) -> None:
    data = load_source(_capture(tmp_path / "a.gz", T0))
    assert detect_format(write_events(tmp_path / "a.parquet", data)) == "parquet"
    assert detect_format(write_hftbacktest_npz(data, tmp_path / "a.npz")) == "hftbacktest"
    back = load_source(tmp_path / "a.parquet")
    assert np.array_equal(back.events, data.events) and back.instrument == data.instrument
    npz = load_source(tmp_path / "a.npz", tick_size=0.1, lot_size=1.0, symbol="ABCUSDT")
    assert np.array_equal(npz.events, data.events) and npz.instrument.symbol == "ABCUSDT"


def test_unknown_or_undetectable_formats_list_the_accepted_ones(tmp_path: Path) -> None:
    path = _capture(tmp_path / "a.gz", 1)
    with pytest.raises(
        ConfigError, match="unknown data format 'csv'; accepted formats: lobster, binance, tardis"
    ):
        load_source(path, "csv")
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(
        DataError, match=r"cannot tell its format; accepted formats: lobster, binance, tardis, hftbacktest"
    ):
        load_source(other)
    with pytest.raises(DataError, match="no such file"):
        detect_format(tmp_path / "missing.gz")
    assert FORMATS == ("lobster", "binance", "tardis", "hftbacktest", "polymarket", "kalshi")


def test_options_are_checked(tmp_path: Path) -> None:
    data = load_source(_capture(tmp_path / "a.gz", T0))
    write_hftbacktest_npz(data, tmp_path / "a.npz")
    with pytest.raises(ConfigError, match="tick and lot"):
        load_source(tmp_path / "a.npz")
    write_events(tmp_path / "a.parquet", data)
    with pytest.raises(ConfigError, match=r"fixes the tick size at 0\.1"):
        load_source(tmp_path / "a.parquet", tick_size=0.5)
    with pytest.raises(ConfigError, match="only for binance"):
        load_source([tmp_path / "a.parquet", tmp_path / "a.parquet"])


def test_several_binance_files_are_one_stream(tmp_path: Path) -> None:
    first = _capture(tmp_path / "d1.gz", T0 + 1_000)
    second = _capture(tmp_path / "d2.gz", T0 + 2_000)
    data = load_source([first, second], tick_size=0.5, symbol="ABC")
    assert data.instrument.symbol == "ABC" and data.instrument.tick_size == 0.5
    assert data.report["snapshots"] == 2 and data.report["snapshots_redundant"] == 1
    assert np.count_nonzero(data.events["kind"] == TRADE) == 2


def test_info_summarizes_real_data() -> None:
    summary = info(load_source(shared_path("tardis", "binance-futures_book_snapshot_5_BTCUSDT.csv")))
    assert summary["instrument"]["symbol"] == "BTCUSDT"
    assert summary["instrument"]["venue"] == "binance-futures"
    assert summary["first_exch_time"] == "2020-09-01T00:00:03.696000000Z"
    assert summary["last_exch_time"] == "2020-09-01T00:00:04.284000000Z"
    assert summary["duration_s"] == pytest.approx(0.588)
    assert summary["events_by_kind"]["CLEAR"] == 1
    assert summary["events"] == sum(summary["events_by_kind"].values())
    assert summary["report"]["data_type"] == "book_snapshot"
    json.dumps(summary)  # `mm data info --json` prints it


def test_lobster_goes_through_its_reader() -> None:
    data = load_source(shared_path("lobster", "AAPL_2012-06-21_10_first999"))
    assert data.instrument.symbol == "AAPL"
    counts = info(data)["events_by_kind"]
    assert counts["ADD"] > 0 and counts["SET"] > 0
    assert np.count_nonzero(data.events["kind"] == SET) == counts["SET"]
