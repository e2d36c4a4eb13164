"""End to end through ``mm``: an engine in the background, two paper makers on real data, a config
change that moves the quotes, a stop, and status, fills and audit that agree; bad commands change
nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from live.strategies_for_tests import raised_at
from quotewise.live.store import Store, db_url

BINANCE = ("binance", "usdm", "btcusdt_20240808.gz")
LOBSTER = ("lobster", "LOBSTER_SampleFile_AMZN_2012-06-21_5.zip")


def quote_distance(status: dict) -> float:
    mid = (status["best_bid"] + status["best_ask"]) / 2
    return sum(abs(q["price"] - mid) for q in status["quotes"]) / len(status["quotes"])


def two_quotes(mm, maker_id):
    def check():
        s = mm.json("status", maker_id, "--json")
        return len(s["quotes"]) == 2 and all(q["status"] == "working" for q in s["quotes"])

    return check


def test_two_paper_makers_config_stop_and_consistent_records(mm, shared_data):
    binance, lobster = shared_data.joinpath(*BINANCE), shared_data.joinpath(*LOBSTER)
    for path in (binance, lobster):
        if not path.exists():
            pytest.skip(f"real market data not available: {path} is missing")
    mm("engine", "start", "--db", mm.db)
    assert "kept warm every 1ms" in mm("engine", "status").stdout  # the default
    a = mm(
        "start",
        "paper",
        "BTCUSDT",
        "--data",
        str(binance),
        "--speed",
        "2",  # the 6-minute file lasts 3 minutes: the waits below end long before the data does
        "--strategy",
        "symmetric",
        "--spread",
        "1tick",
    ).stdout.strip()
    b = mm(
        "start",
        "paper",
        "AMZN",
        "--data",
        str(lobster),
        "--speed",
        "20",
        "--strategy",
        "symmetric",
        "--spread",
        "1tick",
    ).stdout.strip()
    assert a.startswith("mm-") and b.startswith("mm-") and a != b
    assert {r["id"] for r in mm.json("status", "--json")} == {a, b}

    mm.wait(two_quotes(mm, a), what="two working quotes on BTCUSDT")
    before = quote_distance(mm.json("status", a, "--json"))
    changed = mm.json("config", a, "--spread", "15ticks")
    assert changed["params"]["spread"] == "15ticks" and changed["version"] == 2
    mm.wait(
        lambda: two_quotes(mm, a)() and quote_distance(mm.json("status", a, "--json")) > before + 1.0,
        timeout=150,  # each look is two `mm status` processes: seconds apiece on a loaded 2-vCPU machine
        what="the quotes to move out by the wider spread",
    )
    assert mm.json("config", a)["params"]["spread"] == "15ticks"

    mm.wait(lambda: mm.json("status", b, "--json")["decisions"] > 0, what="the AMZN maker to decide")
    engine = mm.json("engine", "status", "--json")  # sampled every second while makers run
    assert 0 <= engine["loop_busy"] <= 1 and engine["loop_lag_ms"] >= 0
    assert re.search(r"event loop \d+% busy, timers up to [\d.]+ ms late", mm("engine", "status").stdout)
    mm("stop", b)
    assert mm.json("status", b, "--json")["status"] == "stopped"
    mm("stop", a)

    store = Store(db_url(mm.db))
    for maker_id in (a, b):
        status = mm.json("status", maker_id, "--json")
        fills = store.fills(maker_id)
        assert status["fills"] == len(fills) == store.position(maker_id).fills
        assert [f.seq for f in fills] == list(range(1, len(fills) + 1))
        assert store.position(maker_id).position == sum(f.side * f.qty for f in fills)
        assert store.orders(maker_id, open_only=True) == []  # stopping cancelled everything
    actions = {(r["action"], r["maker_id"], r["actor"]) for r in store.audit_rows()}
    assert {
        ("start", a, "cli"),
        ("start", b, "cli"),
        ("config", a, "cli"),
        ("stop", a, "cli"),
        ("stop", b, "cli"),
    } <= actions
    store.close()
    mm("engine", "stop")
    assert mm.engine_info() is None


def test_bad_commands_say_what_is_wrong_and_change_nothing(mm):
    not_running = mm("list", check=False)
    assert not_running.returncode == 2 and "no engine running" in not_running.stderr
    bad_warm = mm("engine", "start", "--db", mm.db, "--keep-warm", "often", check=False)
    assert bad_warm.returncode == 2 and "--keep-warm" in bad_warm.stderr and "often" in bad_warm.stderr

    mm("engine", "start", "--db", mm.db, "--keep-warm", "0")
    assert "not kept warm" in mm("engine", "status").stdout
    again = mm("engine", "start", "--db", mm.db, check=False)
    assert again.returncode == 2 and "already running" in again.stderr
    wrong = mm("start", "paper", "BTCUSDT", "--data", "synthetic:1000", check=False)
    assert wrong.returncode == 2 and "BTCUSDT" in wrong.stderr and "SYNTH" in wrong.stderr
    # no market: the data's own (SYNTH); 300,000 events at 2x outlast the test (no "finished" in the audit)
    maker = mm("start", "paper", "--data", "synthetic:300000", "--speed", "2").stdout.strip()

    unknown = mm("stop", "mm-nope", check=False)
    assert unknown.returncode == 2 and "mm-nope" in unknown.stderr
    bad_value = mm("config", maker, "--spread", "wide", check=False)
    assert bad_value.returncode == 2 and "spread" in bad_value.stderr and "wide" in bad_value.stderr
    negative = mm("config", maker, "--spread", "-1tick", check=False)
    assert negative.returncode == 2 and "spread: must be >= 0, got '-1tick'" in negative.stderr
    negative_start = mm("start", "paper", "--data", "synthetic:1000", "--spread", "-1tick", check=False)
    assert negative_start.returncode == 2 and "spread: must be >= 0" in negative_start.stderr
    bad_size = mm("start", "paper", "SYNTH", "--data", "synthetic:1000", "--size", "-2", check=False)
    assert bad_size.returncode == 2 and "size" in bad_size.stderr
    no_file = mm("start", "paper", "X", "--data", str(mm.home / "missing.gz"), check=False)
    assert no_file.returncode == 2 and "missing.gz" in no_file.stderr

    token = mm.home / "config" / "token"
    good = token.read_text()
    token.write_text("not-the-token")
    refused = mm("list", check=False)
    token.write_text(good)
    assert refused.returncode == 2 and "token" in refused.stderr

    store = Store(db_url(mm.db))
    assert [(m.maker_id, m.market) for m in store.makers()] == [(maker, "SYNTH")]  # failed starts: nothing
    assert store.maker(maker).config_version == 1  # the bad config left nothing
    assert [r["action"] for r in store.audit_rows()] == ["start"]
    store.close()
    mm("engine", "stop")


def test_a_failed_makers_traceback_is_in_status_in_the_store_and_in_the_engine_log(mm):
    exploding = f"{Path(__file__).parent / 'strategies_for_tests.py'}:Exploding"
    mm("engine", "start", "--db", mm.db, "--keep-warm", "0")
    maker = mm("start", "paper", "--data", "synthetic:300000", "--strategy", exploding).stdout.strip()
    mm.wait(lambda: mm.json("status", maker, "--json")["status"] == "failed", what="the maker to fail")

    api = mm.json("status", maker, "--json")  # GET /makers/{id}
    assert "this strategy always fails" in api["reason"] and raised_at() in api["traceback"]
    shown = mm("status", maker).stdout
    assert "RuntimeError('this strategy always fails')" in shown
    log = mm.home / "data" / "engine.log"
    assert f"mm status {maker} --traceback prints it; logged in {log}" in shown
    printed = mm("status", maker, "--traceback").stdout
    assert printed == api["traceback"] and printed.startswith("Traceback (most recent call last):")
    store = Store(db_url(mm.db))
    assert store.maker(maker).traceback == api["traceback"]
    store.close()

    mm("engine", "stop")
    lines = log.read_text()
    assert f"quotewise.live.engine maker failed maker={maker} " in lines and raised_at() in lines
    for event in ("engine starting", f"maker started maker={maker}", "engine stopped"):
        assert event in lines
    assert (mm.home / "config" / "token").read_text() not in lines  # no secrets


def test_status_traceback_of_a_maker_that_did_not_raise_says_so(mm):
    mm("engine", "start", "--db", mm.db, "--keep-warm", "0")
    maker = mm("start", "paper", "--data", "synthetic:300000", "--speed", "2").stdout.strip()
    none = mm("status", maker, "--traceback", check=False)
    assert none.returncode == 2 and f"{maker} has no traceback (status running)" in none.stderr
    no_id = mm("status", "--traceback", check=False)
    assert no_id.returncode == 2 and "--traceback needs a maker id" in no_id.stderr
    mm("engine", "stop")


# the seed's /mm flags, and a risk and a venue flag, as a market maker writes them
SEED_COMMAND = (
    "--spread", "2", "--interval", "500", "--skew", "0.5", "--max-orders", "2", "--level-spacing", "1",
    "--level-decay", "0.5", "--fv-method", "weighted_mid", "--max-pos", "5", "--max-loss", "100",
    "--max-loss-window", "1h", "--min-spread", "1", "--max-spread", "20bp", "--size", "1",
    "--max-inventory", "4", "--vol-mult", "0.5", "--alpha", "0.3", "--threshold", "0",
    "--latency-entry", "2", "--queue", "prob", "--maker-fee", "-0.2bp",
)  # fmt: skip


def test_the_backtested_command_line_runs_live_and_config_takes_the_same_flags(mm, tmp_path):
    mm("engine", "start", "--db", mm.db, "--keep-warm", "0")
    data = ("--data", "synthetic:300000", "--speed", "2")
    maker = mm(
        "start", "paper", *data, "--name", "tight", *SEED_COMMAND, "--set", "max_order_rate=10"
    ).stdout.strip()
    assert maker == "tight"
    config = mm.json("config", "tight")
    assert config["params"]["spread"] == "2ticks" and config["params"]["interval"] == "500ms"
    assert config["params"]["skew"] == 0.5 and config["params"]["fv_method"] == "weighted_mid"
    assert config["risk"]["max_pos"] == 5 and config["risk"]["max_loss_window"] == "1h"
    assert config["risk"]["max_order_rate"] == 10  # --set takes risk limits too, as mm config does
    venue = Store(db_url(mm.db)).maker("tight")
    assert venue.instrument.maker_fee == pytest.approx(-2e-5)

    taken = mm("start", "paper", *data, "--name", "tight", check=False)
    assert taken.returncode == 2 and "a maker named tight already" in taken.stderr
    bad_name = mm("start", "paper", *data, "--name", "no spaces", check=False)
    assert bad_name.returncode == 2 and "name" in bad_name.stderr

    file = tmp_path / "wider.yaml"
    file.write_text("strategy: skew\nparams:\n  spread: 3ticks\nrisk:\n  max_pos: 4\n")
    changed = mm.json("config", "tight", "--config", str(file), "--interval", "1s")
    assert changed["version"] == 2 and changed["params"]["spread"] == "3ticks"
    assert changed["params"]["interval"] == "1s" and changed["risk"]["max_pos"] == 4
    venue_change = mm("config", "tight", "--set", "queue=fifo", check=False)
    assert venue_change.returncode == 2 and "the venue's settings stay" in venue_change.stderr
    other = tmp_path / "glft.yaml"
    other.write_text("strategy: glft\nparams:\n  gamma: 0.5\n")
    wrong_strategy = mm("config", "tight", "--config", str(other), check=False)
    assert wrong_strategy.returncode == 2 and "is for strategy glft" in wrong_strategy.stderr
    assert mm.json("config", "tight")["version"] == 2  # nothing changed by the refused commands
    mm("engine", "stop")
