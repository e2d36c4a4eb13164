"""Many prediction markets in one run, from the top-of-book table: each settled at its outcome, per
market and in total, with the Brier score of the market's mids; the conservative fill rule (a quote
fills only when the market quotes through it)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import quotewise as qw
from conftest import shared_path
from quotewise.backtest.source import from_event_data
from quotewise.data.polymarket_quotes import Market, event_prices, pick_events, pick_markets, read_market
from quotewise.errors import DataError

QUOTES = ("polymarket", "quotes_2026-07-16", "quotes.parquet")


def mm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quotewise.cli", *args], capture_output=True, text=True, timeout=300
    )


def table(folder: Path, rows: list[tuple[int, str, float | None, float | None]], outcome: int) -> Path:
    """A tiny quotes table (one snapshot a minute) with its labels beside it."""
    frame = pd.DataFrame(rows, columns=["minute", "slug", "bid", "ask"])
    frame["ts"] = pd.Timestamp("2026-07-16") + pd.to_timedelta(frame.pop("minute"), unit="min")
    frame["segment"] = 1
    frame.to_parquet(folder / "quotes.parquet")
    labels = pd.DataFrame({"slug": [rows[0][1]], "y": [outcome], "source": ["api"]})
    labels.to_parquet(folder / "labels.parquet")
    return folder / "quotes.parquet"


def test_a_quote_fills_only_when_the_market_quotes_through_it(tmp_path):
    rows = [(i, "rain", 0.40, 0.44) for i in range(30)]  # a quiet market: our quotes at the touch
    rows += [(30 + i, "rain", 0.36, 0.38) for i in range(30)]  # the ask drops through our 0.40 bid
    path = table(tmp_path, rows, outcome=0)
    (market,) = pick_markets(path, ["rain"], None)
    data = read_market(path, market)
    assert data.instrument.binary and data.instrument.min_price == 0.01
    quiet = qw.backtest(from_event_data(read_market_upto(path, market, 30), "quiet"), "symmetric", spread=1)
    assert quiet.summary["fills"] == 0  # touching the market's quotes fills nothing
    run = qw.backtest(from_event_data(data, "through"), "symmetric", spread=1, size=5, out=tmp_path / "run")
    fills = run.fills
    assert len(fills) >= 1 and set(fills["side"]) == {1}  # only our bid, when the ask came through it
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["settlement"]["price"] == 0.0 and summary["settlement"]["source"].endswith(
        "labels.parquet)"
    )
    assert math.isclose(data.report["brier"], (30 * 0.42**2 + 30 * 0.37**2) / 60)


def read_market_upto(path: Path, market: Market, snapshots: int):
    """The market's first ``snapshots`` snapshots only."""
    data = read_market(path, market)
    cut = data.events["exch_ts"] < data.events["exch_ts"][0] + snapshots * 60 * 10**9
    data.events = data.events[cut]
    return data


def test_markets_are_picked_by_slug_or_count_and_refused_by_name(tmp_path):
    path = table(tmp_path, [(0, "rain", 0.4, 0.5), (1, "rain", 0.4, 0.5)], outcome=1)
    with pytest.raises(DataError, match="no market snow"):
        pick_markets(path, ["snow"], None)
    with pytest.raises(DataError, match="pick some with --market SLUG or --markets N"):
        pick_markets(path, None, None)
    with pytest.raises(DataError, match="only 1 markets have a trusted resolution, not 2"):
        pick_markets(path, None, 2)
    assert [m.slug for m in pick_markets(path, None, 1)] == ["rain"]


