"""End to end through ``mm``: an engine in the background, two paper makers on real data, a config
change that moves the quotes, a stop, and status, fills and audit that agree; bad commands change
nothing."""

from __future__ import annotations

import pytest

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
        "start", "paper", "BTCUSDT", "--data", str(binance), "--speed", "5", "--spread", "1tick"
    ).stdout.strip()
    b = mm(
        "start", "paper", "AMZN", "--data", str(lobster), "--speed", "20", "--spread", "1tick"
    ).stdout.strip()
    assert a.startswith("mm-") and b.startswith("mm-") and a != b
    assert {r["id"] for r in mm.json("status", "--json")} == {a, b}

    mm.wait(two_quotes(mm, a), what="two working quotes on BTCUSDT")
    before = quote_distance(mm.json("status", a, "--json"))
    changed = mm.json("config", a, "--spread", "15ticks")
    assert changed["params"]["spread"] == "15ticks" and changed["version"] == 2
    mm.wait(
        lambda: two_quotes(mm, a)() and quote_distance(mm.json("status", a, "--json")) > before + 1.0,
        what="the quotes to move out by the wider spread",
    )
    assert mm.json("config", a)["params"]["spread"] == "15ticks"

    mm.wait(lambda: mm.json("status", b, "--json")["decisions"] > 0, what="the AMZN maker to decide")
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
