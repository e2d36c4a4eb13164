"""The prediction-market backtest done-when check on a Polymarket capture through ``mm backtest``: a
market's YES and NO tokens (the NO book the YES book mirrored), every order inside [tick, 1 - tick],
fills only where the market traded at our price or through it, the settlement line and the identity,
and the NO token's run the mirror of the YES token's."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quotewise.data.polymarket import read_polymarket, write_capture
from quotewise.data.store import EventData
from quotewise.data.synthetic import synthetic_binary
from quotewise.model.events import TRADE

YES = "1111111111111111111111111111111111111111111111111111111111111111111111111111"
NO = "2222222222222222222222222222222222222222222222222222222222222222222222222222"
PAR = 100  # 1.00 in ticks of 0.01


def mirrored(data: EventData) -> EventData:
    """The NO token of a YES market: a YES bid at p is a NO ask at 1 - p."""
    events = data.events.copy()
    priced = events["kind"] != 7  # CLEAR has no price
    events["price"][priced] = PAR - events["price"][priced]
    events["side"] = -events["side"]
    return EventData(events, data.instrument.model_copy(update={"symbol": NO}), data.source, data.report)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both tokens' messages in one capture, in receive-time order."""
    folder = tmp_path_factory.mktemp("capture")
    yes = synthetic_binary(120_000, seed=11, volatility_ticks=1.0)  # a market that moves through our quotes
    lines = []
    for path in (
        write_capture(yes, folder / "yes.txt", YES),
        write_capture(mirrored(yes), folder / "no.txt", NO),
    ):
        lines += path.read_text().splitlines()
    lines.sort(key=lambda line: int(line.split(" ", 1)[0]))  # a stable sort keeps each token's order
    both = folder / "both.txt"
    both.write_text("\n".join(lines) + "\n")
    return both


def backtest(capture: Path, out: Path, token: str, resolve: str) -> dict:
    args = ["--data", str(capture), "--market", token, "--spread", "2", "--size", "50", "--max-pos", "500"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "quotewise.cli",
            "backtest",
            *args,
            "--resolve",
            resolve,
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "settlement" in done.stdout
    return json.loads((out / "summary.json").read_text())


def test_a_capture_backtest_settles_and_its_no_token_mirrors_it(capture: Path, tmp_path: Path) -> None:
    yes = backtest(capture, tmp_path / "yes", YES, "yes")
    no = backtest(capture, tmp_path / "no", NO, "no")

    for run, summary in (("yes", yes), ("no", no)):
        parts = summary["attribution"]
        assert math.isclose(
            parts["spread_capture"] + parts["inventory"] + parts["fees"] + parts["settlement"],
            summary["total_pnl"],
            abs_tol=1e-9,
        )
        orders = pd.read_parquet(tmp_path / run / "orders.parquet")
        assert orders["price"].min() >= 0.01 - 1e-12 and orders["price"].max() <= 0.99 + 1e-12
        assert summary["fills"] > 10
    assert yes["settlement"]["price"] == 1.0 and no["settlement"]["price"] == 0.0
    # a NO bid at 1 - p is our YES ask at p: the same fills mirrored, the same money
    assert no["fills"] == yes["fills"] and no["final_position"] == -yes["final_position"]
    assert math.isclose(no["total_pnl"], yes["total_pnl"], abs_tol=1e-6)


def test_a_fill_needs_the_market_to_trade_at_our_price_or_through_it(capture: Path, tmp_path: Path) -> None:
    backtest(capture, tmp_path / "queue", YES, "yes")
    fills = pd.read_parquet(tmp_path / "queue" / "fills.parquet")
    market = read_polymarket(capture, YES).events
    trades = market[market["kind"] == TRADE]
    stamps = trades["exch_ts"]
    for _, f in fills.iterrows():
        ts = int(pd.Timestamp(f["exch_ts"]).value)
        at = trades[(stamps >= ts - 1_000_000) & (stamps <= ts)]  # the channel stamps whole ms
        ticks = round(f["price"] * 100)
        # our bid fills when a sell traded at or below it (a print resting on the bid side), an ask
        # symmetrically; a print one side never reaches an order of ours waiting behind the level
        hit = at[(at["side"] == f["side"]) & (f["side"] * (at["price"] - ticks) <= 0)]
        assert len(hit), f"a fill at {f['price']} with no trade at or through it: {f.to_dict()}"
    assert np.all(fills["liquidity"].isin(["maker", "taker"]))