def test_fifty_markets_of_the_real_table_each_settled_with_totals_and_a_report(tmp_path):
    path = shared_path(*QUOTES)
    out = tmp_path / "fifty"
    done = mm("backtest", "--data", str(path), "--markets", "50", "--strategy", "symmetric",
              "--spread", "1", "--size", "10", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "50 markets" in done.stdout and "mean Brier score" in done.stdout
    with (out / "markets.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 50 and len({r["market"] for r in rows}) == 50
    labels = pd.read_parquet(path.parent / "labels.parquet")
    outcome = dict(zip(labels["slug"], labels["y"], strict=True))
    for r in rows:
        parts = sum(float(r[p]) for p in ("spread_capture", "inventory", "fees", "settlement"))
        assert math.isclose(parts, float(r["total_pnl"]), abs_tol=1e-9)
        assert float(r["settlement_price"]) == outcome[r["market"]]
        assert r["brier"] == "" or 0.0 <= float(r["brier"]) <= 1.0  # empty: never quoted on both sides
        assert (out / r["market"] / "report.html").exists()
    assert sum(r["brier"] != "" for r in rows) >= 40
    totals = json.loads((out / "markets.json").read_text())["totals"]
    assert math.isclose(totals["total_pnl"], sum(float(r["total_pnl"]) for r in rows), abs_tol=1e-9)
    assert (out / "markets.html").read_text().count("report.html") == 50


def test_market_flags_on_a_file_that_is_not_a_table_are_refused():
    done = mm("backtest", "--data", "synthetic:1000", "--markets", "3")
    assert done.returncode == 2 and "not one" in done.stderr
    two = mm("backtest", "--data", "synthetic:1000", "--market", "A", "--market", "B")
    assert two.returncode == 2 and "one --market" in two.stderr


def test_data_info_on_a_table_says_what_it_holds(tmp_path):
    path = table(tmp_path, [(0, "rain", 0.4, 0.5), (1, "rain", 0.4, 0.5)], outcome=1)
    done = mm("data", "info", str(path), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["markets"], info["resolved"], info["snapshots"]) == (1, 1, 2)
    assert "--markets N" in mm("data", "info", str(path)).stdout


def event_table(folder: Path) -> Path:
    """Three outcomes of one question (one YES, 'b') whose mids sum to 1, and a lone market."""
    rows = []
    for minute in range(40):
        rows += [(minute, "a", 0.19, 0.21), (minute, "b", 0.49, 0.51), (minute, "c", 0.29, 0.31)]
        rows.append((minute, "lone", 0.5, 0.6))
    rows += [(40, "a", 0.10, 0.12)]  # a's ask drops through a 0.19 bid of ours: a long in a
    frame = pd.DataFrame(rows, columns=["minute", "slug", "bid", "ask"])
    frame["ts"] = pd.Timestamp("2026-07-16") + pd.to_timedelta(frame.pop("minute"), unit="min")
    frame["segment"] = 1
    frame.to_parquet(folder / "quotes.parquet")
    pd.DataFrame({"slug": ["a", "b", "c", "lone"], "y": [0, 1, 0, 1], "source": ["api"] * 4}).to_parquet(
        folder / "labels.parquet"
    )
    questions = ["Who wins?"] * 3 + ["Rain?"]
    pd.DataFrame({"slug": ["a", "b", "c", "lone"], "question": questions}).to_parquet(
        folder / "markets.parquet"
    )
    return folder / "quotes.parquet"


def test_neg_risk_events_are_whole_questions_with_one_yes(tmp_path):
    path = event_table(tmp_path)
    (event,) = pick_events(path, None, 1)
    assert event.question == "Who wins?" and {m.slug for m in event.markets} == {"a", "b", "c"}
    assert event.winner == "b" and pick_events(path, ["c"], None) == [event]
    with pytest.raises(DataError, match="lone is in no complete negative-risk event"):
        pick_events(path, ["lone"], None)
    prices = event_prices(path, event)
    assert prices["mean_sum_of_mids"] == pytest.approx(1.0, abs=0.01)
    assert prices["arbitrage_share"] == pytest.approx(1 / 41)  # the last minute: the asks sum to 0.94


def test_a_neg_risk_run_reports_each_event_and_its_worst_settlement(tmp_path):
    path = event_table(tmp_path)
    out = tmp_path / "run"
    done = mm(
        "backtest",
        "--data",
        str(path),
        "--markets",
        "1",
        "--neg-risk",
        "--spread",
        "1",
        "--size",
        "5",
        "--out",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert "event 'Who wins?': 3 outcomes" in done.stdout
    (event,) = json.loads((out / "markets.json").read_text())["events"]
    rows = {r["market"]: r for r in csv.DictReader((out / "markets.csv").open())}
    positions = [float(rows[s]["final_position"]) for s in ("a", "b", "c")]
    assert float(rows["a"]["final_position"]) > 0  # the quote the ask came through
    assert event["worst_settlement"] == min(positions) and event["best_settlement"] == max(positions)
    assert event["total_pnl"] == pytest.approx(sum(float(rows[s]["total_pnl"]) for s in ("a", "b", "c")))
    assert "Negative-risk events" in (out / "markets.html").read_text()
    refused = mm(
        "backtest", "--data", str(path), "--market", "lone", "--neg-risk", "--out", str(tmp_path / "x")
    )
    assert refused.returncode != 0 and "lone is in no complete negative-risk event" in refused.stderr
