"""LOBSTER reader on small files cut from the AAPL fixture: every bad input is a DataError that
names the file and the line; halts, off-grid hidden executions and clamps are handled and counted."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from quotewise.data.lobster import read_lobster, read_lobster_book, read_lobster_with_rows
from quotewise.errors import ConfigError, DataError
from quotewise.model.events import SET, TRADE

STEM = "AAPL_2012-06-21_34200000_57600000"
MSG = f"{STEM}_message_10.csv"
BOOK = f"{STEM}_orderbook_10.csv"
ROWS = 30


@pytest.fixture
def rows() -> tuple[list[str], list[str]]:
    """The first ROWS lines of the fixture's message and orderbook files."""
    folder = shared_path("lobster", "AAPL_2012-06-21_10_first999")
    msg = (folder / MSG).read_text().splitlines()[:ROWS]
    book = (folder / BOOK).read_text().splitlines()[:ROWS]
    return msg, book


def write(folder: Path, msg: list[str], book: list[str], stem: str = STEM) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}_message_10.csv").write_text("\n".join(msg) + "\n")
    (folder / f"{stem}_orderbook_10.csv").write_text("\n".join(book) + "\n")
    return folder


def set_field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


def raises_at(path: Path, name: str, line: int, what: str) -> None:
    with pytest.raises(DataError, match=rf"{re.escape(name)}: line {line}: .*{what}"):
        read_lobster(path)


