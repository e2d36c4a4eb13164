"""lead=FILE: the compiled rule centres on a leading instrument's mid plus the basis, from samples
the strategy has already received, and refuses to run where it would be ignored."""

from __future__ import annotations

import json

import numpy as np
import pytest

import quotewise.signals.lead as lead_mod
from conftest import shared_path
from quotewise.backtest import runner as runner_module
from quotewise.backtest.runner import run_backtest
from quotewise.backtest.source import DataSource, synthetic
from quotewise.errors import ConfigError, DataError
from quotewise.live.engine import live_strategy
from quotewise.model.events import ASK, BID, SET, empty_events
from quotewise.model.instrument import Instrument
from quotewise.quoting.loader import make_strategy
from quotewise.risk import RiskConfig
from quotewise.sim.exchange import SimConfig

SOURCE = synthetic(40_000, seed=3)
FEED_NS = 2_000_000
PARAMS = {"spread": "1tick", "size": 2, "improve": False}
S = 1_000_000_000
T0 = 1_700_000_000 * S


def source_of(rows: list[tuple[int, int, int, int]]) -> DataSource:
    """A hand-made book from (ts, side, price ticks, size) SET rows."""
    events = empty_events(len(rows))
    for i, (ts, side, price, size) in enumerate(rows):
        events[i]["exch_ts"] = events[i]["local_ts"] = ts
        events[i]["kind"], events[i]["side"], events[i]["price"], events[i]["size"] = SET, side, price, size
    prices = events["price"]
    return DataSource(
        "hand-made",
        Instrument(tick_size=1.0),
        int(prices.min()),
        int(prices.max()),
        len(events),
        False,
        lambda: iter([events]),
    )


def test_the_fair_value_is_the_lead_mid_plus_an_averaged_basis():
    own = source_of([(T0, BID, 100, 1), (T0, ASK, 102, 1), (T0 + 10 * S, BID, 100, 2)])  # mid 101
    # the lead's mid: 201, then 211 from T0 + 5 s on (received then)
    lead = source_of(
        [(T0, BID, 200, 1), (T0, ASK, 202, 1), (T0 + 5 * S, BID, 210, 1), (T0 + 5 * S, ASK, 212, 1)]
    )
    halflife = 2 * S
    times, fair = lead_mod.lead_fair_value(lead, 1.0, own, 1.0, T0, S, halflife)
    assert times.tolist() == [T0 + k * S for k in range(11)]
    a = 1 - 2 ** (-S / halflife)
    basis = -100.0  # the first gap, 101 - 201, held while both stand still
    want = []
    for k in range(11):
        lead_mid = 201.0 if k < 5 else 211.0
        if k > 0:
            basis += a * ((101.0 - lead_mid) - basis)
        want.append(lead_mid + basis)
    assert fair == pytest.approx(want)
    # our mid stays at 101: the lead's jump of 10 passes at once, less the share the basis took
    assert fair[4] == pytest.approx(101.0) and fair[5] == pytest.approx(101.0 + 10 * (1 - a))


def test_a_sample_moves_the_quotes_only_once_the_strategy_has_seen_it(monkeypatch):
    first = int(next(iter(SOURCE.chunks()))["local_ts"][0])
    seen_at = first + 3 * S
    mid = lead_mod.mids_at(SOURCE, lead_mod.all_events(SOURCE), 1.0, np.array([seen_at]))[0]  # ticks
    fair = mid + 10.0  # the lead says: 10 ticks above our mid
    monkeypatch.setattr(lead_mod, "lead_fair_value", lambda *a: (np.array([seen_at]), np.array([fair])))
    monkeypatch.setattr(runner_module, "from_path", lambda *a: SOURCE)
    plain = orders(run(PARAMS))
    leaned = orders(run({**PARAMS, "lead": "any-file"}))
    before = plain[:, 0] < seen_at + FEED_NS
    assert before.any() and (~before).any()
    assert np.array_equal(plain[before], leaned[: before.sum()])  # nothing changes before it is seen
    tick = SOURCE.instrument.tick_size
    first_ask = lambda rows: rows[rows[:, 1] == -1][0, 2]  # noqa: E731
    after = leaned[before.sum() :]
    # the centre is the fair value: the first ask after it is a half-spread above it (the touch
    # is far below), where the plain rule asks a tick above its own mid
    assert first_ask(after) == pytest.approx((np.ceil(fair + 1 - 1e-9)) * tick)
    assert first_ask(after) > first_ask(plain[~before]) + 5 * tick


def run(params: dict, risk: RiskConfig | None = None):
    return run_backtest(SOURCE, make_strategy("skew", params), SimConfig(feed_latency_ns=FEED_NS), risk=risk)


def orders(result) -> np.ndarray:
    table = result.orders.to_pandas()
    sent = table[table["status"] == "submitted"]
    return sent[["ts", "side", "price"]].to_numpy()


def test_lead_is_refused_where_it_would_be_ignored():
    with pytest.raises(ConfigError, match=r"lead=.*Python path"):
        run({**PARAMS, "lead": "x.gz"}, risk=RiskConfig(max_pos=10))
    with pytest.raises(ConfigError, match="model and lead"):
        make_strategy("skew", {**PARAMS, "lead": "x.gz", "model": "m"})
    with pytest.raises(ConfigError, match=r"lead=.*backtest only"):
        live_strategy("skew", {**PARAMS, "lead": "x.gz"})
    with pytest.raises(DataError, match=r"lead=nope\.gz: .*no such file"):
        run({**PARAMS, "lead": "nope.gz"})


def test_spot_quoted_around_the_perpetual_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from quotewise.cli import app

    spot = shared_path("binance", "spot", "btcusdt_20240808.gz")
    perp = shared_path("binance", "usdm", "btcusdt_20240808.gz")
    base = [
        "backtest",
        "--data",
        str(spot),
        "--strategy",
        "skew",
        "--set",
        "size=0.001",
        "--quiet",
        "--no-report",
    ]
    runs = {}
    for name, extra in (("own", []), ("lead", ["--set", f"lead={perp}", "--set", "lead_halflife=30s"])):
        out = tmp_path / name
        result = CliRunner().invoke(app, [*base, *extra, "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((out / "summary.json").read_text())
    assert runs["lead"]["compiled"] and runs["lead"]["params"]["lead"] == str(perp)
    assert runs["lead"]["fills"] > 0 and runs["lead"]["fills"] != runs["own"]["fills"]


def test_a_portfolio_leg_names_its_lead_by_instrument(tmp_path):
    from quotewise.portfolio.config import parse_portfolio
    from quotewise.portfolio.runner import run_portfolio

    spot = shared_path("binance", "spot", "btcusdt_20240808.gz")
    perp = shared_path("binance", "usdm", "btcusdt_20240808.gz")
    spec = parse_portfolio(
        {
            "instruments": {
                "spot": {"data": str(spot), "strategy": "skew", "params": {"size": 0.001, "lead": "perp"}},
                "perp": {"data": str(perp), "role": "hedge"},
            },
            "hedge": {"instrument": "perp", "band": 0.01},
        }
    )
    summary = run_portfolio(spec, tmp_path)
    leg = summary["instruments"]["spot"]
    assert leg["compiled"] and leg["params"]["lead"] == str(perp) and leg["fills"] > 0
