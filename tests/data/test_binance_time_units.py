"""Binance captures whose times are not in the usual units: read from the magnitudes, never guessed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from quotewise.cli import app
from quotewise.data.binance import read_binance
from quotewise.errors import DataError

SPOT = ("binance", "spot", "btcusdt_20240808.gz")
LINES = 10_000  # about 100 s of market
NS = 1_723_161_253_937_085_768  # 2024-08-08 23:54:13.937 UTC
MS = NS // 1_000_000


def _slice(dst: Path, divide: int = 1) -> Path:
    """The first LINES lines of the real spot capture, local receive times divided by ``divide``."""
    with gzip.open(shared_path(*SPOT), "rt") as src, gzip.open(dst, "wt") as out:
        for _, line in zip(range(LINES), src, strict=False):
            ts, _, body = line.partition(" ")
            out.write(f"{int(ts) // divide} {body}")
    return dst


def _write(path: Path, lines: list[tuple[int, dict]]) -> Path:
    with gzip.open(path, "wt") as fh:
        for local, msg in lines:
            fh.write(f"{local} {json.dumps(msg)}\n")
    return path


def _trade(tid: int, t: int) -> dict:
    data = {"e": "trade", "E": t, "T": t, "s": "XYZUSDT", "t": tid, "p": "100.5", "q": "1.0", "m": True}
    return {"stream": "xyzusdt@trade", "data": data}


def _snapshot(e: int) -> dict:
    return {"lastUpdateId": 10, "E": e, "T": e, "bids": [["100.0", "1.0"]], "asks": [["100.5", "2.0"]]}


def test_microsecond_receive_times_give_the_same_events(tmp_path: Path) -> None:
    ns = read_binance(_slice(tmp_path / "ns.gz"))
    us = read_binance(_slice(tmp_path / "us.gz", divide=1_000))
    assert us.report["time_units"] == {"local": "us", "exchange": "ms"}
    assert ns.report["time_units"] == {"local": "ns", "exchange": "ms"}
    for name in ("kind", "side", "price", "size", "order_id", "exch_ts"):
        assert np.array_equal(us.events[name], ns.events[name])
    assert np.abs(us.events["local_ts"] - ns.events["local_ts"]).max() <= 1_000  # the lost sub-us digits
    assert 1e9 < us.report["local_clock_shift_ns"] < 2e9  # this capture clock runs ~1.3 s behind Binance


def test_microsecond_capture_backtests_on_its_real_date(tmp_path: Path) -> None:
    path = _slice(tmp_path / "btcusdt_us.gz", divide=1_000)
    out = tmp_path / "run"
    args = [
        "backtest",
        "--data",
        str(path),
        "--quiet",
        "--no-report",
        "--set",
        "size=0.001",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["start"].startswith("2024-08-08T23:54")
    assert summary["orders_placed"] > 0


def test_microsecond_exchange_times_are_detected(tmp_path: Path) -> None:
    """Binance sends E/T in microseconds when asked to (timeUnit=MICROSECOND)."""
    data = read_binance(
        _write(tmp_path / "x.gz", [(NS, _snapshot(MS * 1000)), (NS + 5, _trade(1, MS * 1000 + 7))])
    )
    assert data.report["time_units"] == {"local": "ns", "exchange": "us"}
    assert data.events["exch_ts"][-1] == (MS * 1000 + 7) * 1000


def test_consecutive_files_may_each_have_their_unit(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.gz", [(NS // 1000, _snapshot(MS))])
    second = _write(tmp_path / "b.gz", [(NS + 10**9, _trade(1, MS + 1000))])
    data = read_binance([first, second])
    assert data.report["time_units"] == {"local": "us, ns", "exchange": "ms"}


def test_times_that_fit_no_unit_or_mix_units_name_the_line(tmp_path: Path) -> None:
    mixed = [(NS, _snapshot(MS)), (NS + 5, _trade(1, MS)), (NS // 1000 + 1, _trade(2, MS))]
    with pytest.raises(DataError, match=r"mixed.gz:3: local receive time \d+ is not in ns like the first"):
        read_binance(_write(tmp_path / "mixed.gz", mixed))
    with pytest.raises(DataError, match=r"tiny.gz:2: exchange time 5 is no epoch time in s, ms, us or ns"):
        read_binance(_write(tmp_path / "tiny.gz", [(NS, _snapshot(MS)), (NS + 5, _trade(1, 5))]))


def test_receive_times_hours_off_the_exchange_are_refused(tmp_path: Path) -> None:
    hours = 3 * 3_600 * 10**9  # a capture written in local time, UTC+3
    path = _write(tmp_path / "tz.gz", [(NS + hours, _snapshot(MS)), (NS + hours + 5, _trade(1, MS))])
    with pytest.raises(DataError, match=r"tz.gz: local receive times are 3.0 hours ahead of the exchange"):
        read_binance(path)