def test_the_cut_files_read_cleanly(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    data = read_lobster(write(tmp_path, *rows))
    assert data.report["rows"] == ROWS and data.report["rows_not_matching_book_file"] == 0


def test_wrong_column_count(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    bad = msg[:]
    bad[4] += ",7"
    raises_at(write(tmp_path / "a", bad, book), MSG, 5, "expected 6 comma-separated fields, found 7")
    bad = book[:]
    bad[2] = bad[2].rsplit(",", 1)[0]
    raises_at(write(tmp_path / "b", msg, bad), BOOK, 3, "expected 40 comma-separated fields, found 39")


def test_non_numeric_fields(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    bad = msg[:]
    bad[3] = set_field(bad[3], 3, "abc")
    raises_at(write(tmp_path / "a", bad, book), MSG, 4, "field 4 is not an integer: 'abc'")
    bad = msg[:]
    bad[6] = set_field(bad[6], 0, "9:30")
    raises_at(write(tmp_path / "b", bad, book), MSG, 7, "field 1 is not a number")
    bad = book[:]
    bad[8] = set_field(bad[8], 5, "")
    raises_at(write(tmp_path / "c", msg, bad), BOOK, 9, "field 6 is not an integer: ''")


def test_time_going_backwards(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    msg[5] = set_field(msg[5], 0, "34200.0")
    raises_at(write(tmp_path, msg, book), MSG, 6, "time goes backwards")


@pytest.mark.parametrize("short", ["message", "orderbook"])
def test_row_count_mismatch(tmp_path: Path, rows: tuple[list[str], list[str]], short: str) -> None:
    msg, book = rows
    if short == "message":
        msg = msg[:-2]
    else:
        book = book[:-2]
    longer = BOOK if short == "message" else MSG
    raises_at(write(tmp_path, msg, book), longer, ROWS - 1, "no matching row")


def test_crossed_orderbook_row(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    bid = book[6].split(",")[2]
    book[6] = set_field(book[6], 0, bid)
    raises_at(write(tmp_path, msg, book), BOOK, 7, "crossed book")


def test_unsorted_orderbook_levels(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    fields = book[10].split(",")
    fields[0], fields[4] = fields[4], fields[0]
    book[10] = ",".join(fields)
    raises_at(write(tmp_path, msg, book), BOOK, 11, "ask prices do not rise")


def test_price_off_the_tick_grid(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    msg[2] = set_field(msg[2], 4, "5853150")
    raises_at(write(tmp_path, msg, book), MSG, 3, "not on the tick grid")


def test_unknown_message_type(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    msg[8] = set_field(msg[8], 1, "9")
    raises_at(write(tmp_path, msg, book), MSG, 9, "unknown message type")


def test_empty_file(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    folder = write(tmp_path, *rows)
    (folder / MSG).write_text("")
    raises_at(folder, MSG, 1, "empty")


def test_zip_without_a_message_file(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    archive = tmp_path / "sample.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(BOOK, "\n".join(rows[1]) + "\n")
        zf.writestr("LOBSTER_SampleFiles_ReadMe.txt", "readme")
    with pytest.raises(DataError, match=rf"{re.escape(str(archive))}: no LOBSTER message file .*{BOOK}"):
        read_lobster(archive)


def test_zip_with_two_pairs_needs_a_choice(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for ticker in ("AAPL", "MSFT"):
            stem = STEM.replace("AAPL", ticker)
            zf.writestr(f"{stem}_message_10.csv", "\n".join(rows[0]) + "\n")
            zf.writestr(f"{stem}_orderbook_10.csv", "\n".join(rows[1]) + "\n")
    with pytest.raises(DataError, match=r"several LOBSTER pairs \(AAPL 2012-06-21 level 10, MSFT .*ticker="):
        read_lobster(archive)
    data = read_lobster(archive, ticker="msft")
    assert data.instrument.symbol == "MSFT" and data.report["message_file"].endswith(f"two.zip:MSFT{MSG[4:]}")
    with pytest.raises(
        DataError, match=r"no LOBSTER files for ticker=AAPL levels=5 \(there are: AAPL level 10"
    ):
        read_lobster(archive, ticker="AAPL", levels=5)


def test_a_csv_path_needs_its_partner(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    folder = write(tmp_path, *rows)
    (folder / BOOK).unlink()
    with pytest.raises(
        DataError, match=rf"{re.escape(MSG)}: its orderbook file {re.escape(BOOK)} is not beside"
    ):
        read_lobster(folder / MSG)
    odd = tmp_path / "aapl.csv"
    odd.write_text("1,2\n")
    with pytest.raises(DataError, match="not a LOBSTER file name"):
        read_lobster(odd)


def test_halts_and_crosses_are_skipped_and_counted(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    msg, book = rows
    t = msg[9].split(",")[0]
    # halt, resume, then an auction cross (pseudo order id -2, a summary of earlier executions)
    msg = [*msg[:10], f"{t},7,0,0,-1,-1", f"{t},7,0,0,1,-1", f"{t},6,-2,300,5853300,-1", *msg[10:]]
    book = [*book[:10], book[9], book[9], book[9], *book[10:]]
    read = read_lobster_with_rows(write(tmp_path, msg, book))
    report = read.data.report
    assert report["halts_skipped"] == 2 and report["messages"]["halt"] == 2
    assert report["cross_trades_skipped"] == 1
    assert report["rows"] == ROWS + 3 and report["rows_not_matching_book_file"] == 0
    assert read.row_ends[9] == read.row_ends[10] == read.row_ends[11] == read.row_ends[12]
    assert not np.any(read.data.events["order_id"] < 0)


def test_off_grid_hidden_executions_round_toward_the_aggressor(
    tmp_path: Path, rows: tuple[list[str], list[str]]
) -> None:
    msg, book = rows
    t = msg[15].split(",")[0]
    msg = [*msg[:16], f"{t},5,0,100,5853350,1", f"{t},5,0,100,5853350,-1", *msg[16:]]
    book = [*book[:16], book[15], book[15], *book[16:]]
    data = read_lobster(write(tmp_path, msg, book))
    trades = data.events[data.events["kind"] == TRADE]
    assert trades[["price", "side"]].tolist() == [(58534, 1), (58533, -1)]
    assert data.report["off_grid_trades_rounded"] == 2


def test_an_oversized_delete_is_clamped_and_counted(
    tmp_path: Path, rows: tuple[list[str], list[str]]
) -> None:
    msg, book = rows
    assert msg[8].split(",")[1] == "3"
    msg[8] = set_field(msg[8], 3, "1000")
    report = read_lobster(write(tmp_path, msg, book)).report
    assert report["clamps"] == 1 and report["rows_not_matching_book_file"] == 0


def test_winter_dates_use_eastern_standard_time(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    stem = STEM.replace("2012-06-21", "2012-01-05")
    data = read_lobster(write(tmp_path, *rows, stem=stem))
    assert data.events["exch_ts"][0] == pd.Timestamp("2012-01-05 14:30:00.004241176", tz="UTC").value


def test_tick_size_option(tmp_path: Path, rows: tuple[list[str], list[str]]) -> None:
    folder = write(tmp_path, *rows)
    data = read_lobster(folder, tick_size=0.0001)
    assert data.instrument.tick_size == 0.0001
    assert data.events["price"][data.events["kind"] == SET].min() > 5_000_000
    raw = read_lobster_book(folder, tick_size=0.0001)
    assert np.array_equal(raw, np.loadtxt(folder / BOOK, delimiter=",", dtype=np.int64))
    with pytest.raises(ConfigError, match="tick_size"):
        read_lobster(folder, tick_size=0.00015)
