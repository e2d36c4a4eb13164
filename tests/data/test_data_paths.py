"""One reading of a ``--data`` value, shared by `mm backtest`, `mm data info/convert` and the paper venue."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from quotewise.backtest.source import data_paths
from quotewise.errors import ConfigError
from quotewise.live.paper import open_data

T0 = 1_700_000_000_000_000_000
SNAPSHOT = {"lastUpdateId": 10, "E": T0 // 10**6, "bids": [["10.0", "1"]], "asks": [["10.5", "2"]]}


def _capture(path: Path, start: int) -> Path:
    trade = {"e": "trade", "T": start // 10**6, "s": "ABCUSDT", "t": 9, "p": "10.5", "q": "1", "m": False}
    lines = [f"{start} {json.dumps(SNAPSHOT)}", f"{start + 1} {json.dumps({'stream': 'x', 'data': trade})}"]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def test_data_paths(tmp_path: Path) -> None:
    assert data_paths("a.gz") == "a.gz"
    assert data_paths("a.gz,b.gz") == ["a.gz", "b.gz"]
    odd = tmp_path / "day,1.gz"
    odd.write_text("")
    assert data_paths(str(odd)) == str(odd)  # a file whose name has a comma is one file
    with pytest.raises(ConfigError, match="empty file name"):
        data_paths("a.gz,")


def test_paper_venue_data_takes_consecutive_files(tmp_path: Path) -> None:
    first = _capture(tmp_path / "d1.gz", T0)
    second = _capture(tmp_path / "d2.gz", T0 + 10**9)
    source = open_data(f"{first},{second}")
    assert source.n_events == open_data(str(first)).n_events + 1  # the second snapshot repeats the book
    assert source.report["files"] == [str(first), str(second)]
    with pytest.raises(ConfigError, match=r"data file not found: .*missing.gz$"):
        open_data(f"{first},{tmp_path / 'missing.gz'}")
